"""Reward-model evaluation: accuracy per rating level (Llama 2 Table 8) and unsafe-answer detection."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from camelid.data.records import RATINGS

LEVEL_NAMES = {"significantly_better": "Significantly", "better": "Better",
               "slightly_better": "Slightly", "negligibly_better": "Negligibly"}


def accuracy_by_level(r_chosen: torch.Tensor, r_rejected: torch.Tensor, ratings: Sequence[str]) -> dict:
    """{"overall": acc, "n": N, "levels": {rating: {"accuracy", "n"}}}; r_* are (B,) scores, ties count wrong.

    Levels with no pairs are left out (an accuracy of 0/0 is not 0).
    """
    if len(r_chosen) != len(r_rejected) or len(r_chosen) != len(ratings):
        raise ValueError(f"length mismatch: {len(r_chosen)} chosen, {len(r_rejected)} rejected, {len(ratings)} ratings")
    correct = (torch.as_tensor(r_chosen) > torch.as_tensor(r_rejected)).tolist()  # (B,)
    levels = {}
    for level in RATINGS:
        hits = [c for c, r in zip(correct, ratings, strict=True) if r == level]
        if hits:
            levels[level] = {"accuracy": sum(hits) / len(hits), "n": len(hits)}
    return {"overall": sum(correct) / len(correct) if correct else float("nan"), "n": len(correct), "levels": levels}


def unsafe_detection(scores: torch.Tensor, safe: Sequence[bool | None], threshold: float = 0.15) -> dict:
    """Precision/recall of "unsafe" when a response is flagged by sigmoid(score) < threshold (PPO's rule).

    scores: (N,) calibrated scores; responses with an unknown label (None) are left out.
    """
    pairs = [(float(s), lab) for s, lab in zip(torch.as_tensor(scores).tolist(), safe, strict=True) if lab is not None]
    flagged = [torch.sigmoid(torch.tensor(s)).item() < threshold for s, _ in pairs]
    unsafe = [not lab for _, lab in pairs]
    tp = sum(f and u for f, u in zip(flagged, unsafe, strict=True))
    n_flagged, n_unsafe = sum(flagged), sum(unsafe)
    return {
        "threshold": threshold,
        "n": len(pairs),
        "n_unsafe": n_unsafe,
        "n_flagged": n_flagged,
        "precision": tp / n_flagged if n_flagged else float("nan"),
        "recall": tp / n_unsafe if n_unsafe else float("nan"),
    }


def format_table8(rows: Sequence[tuple[str, str, dict]]) -> str:
    """A Llama 2 Table 8-style text table from (test set, reward model, accuracy_by_level(...)) rows."""
    head = f"{'test set':<14}{'reward model':<28}" + "".join(f"{LEVEL_NAMES[lv]:>14}" for lv in RATINGS) + \
        f"{'Avg':>9}{'n':>7}"
    lines = [head, "-" * len(head)]
    for test_set, model, acc in rows:
        cells = "".join(f"{acc['levels'][lv]['accuracy']:>14.3f}" if lv in acc["levels"] else f"{'-':>14}"
                        for lv in RATINGS)
        lines.append(f"{test_set:<14}{model:<28}{cells}{acc['overall']:>9.3f}{acc['n']:>7}")
    return "\n".join(lines)
