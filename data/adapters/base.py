"""What every adapter shares: the `Adapter` description, the per-row context, drops, field helpers.

An adapter's ``convert(row, ctx)`` turns one raw row into canonical records (or `Dropped` notes).
Bad data raises `DataError` with a message naming the field; the loader prefixes ``file:line`` and
the adapter name, and either stops or (``on_error: skip``) counts the row. Expected quirks of a
format (an empty response in HH-RLHF) raise or return `Dropped`: always counted, never silent.
Formats whose records span several rows (XSTest pairs, OASST message lists) also define
``combine(items, ctx)``, which receives ``(where, item)`` for every converted row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from camelid.data.records import RATINGS, PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

Record = SFTExample | PreferencePair | Prompt
KINDS = ("sft", "pairs", "prompts")


class Dropped(Exception):  # noqa: N818 - it is a signal, not an error
    """A row (or group) left out on purpose; ``reason`` is the short counter key."""

    def __init__(self, reason: str, detail: str = "", where: str = "", n: int = 1):
        super().__init__(reason)
        self.reason, self.detail, self.where, self.n = reason, detail, where, n  # n: rows/messages it stands for


class KindError(DataError):
    """The format cannot give this record kind at all: fatal even with ``on_error: skip``."""


@dataclass
class Ctx:
    """Everything an adapter needs besides the row itself."""

    adapter: str
    kind: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)
    objective: str | None = None
    where: str = ""
    index: int = 0  # 0-based position of the row in its source (ids for rows that have none)
    notes: list[str] = field(default_factory=list)  # for the load report (e.g. rows merged by a combine)

    def option(self, name: str, default: Any = None, choices: Iterable[Any] | None = None) -> Any:
        value = self.options.get(name, default)
        if choices is not None and value not in tuple(choices):
            raise DataError(f"options.{name}: must be one of {', '.join(map(str, choices))}, got {value!r} "
                            f"(format {self.adapter})")
        return value

    def rating(self) -> str:
        return self.option("rating", "better", RATINGS)

    def row_id(self, row: dict, key: str = "id") -> str:
        value = row.get(key)
        return str(value) if value not in (None, "") else f"{self.source}:{self.index}"


@dataclass(frozen=True)
class Adapter:
    name: str
    kinds: tuple[str, ...]  # what it can produce; the first is its natural kind
    convert: Callable[[dict, Ctx], list]
    detect: Callable[[set[str]], bool]
    doc: str
    combine: Callable[[list[tuple[str, Any]], Ctx], Iterator] | None = None
    # kinds for which combine is used (the others produce records row by row)
    combine_kinds: tuple[str, ...] = ()
    # a note for the load report when the settings leave something implicit (e.g. which objective)
    note: Callable[[Ctx], str | None] | None = None


# ---- field helpers: raise DataError("field 'x': ...") and let the loader add file:line + adapter.

def need(row: dict, name: str) -> Any:
    if name not in row:
        keys = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"field '{name}': is missing (the row has: {keys})")
    if row[name] is None:
        raise DataError(f"field '{name}': is null (the row has the key but no value)")
    return row[name]


def text(row: dict, name: str, *, required: bool = True) -> str:
    value = need(row, name) if required else row.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"field '{name}': must be a string, got {type(value).__name__}")
    return value


def flag(row: dict, name: str, *, required: bool = True) -> bool | None:
    """A boolean, also accepting the spellings CSV and spreadsheets produce."""
    value = need(row, name) if required else row.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise DataError(f"field '{name}': must be true or false, got {value!r}")


def index01(row: dict, name: str) -> int:
    value = need(row, name)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        value = int(value)
    if isinstance(value, bool) or value not in (0, 1):
        raise DataError(f"field '{name}': must be 0 or 1, got {value!r}")
    return int(value)


def structured(row: dict, name: str, typ: type, *, required: bool = True) -> Any:
    """A list/dict field; a JSON string is accepted too (CSV cells)."""
    value = need(row, name) if required else row.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(f"field '{name}': looks like JSON but does not parse ({e.msg})") from None
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        value = value.tolist()
    if not isinstance(value, typ):
        raise DataError(f"field '{name}': must be a {typ.__name__}, got {type(value).__name__}")
    return value


def conversation_or_text(value: Any) -> Any:
    """A string that holds a JSON list of message objects (a CSV cell) -> that list; any other value as is.

    Text that merely starts with "[" ("[Verse 1] ...", "[5, 1, 3]") stays text.
    """
    if not isinstance(value, str) or not value.lstrip().startswith("["):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    turns = isinstance(parsed, list) and parsed and all(isinstance(m, dict) and ("role" in m or "from" in m)
                                                        for m in parsed)
    return parsed if turns else value


def true_keys(value: Any) -> list[str]:
    """Harm-category dicts ({"violence": true, ...}) -> the true keys, sorted."""
    if isinstance(value, dict):
        return sorted(str(k) for k, v in value.items() if v is True or v in ("true", "True", 1))
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


def prompt_until_last_user(messages: list[dict]) -> tuple[list[dict], str | None]:
    """Split off trailing assistant turns: (messages ending with a user turn, the next reply or None)."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None:
        raise DataError("field 'messages': has no user turn")
    reply = messages[last + 1]["content"] if last + 1 < len(messages) else None
    return messages[: last + 1], reply


def unsupported(name: str, kinds: tuple[str, ...], kind: str) -> DataError:
    return KindError(f"format '{name}' cannot produce {kind} records; it gives: {', '.join(kinds)} "
                     "(use --kind / the stage that reads this kind)")
