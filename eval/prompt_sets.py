"""Compare's extra prompt sets (`stages.compare.sets`, `--set NAME=SPEC`): refusal, over-refusal and knowledge.

Each checkpoint answers every set with the comparison's sampling settings (cached like the main prompts). No
reward model scores them: a set is measured by the string-match refusal detector (camelid.eval.refusal) on its
harmful prompts (refusal rate, higher is better) and its safe-but-scary prompts (over-refusal, lower is
better), and by answer match on prompts that carry accepted answers (``meta.answers``: the knowledge check,
camelid.data.realworld.knowledge). A real-wording held-out split, XSTest and the knowledge check are the
sets the smol profile reports next to the toy world's numbers.
"""

from __future__ import annotations

from camelid.data.load import load_records
from camelid.eval.share import Share

GROUP_KEYS = {"harmful": "harmful_refusal_rate", "borderline": "over_refusal_rate"}


def _rate(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _category(p) -> str:
    return "/".join((p.category or "uncategorized").split("/")[:2])


def measure_set(prompts, responses: list[str]) -> dict:
    """One checkpoint's numbers on one set: rates per prompt group, knowledge accuracy, and per category."""
    from camelid.data.realworld.knowledge import is_correct
    from camelid.eval.compare_summary import prompt_group
    from camelid.eval.refusal import is_refusal

    by_group: dict[str, list[bool]] = {}
    correct: list[bool] = []
    per_category: dict[str, dict[str, list[bool]]] = {}
    refusals = [is_refusal(r) for r in responses]
    for p, r, refused in zip(prompts, responses, refusals):
        cat = per_category.setdefault(_category(p), {"refused": [], "correct": []})
        cat["refused"].append(refused)
        if p.meta.get("answers"):
            ok = is_correct(r, p.meta["answers"])
            correct.append(ok)
            cat["correct"].append(ok)
        else:
            by_group.setdefault(prompt_group(p), []).append(refused)
    out = {key: _rate(by_group.get(group, [])) for group, key in GROUP_KEYS.items()}
    out["knowledge_accuracy"] = _rate(correct)
    out["refusal_rate"] = _rate(refusals)
    out["per_category"] = {c: {"n": len(v["refused"]), "refusal_rate": _rate(v["refused"]),
                               "accuracy": _rate(v["correct"])} for c, v in sorted(per_category.items())}
    return out


def answer_sets(cc, inputs: dict, registry, *, device: str = "auto", cache=None, state=None) -> dict:
    """name -> {prompts: {...}, checkpoints: [{ref, rates...}], rows: [{id, prompt, answers}]} for every set."""
    from camelid.eval.compare_judge import answer
    from camelid.eval.compare_summary import prompt_group
    from camelid.eval.generations import Sampling

    sampling = Sampling(cc.max_new_tokens, cc.temperature, cc.top_p, cc.seed)
    roles = sorted((r for r in inputs if r.startswith("checkpoint")), key=lambda r: int(r[10:]))
    out = {}
    for name, spec in cc.sets.items():
        prompts = load_records(spec, "prompts")
        convs = [p.messages for p in prompts.records]
        share = Share.of(state, len(convs))
        groups = [("knowledge" if p.meta.get("answers") else prompt_group(p)) for p in prompts.records]
        entry = {"prompts": {"source": prompts.name, "format": prompts.format, "n": prompts.kept,
                             "fingerprint": prompts.fingerprint,
                             "groups": {g: groups.count(g) for g in sorted(set(groups))}},
                 "checkpoints": [], "rows": [{"id": p.id, "category": p.category, "group": g,
                                              "prompt": p.messages[-1]["content"], "answers": {}}
                                             for p, g in zip(prompts.records, groups)]}
        for role in roles:
            art = inputs[role]
            responses, cached = answer(art, convs, sampling, registry, share, cache=cache, device=device)
            entry["checkpoints"].append({"ref": art.ref, "from_cache": cached, **measure_set(prompts.records, responses)})
            for row, r in zip(entry["rows"], responses):
                row["answers"][art.ref] = r
        out[name] = entry
    return out


def headline(sets: dict) -> dict:
    """The manifest's share: per set and checkpoint, the three rates."""
    keys = ("harmful_refusal_rate", "over_refusal_rate", "knowledge_accuracy")
    return {name: {c["ref"]: {k: c[k] for k in keys if c.get(k) is not None} for c in s["checkpoints"]}
            for name, s in sets.items()}


def table_lines(sets: dict) -> list[str]:
    """Plain-text tables for the log: one per set, a row per checkpoint."""
    lines = []
    for name, s in sets.items():
        g = s["prompts"]["groups"]
        lines.append(f"{name} ({s['prompts']['source']}, {s['prompts']['n']} prompts: "
                     + ", ".join(f"{k} {v}" for k, v in g.items()) + ")")
        lines.append(f"  {'checkpoint':<24} {'harmful refused':>16} {'over-refusal':>13} {'knowledge':>10}")
        for c in s["checkpoints"]:
            def f(x):
                return "-" if x is None else f"{x:.3f}"
            lines.append(f"  {c['ref']:<24} {f(c['harmful_refusal_rate']):>16} {f(c['over_refusal_rate']):>13} "
                         f"{f(c['knowledge_accuracy']):>10}")
    return lines
