"""Anthropic HH-RLHF: ``chosen`` / ``rejected`` are whole dialogues "\\n\\nHuman: ...\\n\\nAssistant: ...".

The response is whatever follows the LAST "\\n\\nAssistant:"; everything before it is the prompt.
Options: ``rating`` (default "better": HH has no strength labels), ``mismatched_prompts``
("drop" | "keep": keep uses the chosen dialogue's prompt), ``category``, ``is_safety`` (for prompts;
set it for harmless-base).
"""

from __future__ import annotations

import re

from camelid.data.adapters.base import Adapter, Ctx, Dropped, text
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def split_dialogue(dialogue: str, name: str) -> tuple[str, list[dict] | None, str]:
    """-> (raw prompt text, prompt messages or None if they do not end with a Human turn, response)."""
    if not dialogue.startswith("\n\n"):
        dialogue = "\n\n" + dialogue.lstrip()  # some exports lose the leading blank line
    cut = dialogue.rfind(ASSISTANT)
    if cut < 0:
        raise DataError(f"field '{name}': has no '\\n\\nAssistant:' turn, so there is no response to split off")
    raw_prompt, response = dialogue[:cut], dialogue[cut + len(ASSISTANT):].strip()
    parts = _TURN.split(raw_prompt)
    if parts[0].strip():
        raise DataError(f"field '{name}': text before the first 'Human:' turn: {parts[0][:40]!r}")
    messages = [{"role": _ROLES[who], "content": said.strip()} for who, said in zip(parts[1::2], parts[2::2])]
    ok = bool(messages) and messages[-1]["role"] == "user"
    return raw_prompt.strip(), messages if ok else None, response


def convert(row: dict, ctx: Ctx) -> list:
    raw_c, prompt, chosen = split_dialogue(text(row, "chosen"), "chosen")
    rid = ctx.row_id(row)
    if ctx.kind == "pairs":
        raw_r, _, rejected = split_dialogue(text(row, "rejected"), "rejected")
        if raw_c != raw_r and ctx.option("mismatched_prompts", "drop", ("drop", "keep")) == "drop":
            raise Dropped("prompts differ between chosen and rejected")
    if prompt is None:
        raise Dropped("prompt does not end with a Human turn")
    category = ctx.option("category")
    if ctx.kind == "prompts":
        return [Prompt(messages=prompt, is_safety=bool(ctx.option("is_safety", False)), category=category,
                       source=ctx.source, id=rid)]
    if ctx.kind == "sft":
        if not chosen:
            raise Dropped("empty chosen response")
        return [SFTExample(messages=[*prompt, {"role": "assistant", "content": chosen}], source=ctx.source,
                           id=rid)]
    if not chosen:
        raise Dropped("empty chosen response")
    if not rejected:
        raise Dropped("empty rejected response")
    if chosen == rejected:
        raise Dropped("chosen and rejected are identical")
    return [PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, rating=ctx.rating(),
                           category=category, source=ctx.source, id=rid)]


def _detect(keys: set[str]) -> bool:
    return {"chosen", "rejected"} <= keys and "prompt" not in keys


ADAPTERS = [Adapter("hh-rlhf", ("pairs", "sft", "prompts"), convert, _detect,
                    "Anthropic HH-RLHF: {chosen, rejected} whole 'Human:/Assistant:' dialogues")]
