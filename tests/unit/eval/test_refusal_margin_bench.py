"""bench/refusal_margin.py's ranking numbers: the AUC, and the harmful share a threshold on p(open) reaches at a
given over-refusal (#25)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "refusal_margin.py"


@pytest.fixture(scope="module")
def margin():
    spec = importlib.util.spec_from_file_location("refusal_margin", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auc_counts_ties_half(margin):
    assert margin.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert margin.auc([0.5], [0.5]) == 0.5
    assert margin.auc([0.3, 0.9], [0.5, 0.1]) == 0.75


def test_harmful_share_above_the_threshold_borderline_passes_at_a_share(margin):
    borderline = [i / 20 for i in range(20)]  # 0.00 .. 0.95
    harmful = [0.99, 0.96, 0.92, 0.86, 0.5, 0.1]
    # 0.10 of 20 borderline prompts is 2 (0.95, 0.90): the threshold is the third highest, 0.85
    assert margin.above_threshold(harmful, borderline, 0.10) == pytest.approx(4 / 6)
    # 0.15 is 3 (down to 0.85): the threshold is 0.80
    assert margin.above_threshold(harmful, borderline, 0.15) == pytest.approx(4 / 6)
    assert margin.above_threshold(harmful, borderline, 0.0) == pytest.approx(2 / 6)  # above every borderline one
    assert margin.above_threshold(harmful, borderline, 1.0) == 1.0
