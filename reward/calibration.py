"""Score calibration: PPO flags a response as unsafe when sigmoid(safety score) < 0.15, so raw RM
scores (whose zero point is arbitrary) are mapped to ``(raw - offset) / temperature`` first.

- ``logistic``: fit P(safe | raw) = sigmoid((raw - offset) / temperature) on held-out responses with
  safety labels (the safety RM). sigmoid(calibrated) < 0.15 then means "85% sure it is unsafe".
- ``threshold``: temperature from the logistic fit, offset moved so that sigmoid(calibrated) = threshold
  (PPO's 0.15) falls at the raw score that best separates unsafe from safe held-out responses (max F1
  of "unsafe"). Platt scaling alone leaves the 0.15 point wherever the class balance puts it, which on
  toy data was below every response: the rule then never fires.
- ``center``: offset = mean held-out score, temperature 1 (the helpfulness RM: PPO whitens it anyway).
- ``none``: identity.
Stored as calibration.json next to model/ and applied by `camelid.reward.scoring`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch

FILENAME = "calibration.json"
MIN_PER_CLASS = 5  # fewer labelled safe or unsafe responses than this: a logistic fit means nothing


def identity() -> dict:
    return {"method": "none", "offset": 0.0, "temperature": 1.0}


def apply(raw: torch.Tensor, cal: dict) -> torch.Tensor:
    """(N,) raw scores -> (N,) calibrated scores."""
    return (raw - cal["offset"]) / cal["temperature"]


def fit_center(raw: torch.Tensor) -> dict:
    return {"method": "center", "offset": float(raw.float().mean()), "temperature": 1.0}


def fit_logistic(raw: torch.Tensor, safe: Sequence[bool], *, l2: float = 1e-3, steps: int = 200) -> dict:
    """Platt scaling of the safe label on raw scores; a little L2 keeps separable data finite."""
    x = raw.detach().double()
    y = torch.tensor([1.0 if s else 0.0 for s in safe], dtype=torch.float64)
    mu, sd = x.mean(), x.std().clamp_min(1e-6)
    z = (x - mu) / sd  # standardise so one L2 weight suits any score scale
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)  # slope, intercept on z
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(w[0] * z + w[1], y) + l2 * w[0] ** 2
        loss.backward()
        return loss

    opt.step(closure)
    a, c = (w[0] / sd).item(), (w[1] - w[0] * mu / sd).item()  # back to raw units: a * raw + c
    if a <= 1e-8:  # scores do not rank safe above unsafe: calibrating would invert them
        return {**fit_center(raw), "note": "logistic fit had a non-positive slope; fell back to centring"}
    return {"method": "logistic", "offset": -c / a, "temperature": 1.0 / a}


def best_unsafe_cut(raw: torch.Tensor, safe: Sequence[bool]) -> tuple[float, float]:
    """(cut, F1): flagging raw < cut as unsafe maximises F1 of "unsafe"; cuts are midpoints of sorted scores."""
    xs = sorted(zip(raw.tolist(), safe, strict=True))
    n_unsafe = sum(1 for _, s in xs if not s)
    best, cut, tp, flagged = -1.0, xs[0][0] - 1.0, 0, 0
    for i in range(len(xs) - 1):
        flagged += 1
        tp += not xs[i][1]
        if xs[i][0] == xs[i + 1][0]:  # no cut between equal scores
            continue
        f1 = 2 * tp / (flagged + n_unsafe) if n_unsafe else 0.0
        if f1 > best:
            best, cut = f1, (xs[i][0] + xs[i + 1][0]) / 2
    return cut, best


def fit_threshold(raw: torch.Tensor, safe: Sequence[bool], threshold: float) -> dict:
    platt = fit_logistic(raw, safe)
    if platt["method"] != "logistic":
        return platt
    cut, f1 = best_unsafe_cut(raw, safe)
    offset = cut - platt["temperature"] * math.log(threshold / (1 - threshold))
    return {"method": "threshold", "offset": offset, "temperature": platt["temperature"],
            "platt_offset": platt["offset"], "raw_cut": cut, "cut_f1": f1, "threshold": threshold}


def fit(raw: torch.Tensor, safe: Sequence[bool | None], method: str, threshold: float = 0.15) -> dict:
    """Fit ``method`` (auto | threshold | logistic | center | none) on (N,) held-out raw scores and safe labels.

    auto: threshold when enough responses carry each label, else center.
    """
    labelled = [(float(r), s) for r, s in zip(raw.tolist(), safe, strict=True) if s is not None]
    n_safe = sum(1 for _, s in labelled if s)
    n_unsafe = len(labelled) - n_safe
    if method == "none":
        return identity()
    enough = min(n_safe, n_unsafe) >= MIN_PER_CLASS
    xs, ys = torch.tensor([r for r, _ in labelled]), [s for _, s in labelled]
    if method in ("auto", "threshold") and enough:
        return fit_threshold(xs, ys, threshold)
    if method == "logistic" and enough:
        return fit_logistic(xs, ys)
    if method in ("logistic", "threshold"):
        return {**fit_center(raw), "note": f"too few labelled responses ({n_safe} safe, {n_unsafe} unsafe) "
                "for a logistic fit; fell back to centring"}
    return fit_center(raw)


def threshold_report(raw: torch.Tensor, cal: dict, threshold: float = 0.15) -> dict:
    """Where sigmoid(calibrated) = threshold falls: the raw score and the share of held-out responses below it."""
    raw_at = cal["offset"] + cal["temperature"] * math.log(threshold / (1 - threshold))
    return {"threshold": threshold, "raw_score_at_threshold": raw_at,
            "share_below": float((raw < raw_at).float().mean()) if len(raw) else float("nan"),
            "raw_mean": float(raw.mean()), "raw_std": float(raw.std()) if len(raw) > 1 else 0.0}


def save(cal: dict, folder: Path) -> None:
    (Path(folder) / FILENAME).write_text(json.dumps(cal, indent=2, sort_keys=True) + "\n")


def load(folder: Path) -> dict:
    p = Path(folder) / FILENAME
    return json.loads(p.read_text()) if p.is_file() else identity()
