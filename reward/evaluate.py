"""The reward stage's evaluation: accuracy per rating level (Llama 2 Table 8), calibration, score plots."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from camelid.data.records import PreferencePair
from camelid.log import get_logger
from camelid.registry import Artifact, Registry
from camelid.reward import calibration
from camelid.reward.config import RewardModelConfig
from camelid.reward.data import TestSet
from camelid.reward.metrics import accuracy_by_level, format_table8, unsafe_detection
from camelid.reward.scoring import raw_scores, tokenize

log = get_logger("reward")


def score_pairs(model, tokenizer, pairs: list[PreferencePair], batch_size: int = 32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores of (chosen, rejected): two (N,) tensors."""
    ids = [tokenize(tokenizer, p.prompt, p.chosen) for p in pairs] + \
          [tokenize(tokenizer, p.prompt, p.rejected) for p in pairs]
    s = raw_scores(model, tokenizer, ids, batch_size=batch_size)
    return s[:len(pairs)], s[len(pairs):]


def evaluate(model, tokenizer, objective: str, rm: RewardModelConfig, tests: list[TestSet], fallback: list[dict],
             threshold: float) -> tuple[dict, dict, dict]:
    """(metrics, calibration, plot data): per-level accuracy per test set, calibration fitted on own test set."""
    metrics: dict = {"accuracy": {}}
    scored = {}
    for t in tests:
        if not t.pairs:
            continue
        rc, rr = score_pairs(model, tokenizer, t.pairs)
        scored[t.objective] = (t, rc, rr)
        metrics["accuracy"][t.objective] = accuracy_by_level(rc, rr, [p.rating for p in t.pairs])
    method = rm.calibration if rm.calibration != "auto" else ("threshold" if objective == "safety" else "center")
    own = scored.get(objective)
    if own is not None:
        t, rc, rr = own
        raw = torch.cat([rc, rr])
        labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
    else:  # no held-out set: centre on training scores (labels from the rows)
        sample = fallback[:256]
        raw = raw_scores(model, tokenizer, [r["chosen_ids"] for r in sample] + [r["rejected_ids"] for r in sample])
        labels = [None] * len(raw)
        method = "center" if method in ("logistic", "threshold") else method
    cal = calibration.fit(raw, labels, method, threshold)
    cal["fitted_on"] = f"{objective} held-out responses" if own is not None else "training responses (no eval_data)"
    metrics["calibration"] = {**cal, **calibration.threshold_report(raw, cal, threshold)}
    safety = scored.get("safety")
    if objective == "safety" and safety is not None:
        t, rc, rr = safety
        labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
        metrics["unsafe_detection"] = unsafe_detection(calibration.apply(torch.cat([rc, rr]), cal), labels, threshold)
    plot = {"scored": scored, "calibration": cal, "threshold": threshold}
    return metrics, cal, plot


def save_histogram(path: Path, objective: str, plot: dict) -> bool:
    """Calibrated score histograms: chosen vs rejected, and safe vs unsafe with PPO's threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored, cal, thr = plot["scored"], plot["calibration"], plot["threshold"]
    if objective not in scored:
        return False
    t, rc, rr = scored[objective]
    c, r = calibration.apply(rc, cal), calibration.apply(rr, cal)
    resp = torch.cat([c, r])
    labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
    x_thr = math.log(thr / (1 - thr))
    bins = torch.linspace(float(resp.min()), float(resp.max()) + 1e-6, 41).tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist(c.tolist(), bins=bins, alpha=0.6, label=f"chosen (n={len(c)})")
    axes[0].hist(r.tolist(), bins=bins, alpha=0.6, label=f"rejected (n={len(r)})")
    axes[0].set_title(f"rm-{objective} on {objective} held-out: chosen vs rejected")
    safe = [s for s, lab in zip(resp.tolist(), labels, strict=True) if lab is True]
    unsafe = [s for s, lab in zip(resp.tolist(), labels, strict=True) if lab is False]
    axes[1].hist(safe, bins=bins, alpha=0.6, label=f"safe (n={len(safe)})", color="tab:green")
    axes[1].hist(unsafe, bins=bins, alpha=0.6, label=f"unsafe (n={len(unsafe)})", color="tab:red")
    axes[1].set_title("by response safety label")
    for ax in axes:
        ax.axvline(x_thr, color="k", linestyle="--", label=f"sigmoid = {thr} (x = {x_thr:.2f})")
        ax.set_xlabel(f"calibrated score ({cal['method']})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def table8_rows(ref: str, metrics: dict, registry: Registry, other: str | None) -> list[list]:
    """Rows (test set, RM, accuracy): this RM's, then the other RM's (registry name ``other``) from its latest
    manifest if it exists."""
    rows = [[obj, ref, acc] for obj, acc in metrics["accuracy"].items()]
    if other and registry.versions(other):
        art = registry.resolve(other)
        for obj, acc in art.manifest.get("metrics", {}).get("eval", {}).get("accuracy", {}).items():
            rows.append([obj, art.ref, acc])
    return sorted(rows, key=lambda r: (r[0] != "helpfulness", r[1]))


def report(art: Artifact, objective: str, metrics: dict, table: list[list]) -> None:
    if table:
        log.info("accuracy per rating level (Llama 2 Table 8 style):\n%s", format_table8(table))
    c = metrics["eval"]["calibration"]
    log.info("calibration %s: offset %.3f, temperature %.3f; sigmoid=%.2f falls at raw score %.3f, %.1f%% of "
             "held-out responses below it", c["method"], c["offset"], c["temperature"], c["threshold"],
             c["raw_score_at_threshold"], 100 * c["share_below"])
    u = metrics["eval"].get("unsafe_detection")
    if u:
        log.info("unsafe at sigmoid(score) < %.2f: precision %.3f, recall %.3f (%d unsafe of %d responses)",
                 u["threshold"], u["precision"], u["recall"], u["n_unsafe"], u["n"])
    log.info("published %s (%.0fs)", art.ref, metrics["seconds"])
