"""bench/rounds_noise.py's paired numbers: per-seed accuracies, the mean paired difference and its intervals."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.fixture(scope="module")
def noise():
    sys.path.insert(0, str(BENCH))  # rounds_noise imports its sibling rounds_experiments
    try:
        spec = importlib.util.spec_from_file_location("rounds_noise", BENCH / "rounds_noise.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _run(seed: int, noise: str, right: list[bool]) -> dict:
    return {"seed": seed, "noise": noise, "rms": {"helpfulness": {"right": right}}}


def test_paired_difference_is_per_seed_and_pair(noise):
    # 8 pairs; at 0% seed 0 gets all right and seed 1 six; at 20% both get four (a different four for seed 1).
    runs = [_run(0, "noise0", [True] * 8), _run(0, "noise20", [True] * 4 + [False] * 4),
            _run(1, "noise0", [True] * 6 + [False] * 2), _run(1, "noise20", [False] * 4 + [True] * 4),
            _run(2, "noise0", [True] * 8)]  # seed 2 has no 20% run: left out of the pairing
    p = noise.paired(runs, "helpfulness", draws=500)
    assert p["seeds"] == [0, 1] and p["n"] == 8
    assert p["acc0"] == [1.0, 0.75] and p["acc20"] == [0.5, 0.5]
    assert p["diff"] == pytest.approx(0.375) and p["seeds_0_ahead"] == 2
    assert p["mean0"] == pytest.approx(0.875) and p["sd0"] == pytest.approx(0.1767767, abs=1e-6)
    assert p["lo"] <= p["diff"] <= p["hi"] and p["lo2"] <= p["diff"] <= p["hi2"]


def test_no_difference_when_the_labels_did_not_matter(noise):
    same = [True, False] * 10
    runs = [_run(s, n, same) for s in range(4) for n in ("noise0", "noise20")]
    p = noise.paired(runs, "helpfulness", draws=200)
    assert (p["diff"], p["lo"], p["hi"], p["lo2"], p["hi2"], p["seeds_0_ahead"]) == (0, 0, 0, 0, 0, 0)
