"""Safety-labelled formats: PKU-SafeRLHF pairs and BeaverTails single responses (XSTest: xstest.py).

PKU-SafeRLHF rows compare two responses twice: ``better_response_id`` (helpfulness) and
``safer_response_id`` (safety); ``objective`` picks which pairs come out. BeaverTails labels one response
per row; pairs come from grouping rows by prompt (a safe answer against an unsafe one), so it uses
``combine``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from camelid.data.adapters.base import (
    Adapter,
    Ctx,
    Dropped,
    flag,
    index01,
    text,
    true_keys,
    user,
)
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

# ---- PKU-SafeRLHF ---------------------------------------------------------------------------------


def _pku_category(row: dict) -> str | None:
    cats = sorted({c for i in (0, 1) for c in true_keys(row.get(f"response_{i}_harm_category"))})
    return cats[0] if cats else (row.get("category") or None)


def convert_pku(row: dict, ctx: Ctx) -> list:
    prompt = user(text(row, "prompt"))
    category = ctx.option("category") or _pku_category(row)
    rid = ctx.row_id(row)
    if ctx.kind == "prompts":
        return [Prompt(messages=prompt, is_safety=bool(ctx.option("is_safety", True)), category=category,
                       source=ctx.source, id=rid)]
    responses = [text(row, "response_0"), text(row, "response_1")]
    safe = [flag(row, "is_response_0_safe"), flag(row, "is_response_1_safe")]
    objective = ctx.objective or "helpfulness"
    best = index01(row, "better_response_id" if objective == "helpfulness" else "safer_response_id")
    chosen, rejected = responses[best], responses[1 - best]
    if not chosen.strip():
        raise Dropped("empty chosen response")
    if ctx.kind == "sft":
        if not safe[best]:
            raise Dropped(f"{'better' if objective == 'helpfulness' else 'safer'} response is unsafe")
        return [SFTExample(messages=[*prompt, {"role": "assistant", "content": chosen}], source=ctx.source, id=rid)]
    if not rejected.strip():
        raise Dropped("empty rejected response")
    if chosen.strip() == rejected.strip():
        raise Dropped("chosen and rejected are identical")
    return [PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, rating=ctx.rating(),
                           chosen_safe=safe[best], rejected_safe=safe[1 - best], category=category,
                           source=ctx.source, id=f"{rid}/{objective}")]


def _pku_note(ctx: Ctx) -> str | None:
    if ctx.kind != "pairs" or ctx.objective is not None:
        return None
    return ("no objective given, so these are helpfulness pairs (better_response_id); for the safety reward "
            "model's pairs (safer_response_id) set objective: safety (--objective safety on the command line)")


# ---- BeaverTails (one labelled response per row) ---------------------------------------------------


def convert_beavertails(row: dict, ctx: Ctx) -> list:
    prompt, response = text(row, "prompt"), text(row, "response")
    is_safe = flag(row, "is_safe")
    cats = true_keys(row.get("category"))
    item = {"prompt": prompt, "response": response, "is_safe": is_safe, "categories": cats, "id": ctx.row_id(row)}
    if ctx.kind == "sft":
        if not is_safe:
            raise Dropped("unsafe response")
        if not response.strip():
            raise Dropped("empty response")
        return [SFTExample(messages=[*user(prompt), {"role": "assistant", "content": response}],
                           source=ctx.source, id=item["id"])]
    if ctx.kind == "pairs" and ctx.objective == "helpfulness":
        raise DataError("beavertails has safety labels only: use objective 'safety' (or none)")
    return [item]


def _groups(items: list[tuple[str, Any]], key: str) -> dict[str, list[tuple[str, dict]]]:
    groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for where, item in items:
        groups[item[key].strip()].append((where, item))
    return groups


def combine_beavertails(items: list[tuple[str, Any]], ctx: Ctx):
    for prompt, group in _groups(items, "prompt").items():
        labelled = [it for _, it in group]
        cats = sorted({c for it in labelled for c in it["categories"]})
        category = ctx.option("category") or (cats[0] if cats else None)
        if ctx.kind == "prompts":
            meta = {"responses": [{"response": it["response"], "is_safe": it["is_safe"],
                                   "categories": it["categories"]} for it in labelled]}
            yield Prompt(messages=user(prompt), is_safety=bool(ctx.option("is_safety", True)), category=category,
                         source=ctx.source, id=labelled[0]["id"], meta=meta)
            continue
        safe = [it for it in labelled if it["is_safe"] and it["response"].strip()]
        unsafe = [it for it in labelled if not it["is_safe"] and it["response"].strip()]
        if not safe or not unsafe:
            yield Dropped("no safe and unsafe response to pair", where=group[0][0])
            continue
        yield PreferencePair(prompt=user(prompt), chosen=safe[0]["response"], rejected=unsafe[0]["response"],
                             rating=ctx.rating(), chosen_safe=True, rejected_safe=False, category=category,
                             source=ctx.source, id=f"{safe[0]['id']}/{unsafe[0]['id']}")


ADAPTERS = [
    Adapter("pku-saferlhf", ("pairs", "sft", "prompts"), convert_pku,
            lambda k: {"response_0", "response_1"} <= k and ("safer_response_id" in k or "better_response_id" in k),
            "PKU-SafeRLHF: {prompt, response_0/1, better_response_id, safer_response_id, is_response_0/1_safe}; "
            "objective picks helpfulness (better) or safety (safer) pairs", note=_pku_note),
    Adapter("beavertails", ("prompts", "sft", "pairs"), convert_beavertails,
            lambda k: {"prompt", "response", "is_safe"} <= k,
            "BeaverTails: {prompt, response, is_safe, category}; pairs group a safe and an unsafe response",
            combine=combine_beavertails, combine_kinds=("prompts", "pairs")),
]
