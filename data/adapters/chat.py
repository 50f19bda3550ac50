"""Chat-shaped formats: `messages` JSONL (and ShareGPT `conversations`), canonical `preference` and
`prompts` JSONL."""

from __future__ import annotations

from camelid.data.adapters.base import (
    Adapter,
    Ctx,
    Dropped,
    conversation_or_text,
    flag,
    need,
    prompt_until_last_user,
    structured,
    unsupported,
    user,
)
from camelid.data.records import PreferencePair, Prompt, SFTExample, validate_messages
from camelid.errors import DataError

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}


def _sharegpt(turns: list) -> list[dict]:
    """ShareGPT ``[{from, value}]``, or LIMA's plain strings alternating user / assistant."""
    if turns and all(isinstance(t, str) for t in turns):
        return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or "from" not in t or "value" not in t:
            raise DataError(f"field 'conversations[{i}]': must be an object with 'from' and 'value' "
                            "(or every turn a plain string, as in LIMA)")
        role = _SHAREGPT_ROLES.get(str(t["from"]).lower())
        if role is None:
            raise DataError(f"field 'conversations[{i}].from': unknown speaker {t['from']!r}")
        out.append({"role": role, "content": t["value"]})
    return out


def _messages(row: dict, name: str = "messages") -> list[dict]:
    if name not in row and "conversations" in row:  # ShareGPT: [{from, value}]; LIMA: [str, str, ...]
        return validate_messages(_sharegpt(structured(row, "conversations", list)), "", "conversations")
    value = conversation_or_text(need(row, name))
    if isinstance(value, str):
        return user(value)  # a plain prompt string
    return validate_messages(structured({name: value}, name, list), "", name)


def _meta(row: dict) -> dict:
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError("field 'meta': must be an object")
    return dict(meta)


def _prompt_record(messages: list[dict], row: dict, ctx: Ctx, reference: str | None = None) -> Prompt:
    meta = _meta(row)
    if reference and "reference" not in meta:
        meta["reference"] = reference
    is_safety = flag(row, "is_safety", required=False)
    if is_safety is None:
        is_safety = bool(ctx.option("is_safety", False))
    return Prompt(messages=messages, is_safety=is_safety, category=row.get("category") or ctx.option("category"),
                  source=ctx.source, id=ctx.row_id(row), meta=meta)


def convert_messages(row: dict, ctx: Ctx) -> list:
    messages = _messages(row)
    if ctx.kind == "sft":
        while messages and messages[-1]["role"] != "assistant":
            messages = messages[:-1]  # a trailing user turn has nothing to learn from
        if not any(m["role"] == "assistant" for m in messages):
            raise Dropped("no assistant turn")
        if not messages[-1]["content"].strip():
            raise Dropped("empty assistant response")
        return [SFTExample(messages=messages, source=ctx.source, id=ctx.row_id(row))]
    if ctx.kind == "prompts":
        prompt, reply = prompt_until_last_user(messages)
        return [_prompt_record(prompt, row, ctx, reply)]
    raise unsupported("messages", ("sft", "prompts"), ctx.kind)


def _answer(row: dict, name: str) -> tuple[str, list[dict] | None]:
    """A response given as text, or as a conversation whose last turn is the assistant's answer."""
    value = conversation_or_text(need(row, name))
    if isinstance(value, str):
        return value, None
    msgs = validate_messages(structured({name: value}, name, list), "", name)
    if msgs[-1]["role"] != "assistant":
        raise DataError(f"field '{name}': a conversation must end with the assistant's answer")
    return msgs[-1]["content"], msgs[:-1] or None


def convert_preference(row: dict, ctx: Ctx) -> list:
    chosen, implicit_prompt = _answer(row, "chosen")
    rejected, _ = _answer(row, "rejected")
    prompt = _messages(row, "prompt") if "prompt" in row else implicit_prompt
    if prompt is None:
        raise DataError("field 'prompt': is missing (and 'chosen' is plain text, so it carries no prompt)")
    if ctx.kind == "prompts":
        return [_prompt_record(prompt, row, ctx)]
    if ctx.kind == "sft":
        if not chosen.strip():
            raise Dropped("empty chosen response")
        return [SFTExample(messages=[*prompt, {"role": "assistant", "content": chosen}], source=ctx.source,
                           id=ctx.row_id(row))]
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if not value.strip():
            raise Dropped(f"empty {name} response")
    d = {k: row.get(k) for k in ("rating", "chosen_safe", "rejected_safe", "category", "id") if row.get(k) is not None}
    d.setdefault("rating", ctx.rating())
    for name in ("chosen_safe", "rejected_safe"):
        if name in d:
            d[name] = flag(d, name)
    d.setdefault("category", ctx.option("category"))
    d["id"] = ctx.row_id(row)
    return [PreferencePair.from_dict({**d, "prompt": prompt, "chosen": chosen, "rejected": rejected,
                                      "source": ctx.source})]


def convert_prompts(row: dict, ctx: Ctx) -> list:
    if ctx.kind != "prompts":
        raise unsupported("prompts", ("prompts",), ctx.kind)
    name = "messages" if "messages" in row or "conversations" in row else "prompt"
    messages = _messages(row, name)
    prompt, reply = prompt_until_last_user(messages)
    return [_prompt_record(prompt, row, ctx, reply)]


def _is_preference(keys: set[str]) -> bool:
    return {"chosen", "rejected"} <= keys and ("prompt" in keys or "rating" in keys)


def _is_prompts(keys: set[str]) -> bool:
    return ("is_safety" in keys and ("messages" in keys or "prompt" in keys)) or keys <= {
        "prompt", "id", "category", "source", "meta"} and "prompt" in keys


ADAPTERS = [
    Adapter("messages", ("sft", "prompts"), convert_messages,
            lambda k: ("messages" in k or "conversations" in k) and "is_safety" not in k,
            "chat JSONL: {messages: [{role, content}]} (or ShareGPT {conversations: [{from, value}]})"),
    Adapter("preference", ("pairs", "sft", "prompts"), convert_preference, _is_preference,
            "canonical pairs: {prompt, chosen, rejected, rating?, chosen_safe?, rejected_safe?, category?}"),
    Adapter("prompts", ("prompts",), convert_prompts, _is_prompts,
            "canonical prompts: {messages | prompt, is_safety?, category?, meta?}"),
]
