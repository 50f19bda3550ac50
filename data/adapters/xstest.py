"""XSTest (Röttger et al., 2024): safe prompts that merely sound unsafe (the over-refusal set), unsafe
"contrast" prompts, and labelled model completions.

The layouts as published (github.com/paul-rottger/exaggerated-safety), one file or a folder of them:
- prompts, ``xstest_prompts.csv``: ``{id, prompt, type, label (safe|unsafe), focus, note}``;
- completions, ``model_completions/xstest_v2_completions_<model>.csv``: ``{id, type, prompt, completion,
  annotation_1, annotation_2, agreement, final_label}``; the model is named by the file name;
- joined rows: completions that carry ``prompt_label``, ``prompt_focus``, ``prompt_note`` (and ``model``).

Rows are joined by id (``v2-12`` in a completions file is ``12`` in the prompts file; the prompt text
was reworded in places since the completions were made, so pairs and SFT use the text each completion
answered). A prompt's label comes from the prompts file's ``label``, else the row's
``prompt_label``, else its type (XSTest's unsafe types are exactly the ``contrast_*`` ones). Safe prompts
are benign: ``is_safety`` False, category ``xstest-safe/<type>``, ``meta.borderline`` (help is the right
answer, a refusal is an over-refusal). Unsafe ones are safety prompts: ``xstest-unsafe/<type>``,
``meta.should_refuse``. Option ``prompt_label: safe|unsafe`` keeps one side.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from camelid.data.adapters.base import Adapter, Ctx, Dropped, need, text, user
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

LABELS = ("1_full_compliance", "2_full_refusal", "3_partial_refusal")
_COMPLETIONS_FILE = re.compile(r"^xstest(?:_v\d+)?_completions_(.+?)(?:_v\d+)?$")
_VERSION_PREFIX = re.compile(r"^v\d+-")


def _safe_or_unsafe(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    label = str(value).strip().lower()
    if label not in ("safe", "unsafe"):
        raise DataError(f"field '{name}': must be 'safe' or 'unsafe', got {value!r}")
    return label


def _model(row: dict, where: str) -> str | None:
    """The ``model`` column, or the model named by an upstream completions file name."""
    if row.get("model"):
        return str(row["model"])
    m = _COMPLETIONS_FILE.match(Path(where.rsplit(":", 1)[0]).name.split(".")[0])
    return m.group(1) if m else None


def convert(row: dict, ctx: Ctx) -> list:
    item = {"prompt": text(row, "prompt"), "id": str(need(row, "id")), "type": text(row, "type").strip()}
    if "completion" not in row and "final_label" not in row:  # a row of xstest_prompts.csv
        return [{**item, "label": _safe_or_unsafe(need(row, "label"), "label"), "listed": True,
                 "focus": row.get("focus") or None, "note": row.get("note") or None, "response": None}]
    final = text(row, "final_label")
    if final not in LABELS:
        raise DataError(f"field 'final_label': must be one of {', '.join(LABELS)}, got {final!r}")
    response = {"model": _model(row, ctx.where), "prompt": item["prompt"], "completion": text(row, "completion"),
                "label": final}
    return [{**item, "label": _safe_or_unsafe(row.get("prompt_label"), "prompt_label"), "listed": False,
             "focus": row.get("prompt_focus") or None, "note": row.get("prompt_note") or None,
             "response": response}]


def _join(items: list[tuple[str, Any]]) -> list[dict]:
    """One entry per prompt id, in order of first appearance; the prompts file's id, text and label win."""
    prompts: dict[str, dict] = {}
    for where, it in items:
        p = prompts.setdefault(_VERSION_PREFIX.sub("", it["id"]), {**it, "where": where, "rows": 0, "responses": []})
        p["rows"] += 1
        if it["listed"]:
            p.update(id=it["id"], prompt=it["prompt"], label=it["label"], listed=True)
        for key in ("type", "label", "focus", "note"):
            p[key] = p[key] or it[key]
        if it["response"] is not None:
            p["responses"].append(it["response"])
    for p in prompts.values():
        if p["label"] is None and p["type"]:
            p["label"] = "unsafe" if p["type"].startswith("contrast_") else "safe"
    return list(prompts.values())


def _prompt(p: dict, ctx: Ctx, category: str) -> Prompt:
    meta = {"should_refuse": p["label"] == "unsafe", "borderline": p["label"] == "safe", "prompt_label": p["label"],
            "type": p["type"], "focus": p["focus"], "note": p["note"]}
    if p["responses"]:
        meta["responses"] = p["responses"]
    return Prompt(messages=user(p["prompt"]), is_safety=p["label"] == "unsafe", category=category,
                  source=ctx.source, id=p["id"], meta=meta)


def _sft(p: dict, ctx: Ctx, where: str):
    if not p["responses"]:
        yield Dropped("prompt without a completion", where=where)
    desired = "1_full_compliance" if p["label"] == "safe" else "2_full_refusal"
    for i, r in enumerate(p["responses"]):
        if r["label"] != desired:
            yield Dropped(f"response is not the desired behaviour ({p['label']} prompt, {r['label']})", where=where)
        elif not r["completion"].strip():
            yield Dropped("empty response", where=where)
        else:
            yield SFTExample(messages=[*user(r["prompt"]), {"role": "assistant", "content": r["completion"]}],
                             source=ctx.source, id=f"{p['id']}/{r['model'] or i}")


def _pair(p: dict, ctx: Ctx, category: str, where: str):
    usable = [r for r in p["responses"] if r["completion"].strip()]
    comply, refuse, partial = ([r for r in usable if r["label"] == label] for label in LABELS)
    if p["label"] == "unsafe":  # the full refusal wins against (partial) compliance
        good, bad = refuse, comply or partial
        good_safe, bad_safe = True, (False if comply else None)
    else:  # over-refusal: full compliance wins against a (partial) refusal
        good, bad = comply, refuse or partial
        good_safe, bad_safe = True, True
    if not good or not bad:
        return Dropped("no compliant and refusing response to pair", where=where)
    return PreferencePair(prompt=user(good[0]["prompt"]), chosen=good[0]["completion"], rejected=bad[0]["completion"],
                          rating=ctx.rating(), chosen_safe=good_safe, rejected_safe=bad_safe, category=category,
                          source=ctx.source, id=p["id"])


def combine(items: list[tuple[str, Any]], ctx: Ctx):
    wanted = ctx.option("prompt_label", "all", ("all", "safe", "unsafe"))
    joined = _join(items)
    if len(joined) < len(items):  # the report's "read N" counts rows: say where the difference went
        ctx.notes.append(f"merged {len(items)} rows into {len(joined)} prompts by id")
    for p in joined:
        where = p["where"]
        if p["label"] is None:
            yield Dropped("no safe/unsafe label (no label, prompt_label or type)", where=where, n=p["rows"])
            continue
        if wanted != "all" and p["label"] != wanted:
            yield Dropped(f"prompt_label is not {wanted} (options.prompt_label)", where=where, n=p["rows"])
            continue
        category = f"xstest-{p['label']}/{p['type']}" if p["type"] else f"xstest-{p['label']}"
        if ctx.kind == "prompts":
            yield _prompt(p, ctx, category)
        elif ctx.kind == "pairs":
            yield _pair(p, ctx, category, where)
        else:
            yield from _sft(p, ctx, where)


def _detect(keys: set[str]) -> bool:
    return {"prompt", "completion", "final_label"} <= keys or {"prompt", "type", "label", "focus"} <= keys


ADAPTERS = [
    Adapter("xstest", ("prompts", "sft", "pairs"), convert, _detect,
            "XSTest as published: xstest_prompts.csv {id, prompt, type, label, focus, note} and/or completion "
            "CSVs {id, type, prompt, completion, final_label} (joined by prompt; or rows with prompt_label)",
            combine=combine, combine_kinds=("prompts", "sft", "pairs")),
]
