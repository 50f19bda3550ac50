"""Canonical records every adapter produces (docs/data.md, "Records"), validated on construction.

Messages are plain dicts ``{"role": "system"|"user"|"assistant", "content": str}`` so records go
straight into `datasets` and chat templates. ``where`` arguments ("file.jsonl:12") make errors point
at the row that caused them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from camelid.errors import DataError

ROLES = ("system", "user", "assistant")
# Llama 2's four preference strengths, strongest first (Touvron et al. 2023, §3.2.1).
RATINGS = ("significantly_better", "better", "slightly_better", "negligibly_better")


def _fail(where: str, field_name: str, msg: str) -> DataError:
    loc = f"{where}: " if where else ""
    return DataError(f"{loc}field '{field_name}': {msg}")


def validate_messages(messages: Any, where: str = "", field_name: str = "messages") -> list[dict]:
    """Check a list of chat messages; returns normalised copies ``[{role, content}]``."""
    if not isinstance(messages, list) or not messages:
        raise _fail(where, field_name, f"must be a non-empty list of {{role, content}}, got {type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _fail(where, f"{field_name}[{i}]", f"must be an object, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise _fail(where, f"{field_name}[{i}].role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise _fail(where, f"{field_name}[{i}].content", f"must be a string, got {type(content).__name__}")
        if role == "system" and i != 0:
            raise _fail(where, f"{field_name}[{i}].role", "a system message may only come first")
        out.append({"role": role, "content": content})
    return out


def _check_str(value: Any, where: str, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(where, name, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise _fail(where, name, "is empty")
    return value


def _check_opt_bool(value: Any, where: str, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _fail(where, name, f"must be true, false or null, got {value!r}")


@dataclass
class SFTExample:
    """A conversation to imitate; loss goes on the assistant turns."""

    messages: list[dict]
    source: str = ""
    id: str | None = None

    def __post_init__(self) -> None:
        self.messages = validate_messages(self.messages)
        if not any(m["role"] == "assistant" for m in self.messages):
            raise DataError("field 'messages': has no assistant turn, so there is nothing to learn from")

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> SFTExample:
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected an object, got {type(d).__name__}")
        msgs = validate_messages(d.get("messages"), where)
        if not any(m["role"] == "assistant" for m in msgs):
            raise _fail(where, "messages", "has no assistant turn, so there is nothing to learn from")
        return cls(messages=msgs, source=str(d.get("source", "")), id=d.get("id"))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreferencePair:
    """Two assistant answers to one prompt; ``chosen`` is better by ``rating``."""

    prompt: list[dict]
    chosen: str
    rejected: str
    rating: str = "better"
    chosen_safe: bool | None = None
    rejected_safe: bool | None = None
    category: str | None = None
    source: str = ""
    id: str | None = None

    def __post_init__(self) -> None:
        self._validate("")

    def _validate(self, where: str) -> None:
        self.prompt = validate_messages(self.prompt, where, "prompt")
        if self.prompt[-1]["role"] != "user":
            raise _fail(where, "prompt", "must end with a user message")
        _check_str(self.chosen, where, "chosen")
        _check_str(self.rejected, where, "rejected")
        if self.rating not in RATINGS:
            raise _fail(where, "rating", f"must be one of {', '.join(RATINGS)}, got {self.rating!r}")
        _check_opt_bool(self.chosen_safe, where, "chosen_safe")
        _check_opt_bool(self.rejected_safe, where, "rejected_safe")

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> PreferencePair:
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected an object, got {type(d).__name__}")
        for name in ("prompt", "chosen", "rejected"):
            if name not in d:
                raise _fail(where, name, "is missing")
        obj = cls.__new__(cls)
        obj.prompt, obj.chosen, obj.rejected = d["prompt"], d["chosen"], d["rejected"]
        obj.rating = d.get("rating", "better")
        obj.chosen_safe, obj.rejected_safe = d.get("chosen_safe"), d.get("rejected_safe")
        obj.category, obj.source, obj.id = d.get("category"), str(d.get("source", "")), d.get("id")
        obj._validate(where)
        return obj

    def to_dict(self) -> dict:
        return asdict(self)


def labelled_group(prompt: Prompt) -> str | None:
    """What the data itself says a prompt asks for: harmful (a refusal is right), borderline (it sounds unsafe but
    is benign: help is right), task, or None when the row carries no such label.

    The toy world and camelid's real-wording set say it in ``meta.kind``; XSTest's adapter in
    ``meta.should_refuse`` / ``meta.borderline`` and categories ``xstest-unsafe/<type>`` / ``xstest-safe/<type>``
    (the category alone still tells after a round trip through a file that dropped ``meta``). ``is_safety``
    alone is not a label: it routes a prompt to the safety RM, whichever answer is right.
    """
    kind = prompt.meta.get("kind")
    if kind in ("harmful", "borderline", "task"):
        return kind
    if prompt.meta.get("should_refuse"):
        return "harmful"
    cat = (prompt.category or "").lower()
    if prompt.meta.get("borderline") or cat.split("/")[0] == "xstest-safe" or "borderline" in cat:
        return "borderline"
    if cat.split("/")[0] == "xstest-unsafe":
        return "harmful"
    return None


@dataclass
class Prompt:
    """A prompt for PPO rollouts or evaluation. ``meta`` carries checkable answers etc."""

    messages: list[dict]
    is_safety: bool = False
    category: str | None = None
    source: str = ""
    id: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.messages = validate_messages(self.messages)
        if self.messages[-1]["role"] != "user":
            raise DataError("field 'messages': a prompt must end with a user message")
        if not isinstance(self.is_safety, bool):
            raise DataError(f"field 'is_safety': must be true or false, got {self.is_safety!r}")

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> Prompt:
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected an object, got {type(d).__name__}")
        msgs = validate_messages(d.get("messages"), where)
        if msgs[-1]["role"] != "user":
            raise _fail(where, "messages", "a prompt must end with a user message")
        is_safety = d.get("is_safety", False)
        if not isinstance(is_safety, bool):
            raise _fail(where, "is_safety", f"must be true or false, got {is_safety!r}")
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise _fail(where, "meta", "must be an object")
        return cls(messages=msgs, is_safety=is_safety, category=d.get("category"),
                   source=str(d.get("source", "")), id=d.get("id"), meta=meta)

    def to_dict(self) -> dict:
        return asdict(self)
