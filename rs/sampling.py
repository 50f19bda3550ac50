"""Best-of-K selection and the K curve: pure functions on a (prompts, K) matrix of combined rewards.

Llama 2 (Touvron et al. 2023, §3.2.2, figure 7) plots the reward of the best of N samples against N: the
gap between the curve at N and at 1 is what rejection sampling can gain. Here the curve's value at k is
the *expected* best of k samples drawn (without replacement) from the K we have, averaged over prompts:
an exact function of the sorted rewards, so it does not depend on the order samples came in, equals the
mean reward at k = 1 and the best-of-K at k = K, and never decreases with k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def k_values(k: int) -> list[int]:
    """The K curve's points: 1, 2, 4, ... below k, then k itself."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out, n = [], 1
    while n < k:
        out.append(n)
        n *= 2
    return [*out, k]


def expected_max(rewards, k: int) -> np.ndarray:
    """E[max of k of each row's K rewards, drawn without replacement]. (N, K) -> (N,)

    With a row sorted ascending, x_(i) (1-based) is the maximum of a k-subset in C(i-1, k-1) of the C(K, k)
    subsets, so E = sum_i C(i-1, k-1) / C(K, k) * x_(i).
    """
    x = np.sort(np.asarray(rewards, dtype=np.float64), axis=1)  # (N, K)
    n = x.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    total = math.comb(n, k)
    weights = np.array([math.comb(i - 1, k - 1) / total for i in range(1, n + 1)])  # (K,)
    return x @ weights


def k_curve(rewards, ks: list[int] | None = None) -> list[list[float]]:
    """[[k, mean over prompts of the expected best of k], ...] for k in ``ks`` (default k_values(K))."""
    r = np.asarray(rewards, dtype=np.float64)
    ks = ks or k_values(r.shape[1])
    return [[k, float(expected_max(r, k).mean())] for k in ks]


@dataclass
class Selection:
    """Which sample each prompt keeps, and why a prompt keeps none."""

    index: np.ndarray        # (N,) int: the best sample of each prompt (the first one on ties)
    best: np.ndarray         # (N,) float: its combined reward
    keep: np.ndarray         # (N,) bool: the prompt's best answer goes into the fine-tuning data
    below_margin: np.ndarray  # (N,) bool: dropped because it did not beat the current answer by the margin
    empty: np.ndarray        # (N,) bool: dropped because the best answer is empty (nothing to learn from)
    off_label: np.ndarray    # (N,) bool: dropped because no sample is eligible (``eligible``)
    switched: np.ndarray     # (N,) bool: the highest reward went to an ineligible sample


def select(rewards, answers: list[list[str]], current=None, margin: float | None = None, eligible=None,
           current_eligible=None) -> Selection:
    """Best of each row of ``rewards`` (N, K); kept unless empty or (with a margin) not better than ``current``.

    ``current`` (N,) is the combined reward of the policy's current answer; with ``margin`` m a prompt keeps
    its best only if best - current > m (strictly: an answer that merely equals the current one teaches
    nothing new). ``eligible`` (N, K) bool: only these samples may be picked (a row with none is dropped,
    ``off_label``); ``current_eligible`` (N,): an ineligible current answer sets no bar and is never kept.
    """
    r = np.asarray(rewards, dtype=np.float64)
    ok = np.ones(r.shape, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    index = np.where(ok, r, -np.inf).argmax(axis=1)  # numpy's argmax returns the first maximum
    best = r[np.arange(len(r)), index]
    off = ~ok.any(axis=1)
    empty = np.array([not answers[i][j].strip() for i, j in enumerate(index)], dtype=bool) & ~off
    below = np.zeros(len(r), dtype=bool)
    if margin is not None:
        if current is None:
            raise ValueError("a margin needs the current answers' rewards")
        cur = np.asarray(current, dtype=np.float64)
        if current_eligible is not None:
            cur = np.where(np.asarray(current_eligible, dtype=bool), cur, -np.inf)
        below = ~(best - cur > margin) & ~off
    return Selection(index=index, best=best, keep=~empty & ~below & ~off, below_margin=below & ~empty, empty=empty,
                     off_label=off, switched=(index != r.argmax(axis=1)) & ~off)


def selection_stats(rewards, selection: Selection, current=None, used_safety=None) -> dict:
    """What `rs-sample` publishes: mean reward vs best-of-K, the K curve, and how many prompts kept an answer.

    ``used_safety`` (N, K) bool marks samples whose combined reward is the safety score.
    """
    r = np.asarray(rewards, dtype=np.float64)
    n, k = r.shape
    stats = {
        "prompts": n, "k": k, "samples": n * k,
        "mean_reward": _round(r.mean()),
        "mean_best_of_k": _round(selection.best.mean()),
        "gain": _round(selection.best.mean() - r.mean()),
        "k_curve": [[kk, _round(v)] for kk, v in k_curve(r)],
        "kept": int(selection.keep.sum()),
        "dropped_below_margin": int(selection.below_margin.sum()),
        "dropped_empty": int(selection.empty.sum()),
        "dropped_off_label": int(selection.off_label.sum()),
        "switched_by_label": int(selection.switched.sum()),
        "mean_kept_reward": _round(selection.best[selection.keep].mean()) if selection.keep.any() else None,
    }
    if current is not None:
        stats["mean_current_reward"] = _round(np.mean(current))
    if used_safety is not None:
        chosen = np.asarray(used_safety, dtype=bool)[np.arange(n), selection.index]
        stats["best_used_safety_share"] = _round(chosen.mean())
    return stats


def _round(x) -> float:
    # 6 decimals: enough for rewards, and rounding is monotone, so the K curve stays non-decreasing
    # where float summation leaves the mean a last-bit above an equal maximum.
    return round(float(x), 6)


def oracle_selection(correct, chosen, families: list[str]) -> dict:
    """Best-of-K seen by an oracle, overall and per family: the K curve of right answers (k = 1: a sample's
    accuracy; k = K: some sample is right) against the accuracy of the answers the reward picked.

    ``correct`` (N, K) 1/0: the oracle's verdict on each sample; ``chosen`` (N,) the picked sample of each prompt.
    A K curve far above ``selected`` means the reward model cannot tell the right answers apart.
    """
    c = np.asarray(correct, dtype=np.float64)
    picked = c[np.arange(len(c)), np.asarray(chosen)]  # (N,)
    fams = np.asarray(families)

    def summary(rows: np.ndarray) -> dict:
        return {"n": int(rows.sum()), "selected": _round(picked[rows].mean()),
                "k_curve": [[k, _round(v)] for k, v in k_curve(c[rows])]}

    return {"all": summary(np.ones(len(c), dtype=bool)),
            "per_family": {f: summary(fams == f) for f in sorted(set(families))}}
