"""Best-of-K, the margin and the K curve on hand-made rewards: exact numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from camelid.rs.sampling import expected_max, k_curve, k_values, select, selection_stats

REWARDS = np.array([[0.5, 2.0, -1.0, 1.0],
                    [3.0, 3.0, 0.0, -2.0],
                    [-1.0, -3.0, -2.0, -0.5]])  # (N=3, K=4)
ANSWERS = [["a0", "a1", "a2", "a3"], ["b0", "b1", "b2", "b3"], ["c0", "c1", "c2", "  "]]


def test_k_values_are_powers_of_two_then_k():
    assert k_values(1) == [1]
    assert k_values(4) == [1, 2, 4]
    assert k_values(6) == [1, 2, 4, 6]
    with pytest.raises(ValueError):
        k_values(0)


def test_expected_max_by_hand():
    # row 0 sorted: -1, 0.5, 1, 2. k=2: weights C(i-1,1)/C(4,2) = 0, 1/6, 2/6, 3/6
    assert expected_max(REWARDS, 2)[0] == pytest.approx((0.5 * 1 + 1.0 * 2 + 2.0 * 3) / 6)
    assert expected_max(REWARDS, 1) == pytest.approx(REWARDS.mean(axis=1))
    assert expected_max(REWARDS, 4) == pytest.approx(REWARDS.max(axis=1))
    with pytest.raises(ValueError):
        expected_max(REWARDS, 5)


def test_expected_max_equals_the_mean_over_every_subset():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 6))
    for k in range(1, 7):
        brute = [np.mean([max(row[list(c)]) for c in itertools.combinations(range(6), k)]) for row in r]
        assert expected_max(r, k) == pytest.approx(brute, rel=1e-12)


def test_k_curve_runs_from_mean_to_best_of_k_and_never_decreases():
    curve = k_curve(REWARDS)
    assert [k for k, _ in curve] == [1, 2, 4]
    assert curve[0][1] == pytest.approx(REWARDS.mean())
    assert curve[-1][1] == pytest.approx(REWARDS.max(axis=1).mean())
    values = [v for _, v in curve]
    assert values == sorted(values)


def test_select_takes_the_first_best_and_drops_empty_answers():
    s = select(REWARDS, ANSWERS)
    assert s.index.tolist() == [1, 0, 3]  # row 1 ties at 3.0: the first sample wins
    assert s.best.tolist() == [2.0, 3.0, -0.5]
    assert s.empty.tolist() == [False, False, True]  # row 2's best answer is blank
    assert s.keep.tolist() == [True, True, False]
    assert not s.below_margin.any()


def test_margin_keeps_only_a_strictly_better_best():
    current = np.array([1.0, 2.5, -5.0])  # best - current = 1.0, 0.5, 4.5
    s = select(REWARDS, ANSWERS, current, margin=0.5)
    assert s.below_margin.tolist() == [False, True, False]  # 0.5 is not more than 0.5
    assert s.keep.tolist() == [True, False, False]  # row 2 beats it, but its best is empty
    assert select(REWARDS, ANSWERS, current, margin=0.0).keep.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="margin needs"):
        select(REWARDS, ANSWERS, None, margin=0.1)


def test_selection_stats_by_hand():
    current = np.array([1.0, 2.5, -5.0])
    s = select(REWARDS, ANSWERS, current, margin=0.5)
    used = np.zeros_like(REWARDS, dtype=bool)
    used[0, 1] = used[2, 0] = True
    stats = selection_stats(REWARDS, s, current, used)
    assert stats["prompts"] == 3 and stats["k"] == 4 and stats["samples"] == 12
    assert stats["mean_reward"] == pytest.approx(round(REWARDS.mean(), 6))
    assert stats["mean_best_of_k"] == pytest.approx((2.0 + 3.0 - 0.5) / 3, abs=1e-6)
    assert stats["gain"] == pytest.approx((2.0 + 3.0 - 0.5) / 3 - REWARDS.mean(), abs=1e-6)
    assert stats["kept"] == 1 and stats["dropped_below_margin"] == 1 and stats["dropped_empty"] == 1
    assert stats["mean_kept_reward"] == 2.0
    assert stats["mean_current_reward"] == pytest.approx(round((1.0 + 2.5 - 5.0) / 3, 6))
    assert stats["best_used_safety_share"] == pytest.approx(round(1 / 3, 6))  # only row 0's best (sample 1)
    assert [k for k, _ in stats["k_curve"]] == [1, 2, 4]


def test_equal_samples_give_a_flat_curve_despite_float_rounding():
    r = np.full((3, 8), 0.1)
    values = [v for _, v in selection_stats(r, select(r, [["x"] * 8] * 3))["k_curve"]]
    assert values == [0.1, 0.1, 0.1, 0.1]


def test_oracle_selection_sets_the_rm_pick_against_the_oracles_best_of_k_per_family():
    from camelid.rs.sampling import oracle_selection

    correct = np.array([[0, 1, 0, 0],    # arith: one right sample of four, the RM picks a wrong one
                        [1, 1, 0, 0],    # arith: the RM picks a right one
                        [0, 0, 0, 0],    # lookup: none right
                        [1, 1, 1, 1]])   # harmful: always the right behaviour
    chosen = np.array([0, 1, 3, 2])
    got = oracle_selection(correct, chosen, ["arith", "arith", "lookup", "harmful"])
    arith = got["per_family"]["arith"]
    assert arith["n"] == 2 and arith["selected"] == 0.5
    # k = 1: the mean sample (0.25, 0.5); k = 2: 1 - C(3,2)/C(4,2) = 0.5 and 1 - 1/6; k = 4: both have a right one
    assert arith["k_curve"] == [[1, 0.375], [2, pytest.approx((0.5 + 5 / 6) / 2, abs=1e-6)], [4, 1.0]]
    assert got["per_family"]["lookup"] == {"n": 1, "selected": 0.0, "k_curve": [[1, 0.0], [2, 0.0], [4, 0.0]]}
    assert got["all"]["n"] == 4 and got["all"]["selected"] == 0.5 and got["all"]["k_curve"][-1] == [4, 0.75]
