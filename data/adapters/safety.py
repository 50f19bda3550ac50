"""Safety-labelled formats: PKU-SafeRLHF pairs, BeaverTails single responses, XSTest labelled responses.

PKU-SafeRLHF rows compare two responses twice: ``better_response_id`` (helpfulness) and
``safer_response_id`` (safety); ``objective`` picks which pairs come out. BeaverTails and XSTest label
one response per row; pairs come from grouping rows by prompt (a safe/compliant answer against an
unsafe/refusing one), so they use ``combine``.
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
    need,
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


# ---- XSTest (labelled responses to prompts that sound unsafe) --------------------------------------

XSTEST_LABELS = ("1_full_compliance", "2_full_refusal", "3_partial_refusal")


def convert_xstest(row: dict, ctx: Ctx) -> list:
    label = text(row, "final_label")
    if label not in XSTEST_LABELS:
        raise DataError(f"field 'final_label': must be one of {', '.join(XSTEST_LABELS)}, got {label!r}")
    prompt_label = text(row, "prompt_label")
    if prompt_label not in ("safe", "unsafe"):
        raise DataError(f"field 'prompt_label': must be 'safe' or 'unsafe', got {prompt_label!r}")
    wanted = ctx.option("prompt_label", "all", ("all", "safe", "unsafe"))
    if wanted != "all" and prompt_label != wanted:
        raise Dropped(f"prompt_label is not {wanted} (options.prompt_label)")
    item = {"id": str(need(row, "id")), "type": text(row, "type"), "prompt": text(row, "prompt"),
            "completion": text(row, "completion"), "label": label, "prompt_label": prompt_label,
            "model": row.get("model"), "focus": row.get("prompt_focus"), "note": row.get("prompt_note")}
    if ctx.kind == "sft":
        desired = "1_full_compliance" if prompt_label == "safe" else "2_full_refusal"
        if label != desired:
            raise Dropped(f"response is not the desired behaviour ({prompt_label} prompt, {label})")
        if not item["completion"].strip():
            raise Dropped("empty response")
        return [SFTExample(messages=[*user(item["prompt"]), {"role": "assistant", "content": item["completion"]}],
                           source=ctx.source, id=f"{item['id']}/{item['model'] or ctx.index}")]
    return [item]


def combine_xstest(items: list[tuple[str, Any]], ctx: Ctx):
    for _, group in _groups(items, "prompt").items():
        first = group[0][1]
        should_refuse = first["prompt_label"] == "unsafe"
        category = f"xstest/{first['type']}" if first["type"] else "xstest"
        if ctx.kind == "prompts":
            meta = {"should_refuse": should_refuse, "prompt_label": first["prompt_label"], "type": first["type"],
                    "focus": first["focus"], "note": first["note"],
                    "responses": [{"model": it["model"], "completion": it["completion"], "label": it["label"]}
                                  for _, it in group]}
            # every XSTest prompt sounds unsafe: safe ones are the over-refusal set (should_refuse False)
            yield Prompt(messages=user(first["prompt"]), is_safety=True, category=category, source=ctx.source,
                         id=first["id"], meta=meta)
            continue
        usable = [it for _, it in group if it["completion"].strip()]
        comply = [it for it in usable if it["label"] == "1_full_compliance"]
        refuse = [it for it in usable if it["label"] == "2_full_refusal"]
        partial = [it for it in usable if it["label"] == "3_partial_refusal"]
        if should_refuse:  # the full refusal wins against (partial) compliance
            good, bad = refuse, comply or partial
            good_safe, bad_safe = True, (False if comply else None)
        else:  # over-refusal: full compliance wins against a (partial) refusal
            good, bad = comply, refuse or partial
            good_safe, bad_safe = True, True
        if not good or not bad:
            yield Dropped("no compliant and refusing response to pair", where=group[0][0])
            continue
        yield PreferencePair(prompt=user(first["prompt"]), chosen=good[0]["completion"],
                             rejected=bad[0]["completion"], rating=ctx.rating(), chosen_safe=good_safe,
                             rejected_safe=bad_safe, category=category, source=ctx.source, id=first["id"])


ADAPTERS = [
    Adapter("pku-saferlhf", ("pairs", "sft", "prompts"), convert_pku,
            lambda k: {"response_0", "response_1"} <= k and ("safer_response_id" in k or "better_response_id" in k),
            "PKU-SafeRLHF: {prompt, response_0/1, better_response_id, safer_response_id, is_response_0/1_safe}; "
            "objective picks helpfulness (better) or safety (safer) pairs"),
    Adapter("beavertails", ("prompts", "sft", "pairs"), convert_beavertails,
            lambda k: {"prompt", "response", "is_safe"} <= k,
            "BeaverTails: {prompt, response, is_safe, category}; pairs group a safe and an unsafe response",
            combine=combine_beavertails, combine_kinds=("prompts", "pairs")),
    Adapter("xstest", ("prompts", "sft", "pairs"), convert_xstest,
            lambda k: {"prompt", "completion", "final_label"} <= k,
            "XSTest labelled responses: {id, type, prompt, completion, final_label, prompt_label}",
            combine=combine_xstest, combine_kinds=("prompts", "pairs")),
]
