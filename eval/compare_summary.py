"""Compare's numbers: per-checkpoint rates, pairwise win/tie/loss with bootstrap CIs, ratings, examples."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np

from camelid.data.load import LoadResult
from camelid.data.records import labelled_group
from camelid.eval import stats
from camelid.eval.compare_judge import CheckpointResult
from camelid.eval.config import CompareConfig
from camelid.eval.generations import Sampling
from camelid.eval.refusal import matched_phrase

JUDGES = ("helpfulness", "safety", "combined", "oracle")


def prompt_group(prompt) -> str:
    """harmful (a refusal is right) | borderline (scary-sounding but benign: help is right) | benign.

    The row's own label where it has one (camelid.data.records.labelled_group: the toy world's ``meta.kind``,
    XSTest's ``meta.should_refuse`` / ``meta.borderline`` and categories); otherwise ``is_safety``.
    """
    label = labelled_group(prompt)
    if label is not None:
        return "benign" if label == "task" else label
    return "harmful" if prompt.is_safety else "benign"


def _rate(mask: np.ndarray, where: np.ndarray) -> float | None:
    return float(mask[where].mean()) if where.any() else None


def _clean(obj):
    """JSON-safe: numpy -> Python, NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


REFUSAL_DETECTOR = ("camelid.eval.refusal.is_refusal: string match of first-person declines (\"I can't help\", "
                    "\"I must decline\", an apology with an inability, ...), anywhere in the answer")


def refusal_detector(results: list[CheckpointResult]) -> dict:
    """Which detector the refusal rates come from: the toy oracle's verdicts, or string match on the answers."""
    oracle = bool(results) and results[0].oracle is not None
    return {"name": "toy-world oracle" if oracle else "string match", "detector": REFUSAL_DETECTOR,
            "note": ("the oracle's per-prompt 'refused' flag (it runs the same detector)" if oracle else
                     "answers with no declining phrase count as help (see camelid.eval.refusal for known limits)")}


def task_correct_by_family(r: CheckpointResult) -> dict[str, np.ndarray]:
    """family -> 0/1 correctness of the oracle's verdicts on its task prompts, in prompt order (toy world only).

    Every checkpoint answers the same prompts, so two checkpoints' arrays of a family pair up prompt by prompt.
    """
    by_family: dict[str, list[float]] = {}
    for o in r.oracle or []:
        if o.get("kind") == "task":
            by_family.setdefault(str(o.get("category", "")).split("/")[0], []).append(float(bool(o["correct"])))
    return {f: np.array(v) for f, v in sorted(by_family.items())}  # (n_f,)


def checkpoint_row(r: CheckpointResult, groups: np.ndarray, judges: list[str]) -> dict:
    """One checkpoint's rates, lengths, mean scores, per-family task accuracy and KL."""
    harmful, borderline = groups == "harmful", groups == "borderline"
    row = {
        "ref": r.ref, "hash": r.hash, "from_cache": r.cached,
        "mean_length_words": float(r.lengths.mean()) if len(r.lengths) else None,
        "refusal_rate": float(r.refused.mean()) if len(r.refused) else None,
        "over_refusal_rate": _rate(r.refused, borderline),
        "safety_violation_rate": _rate(r.unsafe, harmful) if r.unsafe is not None else None,
        "mean_score": {j: float(r.scores[j].mean()) for j in judges},
        "harmful_refusal_rate": _rate(r.refused, harmful),
        "mean_length_tokens": float(r.tokens.mean()) if r.tokens is not None and len(r.tokens) else None,
        "task_accuracy_per_family": ({f: float(v.mean()) for f, v in task_correct_by_family(r).items()}
                                     if r.oracle is not None else None),
    }
    if r.oracle_summary is not None:
        row["oracle"] = r.oracle_summary
    if r.kl is not None:
        row["kl_to_reference"] = float(r.kl.mean())
        row["reference_perplexity"] = float(np.exp(-r.ref_logp.sum() / max(r.ref_tokens.sum(), 1)))
    return row


def family_differences(a: CheckpointResult, b: CheckpointResult, cc: CompareConfig) -> dict:
    """Per task family: A's and B's accuracy and A - B with a paired bootstrap interval over its prompts."""
    fa, fb = task_correct_by_family(a), task_correct_by_family(b)
    out = {}
    for fam in sorted(set(fa) & set(fb)):
        x, y = fa[fam], fb[fam]
        d = stats.mean_difference(x, y, cc.bootstrap, cc.seed)
        out[fam] = {"n": len(x), "a": float(x.mean()), "b": float(y.mean()),
                    "diff": {"value": d.value, "lo": d.lo, "hi": d.hi}}
    return out


def pair_entry(a: CheckpointResult, b: CheckpointResult, cc: CompareConfig, judges: list[str]) -> dict:
    """A against B: win/tie/loss per judge (bootstrap CIs), length-controlled win rates, family differences."""
    entry = {"a": a.ref, "b": b.ref, "judges": {}, "length_controlled": {}}
    for j in judges:
        tie = 0.0 if j == "oracle" else cc.tie_threshold
        o = stats.outcomes(a.scores[j], b.scores[j], tie)
        entry["judges"][j] = stats.win_tie_loss(o, cc.bootstrap, cc.seed).to_dict()
        lc = stats.length_controlled_win_rate(o, a.lengths, b.lengths, cc.bootstrap, cc.seed)
        entry["length_controlled"][j] = {"value": lc.value, "lo": lc.lo, "hi": lc.hi}
    entry["task_accuracy_per_family"] = family_differences(a, b, cc)
    return entry


def summarize(cc: CompareConfig, prompts: LoadResult, results: list[CheckpointResult],
              reference: str | None) -> dict:
    """Every number of the report as one JSON-able dict."""
    groups = np.array([prompt_group(p) for p in prompts.records])
    judges = [j for j in JUDGES if all(j in r.scores for r in results)]
    ratings = {}
    if len(results) >= 2:
        for j in judges:
            tie = 0.0 if j == "oracle" else cc.tie_threshold
            ratings[j] = stats.elo_ratings(np.stack([r.scores[j] for r in results]), [r.ref for r in results],
                                           tie, cc.bootstrap, cc.seed)
    return _clean({
        "prompts": {"source": prompts.name, "format": prompts.format, "n": prompts.kept,
                    "fingerprint": prompts.fingerprint,
                    "groups": {g: int((groups == g).sum()) for g in ("harmful", "borderline", "benign")}},
        "sampling": Sampling(cc.max_new_tokens, cc.temperature, cc.top_p, cc.seed).to_dict(),
        "judges": judges,
        "safety_violation_judge": "oracle" if results and results[0].oracle is not None else (
            "safety RM" if "safety" in judges else None),
        "refusal_detector": refusal_detector(results),
        "reference": reference,
        "bootstrap": cc.bootstrap,
        "checkpoints": [checkpoint_row(r, groups, judges) for r in results],
        "pairs": [pair_entry(a, b, cc, judges) for a, b in combinations(results, 2)],
        "ratings": ratings,
        "examples": examples(cc, prompts, results, judges, groups),
    })


def examples(cc: CompareConfig, prompts: LoadResult, results: list[CheckpointResult], judges: list[str],
             groups: np.ndarray) -> list[dict]:
    """Side-by-side answers, the prompts where the judges disagree most first."""
    n = prompts.kept
    if not n or not cc.examples:
        return []
    z = {}
    for j in judges:
        allv = np.concatenate([r.scores[j] for r in results])
        sd = allv.std() or 1.0
        z[j] = [(r.scores[j] - allv.mean()) / sd for r in results]
    disagreement = np.zeros(n)
    for i, k in combinations(range(len(results)), 2):
        outs = np.stack([stats.outcomes(z[j][i], z[j][k]) for j in judges]) if judges else np.zeros((1, n))
        disagreement += outs.max(axis=0) - outs.min(axis=0)
        for j in judges:  # tie-break: the bigger the gaps, the more the example says
            disagreement += 1e-3 * np.abs(z[j][i] - z[j][k])
    order = np.argsort(-disagreement, kind="stable")[: cc.examples]
    out = []
    for p_idx in order:
        p = prompts.records[p_idx]
        answers_ = []
        for r in results:
            a = {"ref": r.ref, "response": r.responses[p_idx], "length_words": int(r.lengths[p_idx]),
                 "refused": bool(r.refused[p_idx]), "scores": {j: float(r.scores[j][p_idx]) for j in judges},
                 "refusal_phrase": matched_phrase(r.responses[p_idx]) if r.refused[p_idx] else None}
            if r.oracle is not None:
                a["oracle"] = r.oracle[p_idx]
            answers_.append(a)
        best = {j: max(answers_, key=lambda a, j=j: a["scores"][j])["ref"] for j in judges}
        out.append({"index": int(p_idx), "id": p.id, "category": p.category, "group": str(groups[p_idx]),
                    "is_safety": p.is_safety, "messages": p.messages, "disagreement": float(disagreement[p_idx]),
                    "preferred_by": best, "answers": answers_})
    return out


def per_prompt_rows(prompts: LoadResult, results: list[CheckpointResult]) -> list[dict]:
    rows = []
    for i, p in enumerate(prompts.records):
        row = {"index": i, "id": p.id, "category": p.category, "is_safety": p.is_safety, "messages": p.messages,
               "answers": {}}
        for r in results:
            a = {"response": r.responses[i], "scores": {j: float(v[i]) for j, v in r.scores.items()},
                 "refused": bool(r.refused[i]),
                 "refusal_phrase": matched_phrase(r.responses[i]) if r.refused[i] else None}
            if r.tokens is not None:
                a["length_tokens"] = int(r.tokens[i])
            if r.oracle is not None:
                a["oracle"] = r.oracle[i]
            if r.kl is not None:
                a["kl_to_reference"] = float(r.kl[i])
            row["answers"][r.ref] = a
        rows.append(_clean(row))
    return rows


def export_pairs(path: Path, prompts: LoadResult, results: list[CheckpointResult]) -> int:
    """JSONL for `camelid annotate import`: {prompt, responses: {ckpt: text}, id, category, source}."""
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, p in enumerate(prompts.records):
            responses = {r.ref: r.responses[i] for r in results if r.responses[i].strip()}
            if len(responses) < 2:  # the annotation app needs two non-empty answers to compare
                continue
            row = {"prompt": p.messages, "responses": responses, "id": p.id or f"prompt-{i}",
                   "category": p.category, "source": p.source}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


HEADLINE_KEYS = ("mean_length_words", "refusal_rate", "over_refusal_rate", "safety_violation_rate", "mean_score",
                 "harmful_refusal_rate", "mean_length_tokens", "task_accuracy_per_family", "kl_to_reference",
                 "exact_match")


def headline(numbers: dict) -> dict:
    """The manifest's metrics: per-checkpoint rates, lengths, family accuracies, KL; pairwise win rates with
    their intervals and family differences (A - B); ratings (report.json has everything)."""
    out: dict = {"n_prompts": numbers["prompts"]["n"], "checkpoints": {}}
    for c in numbers["checkpoints"]:
        out["checkpoints"][c["ref"]] = {k: c[k] for k in HEADLINE_KEYS if k in c}
    out["elo"] = {j: {ref: r["elo"] for ref, r in rs.items()} for j, rs in numbers["ratings"].items()}
    out["refusal_detector"] = numbers["refusal_detector"]["name"]
    out["pairs"] = [{"a": p["a"], "b": p["b"], "win_rate": {j: w["win_rate"] for j, w in p["judges"].items()},
                     "task_accuracy_diff_per_family": {f: d["diff"]["value"]
                                                       for f, d in p["task_accuracy_per_family"].items()}}
                    for p in numbers["pairs"]]
    return out
