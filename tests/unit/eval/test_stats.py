"""Exact math of the comparison numbers on hand-made scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camelid.eval import stats


def test_outcomes_and_ties():
    a = np.array([1.0, 2.0, 3.0, 3.05])
    b = np.array([2.0, 2.0, 1.0, 3.0])
    assert stats.outcomes(a, b).tolist() == [0.0, 0.5, 1.0, 1.0]
    assert stats.outcomes(a, b, tie=0.1).tolist() == [0.0, 0.5, 1.0, 0.5]


def test_win_tie_loss_point_values_are_exact():
    o = np.array([1, 1, 1, 0.5, 0, 1, 0.5, 0, 1, 1], dtype=float)  # 6 wins, 2 ties, 2 losses
    w = stats.win_tie_loss(o, n_boot=500, seed=1)
    assert w.n == 10
    assert (w.win.value, w.tie.value, w.loss.value) == (0.6, 0.2, 0.2)
    assert w.win_rate.value == pytest.approx(0.7)
    for iv in (w.win, w.tie, w.loss, w.win_rate):
        assert iv.lo <= iv.value <= iv.hi


def test_bootstrap_of_unanimous_outcomes_has_zero_width():
    w = stats.win_tie_loss(np.ones(25), n_boot=200)
    assert (w.win.lo, w.win.hi) == (1.0, 1.0)
    assert (w.loss.lo, w.loss.hi) == (0.0, 0.0)


def test_bootstrap_resamples_prompts_uniformly():
    # n=2 outcomes [1, 0]: a resample's win share is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4
    counts = stats.bootstrap_counts(2, 40000, seed=0)
    shares = counts @ np.array([1.0, 0.0]) / 2
    freq = [np.mean(shares == v) for v in (0.0, 0.5, 1.0)]
    assert freq == pytest.approx([0.25, 0.5, 0.25], abs=0.01)
    assert counts.sum(axis=1).tolist() == [2.0] * 40000


def test_bootstrap_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    o = (rng.random(400) < 0.6).astype(float)
    p = o.mean()
    w = stats.win_tie_loss(o, n_boot=4000, seed=0)
    half = 1.96 * math.sqrt(p * (1 - p) / len(o))
    assert w.win.lo == pytest.approx(p - half, abs=0.006)
    assert w.win.hi == pytest.approx(p + half, abs=0.006)


def test_empty_comparison_gives_nan_not_a_crash():
    w = stats.win_tie_loss(np.array([]))
    assert w.n == 0 and math.isnan(w.win_rate.value)


def test_bradley_terry_on_a_hand_made_matrix():
    # A beats B 3:1 in 4 games: the BT MLE (prior 0) gives odds 3, i.e. theta_A - theta_B = log 3
    theta = stats.bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]), prior=0.0)
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-8)
    assert theta.sum() == pytest.approx(0.0, abs=1e-12)
    assert stats.elo(theta)[0] - stats.elo(theta)[1] == pytest.approx(400 * math.log10(3), abs=1e-6)


def test_bradley_terry_recovers_known_strengths_from_simulated_games():
    rng = np.random.default_rng(0)
    true_elo = np.array([0.0, 100.0, 250.0, 400.0])
    p = 10 ** (true_elo / 400)
    k, games = len(p), 3000
    wins = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            w = rng.binomial(games, p[i] / (p[i] + p[j]))
            wins[i, j], wins[j, i] = w, games - w
    got = stats.elo(stats.bradley_terry(wins))
    assert (got - got[0]) == pytest.approx(true_elo, abs=20)


def test_bradley_terry_keeps_an_unbeaten_player_finite():
    theta = stats.bradley_terry(np.array([[0.0, 10.0], [0.0, 0.0]]))
    assert np.isfinite(theta).all() and theta[0] > theta[1]


def test_elo_ratings_from_scores_with_intervals():
    rng = np.random.default_rng(1)
    quality = np.array([0.0, 0.5, 1.5])
    scores = quality[:, None] + rng.normal(size=(3, 300))  # (K, N)
    r = stats.elo_ratings(scores, ["a", "b", "c"], n_boot=300)
    assert r["a"]["elo"] < r["b"]["elo"] < r["c"]["elo"]
    assert np.mean([v["elo"] for v in r.values()]) == pytest.approx(1000.0)
    for v in r.values():
        assert v["lo"] <= v["elo"] <= v["hi"]
    assert r["a"]["hi"] < r["c"]["lo"]  # a 1.5-sd gap is far outside the noise on 300 prompts


def test_pairwise_wins_matrix():
    scores = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, -1.0]])  # (K=3, N=2)
    w = stats.pairwise_wins(scores)
    assert w[0].tolist() == [[0, 1, 0], [0, 0, 0], [1, 1, 0]]
    assert w[1].tolist() == [[0, 0.5, 1], [0.5, 0, 1], [0, 0, 0]]


def test_length_controlled_win_rate_equals_raw_when_lengths_are_equal():
    o = np.array([1, 1, 1, 0, 0.5, 1, 0, 1], dtype=float)
    lc = stats.length_controlled_win_rate(o, np.full(8, 10), np.full(8, 10), n_boot=100)
    assert lc.value == pytest.approx(o.mean(), abs=1e-3)


def test_length_controlled_win_rate_removes_a_pure_length_preference():
    # The judge prefers the longer answer every time; A is longer on 70% of prompts.
    rng = np.random.default_rng(0)
    n = 400
    len_b = rng.integers(20, 40, n).astype(float)
    longer = rng.random(n) < 0.7
    len_a = np.where(longer, len_b + rng.integers(5, 15, n), len_b - rng.integers(5, 15, n))
    o = np.where(len_a > len_b, 0.9, 0.1)  # soft: nearly always the longer one
    o = (rng.random(n) < o).astype(float)
    raw = o.mean()
    lc = stats.length_controlled_win_rate(o, len_a, len_b, n_boot=200)
    assert raw > 0.6
    assert lc.value == pytest.approx(0.5, abs=0.08)
    assert lc.lo <= lc.value <= lc.hi
