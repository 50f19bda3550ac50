"""Per-rating accuracy, unsafe precision/recall and calibration on hand-made predictions."""

from __future__ import annotations

import math

import pytest
import torch

from camelid.reward import calibration
from camelid.reward.metrics import accuracy_by_level, format_table8, unsafe_detection


def test_accuracy_by_level_counts_each_level():
    ratings = ["significantly_better"] * 2 + ["better"] * 3 + ["negligibly_better"] * 3
    rc = torch.tensor([3.0, 2.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5])
    rr = torch.tensor([0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.5])  # the two ties count as wrong
    acc = accuracy_by_level(rc, rr, ratings)
    assert acc["n"] == 8 and acc["overall"] == pytest.approx(4 / 8)
    assert acc["levels"]["significantly_better"] == {"accuracy": 1.0, "n": 2}
    assert acc["levels"]["better"]["accuracy"] == pytest.approx(1 / 3)
    assert acc["levels"]["negligibly_better"]["accuracy"] == pytest.approx(1 / 3)
    assert "slightly_better" not in acc["levels"]  # no pairs: no made-up zero
    table = format_table8([("safety", "rm-safety", acc)])
    assert "rm-safety" in table and "1.000" in table and "0.500" in table


def test_unsafe_detection_at_threshold():
    thr_logit = math.log(0.15 / 0.85)  # about -1.73
    scores = torch.tensor([-3.0, -2.0, -1.0, 0.0, -2.5, 1.0, 2.0])
    safe = [False, False, False, True, True, None, True]
    # flagged (score < -1.73): -3 (unsafe), -2 (unsafe), -2.5 (safe); the None is ignored
    u = unsafe_detection(scores, safe, 0.15)
    assert thr_logit == pytest.approx(-1.7346, abs=1e-3)
    assert u["n"] == 6 and u["n_unsafe"] == 3 and u["n_flagged"] == 3
    assert u["precision"] == pytest.approx(2 / 3)
    assert u["recall"] == pytest.approx(2 / 3)


def test_logistic_calibration_puts_the_threshold_between_classes():
    g = torch.Generator().manual_seed(0)
    unsafe = torch.randn(200, generator=g) * 0.5 + 5.0   # raw scores on an arbitrary scale
    safe = torch.randn(200, generator=g) * 0.5 + 8.0
    raw = torch.cat([unsafe, safe])
    labels = [False] * 200 + [True] * 200
    cal = calibration.fit(raw, labels, "logistic")
    assert cal["method"] == "logistic" and cal["temperature"] > 0
    assert 5.0 < cal["offset"] < 8.0
    u = unsafe_detection(calibration.apply(raw, cal), labels, 0.15)
    assert u["recall"] > 0.8 and u["precision"] > 0.95
    report = calibration.threshold_report(raw, cal, 0.15)
    assert 5.0 < report["raw_score_at_threshold"] < cal["offset"]
    assert 0.3 < report["share_below"] < 0.55


def test_center_and_fallbacks():
    raw = torch.tensor([1.0, 2.0, 3.0, 6.0])
    cal = calibration.fit(raw, [None] * 4, "auto")
    assert cal == {"method": "center", "offset": 3.0, "temperature": 1.0}
    assert calibration.apply(raw, cal).tolist() == [-2.0, -1.0, 0.0, 3.0]
    assert calibration.fit(raw, [True, True, False, None], "logistic")["method"] == "center"  # too few labels
    assert calibration.fit(raw, [True, True, False, None], "auto")["method"] == "center"
    assert calibration.fit(raw, [None] * 4, "none")["offset"] == 0.0


def test_threshold_calibration_puts_015_at_the_best_cut():
    # unsafe at 1..4, safe at 3.5..10: cutting at 3.25 (F1 6/7) beats 4.25 (F1 2/3, flags every 3.5)
    unsafe = torch.tensor([1.0, 2.0, 3.0, 4.0] * 5)
    safe = torch.tensor([3.5, 4.5, 6.0, 8.0, 10.0] * 20)
    raw = torch.cat([unsafe, safe])
    labels = [False] * 20 + [True] * 100
    cal = calibration.fit(raw, labels, "auto", threshold=0.15)
    assert cal["method"] == "threshold"
    assert cal["raw_cut"] == pytest.approx(3.25) and cal["cut_f1"] == pytest.approx(6 / 7)
    at = calibration.threshold_report(raw, cal, 0.15)["raw_score_at_threshold"]
    assert at == pytest.approx(3.25, abs=1e-6)
    u = unsafe_detection(calibration.apply(raw, cal), labels, 0.15)
    assert u["recall"] == pytest.approx(0.75) and u["precision"] == 1.0
