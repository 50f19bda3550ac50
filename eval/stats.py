"""The numbers of a comparison: win/tie/loss, bootstrap intervals, Bradley-Terry ratings, LC win rate.

Everything here is plain numpy on per-prompt scores, so it is exact-testable on hand-made inputs.
An *outcome* of A against B on one prompt is 1 (A wins), 0.5 (tie) or 0 (A loses). Intervals are
percentile bootstraps that resample prompts (paired: both checkpoints keep the same prompts).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ELO_SCALE = 400.0 / math.log(10.0)  # natural-log strength -> Elo points
ELO_CENTER = 1000.0


def outcomes(a: np.ndarray, b: np.ndarray, tie: float = 0.0) -> np.ndarray:
    """Per-prompt outcome of A against B: 1 win, 0.5 tie (|a - b| <= tie), 0 loss.  # (N,)"""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return np.where(np.abs(d) <= tie, 0.5, np.where(d > 0, 1.0, 0.0))


def bootstrap_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each prompt is drawn in each of n_boot resamples of size n.  # (n_boot, n)"""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central ``level`` percentile interval of bootstrap samples (axis 0)."""
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return float(lo), float(hi)


@dataclass
class Interval:
    value: float
    lo: float
    hi: float


@dataclass
class WinTieLoss:
    """A against B on n prompts; win_rate counts a tie as half a win."""

    n: int
    win: Interval
    tie: Interval
    loss: Interval
    win_rate: Interval

    def to_dict(self) -> dict:
        return asdict(self)


def win_tie_loss(o: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> WinTieLoss:
    """Rates of each outcome with bootstrap intervals, from per-prompt outcomes (1 / 0.5 / 0)."""
    o = np.asarray(o, dtype=float)
    n = len(o)
    if n == 0:
        nan = Interval(math.nan, math.nan, math.nan)
        return WinTieLoss(0, nan, nan, nan, nan)
    counts = bootstrap_counts(n, n_boot, seed)  # (B, n)
    out = {}
    for name, indicator in (("win", o == 1.0), ("tie", o == 0.5), ("loss", o == 0.0), ("win_rate", o)):
        x = indicator.astype(float)
        samples = counts @ x / n  # (B,)
        out[name] = Interval(float(x.mean()), *percentile_interval(samples, level))
    return WinTieLoss(n=n, **out)


def mean_difference(x: np.ndarray, y: np.ndarray, n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95) -> Interval:
    """mean(x) - mean(y) over the same prompts, with a paired bootstrap interval (both keep each resample)."""
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)  # (n,)
    if len(d) == 0:
        return Interval(math.nan, math.nan, math.nan)
    samples = bootstrap_counts(len(d), n_boot, seed) @ d / len(d)  # (B,)
    return Interval(float(d.mean()), *percentile_interval(samples, level))


# ---- Bradley-Terry --------------------------------------------------------------------------------

def pairwise_wins(scores: np.ndarray, tie: float = 0.0) -> np.ndarray:
    """Per-prompt win matrix from scores (K checkpoints, N prompts): w[p, i, j] = outcome of i vs j.  # (N, K, K)"""
    s = np.asarray(scores, dtype=float).T  # (N, K)
    d = s[:, :, None] - s[:, None, :]
    w = np.where(np.abs(d) <= tie, 0.5, np.where(d > 0, 1.0, 0.0))
    k = s.shape[1]
    w[:, np.arange(k), np.arange(k)] = 0.0
    return w


def bradley_terry(wins: np.ndarray, prior: float = 0.1, iters: int = 500, tol: float = 1e-10) -> np.ndarray:
    """Log-strengths (mean 0) from win matrices by Hunter's MM algorithm; ties count half a win each.

    ``wins`` is (K, K) or a batch (B, K, K) with wins[i, j] = games i won against j. ``prior`` adds that
    many virtual wins each way between every pair, so a checkpoint that never loses stays finite.
    Returns (K,) or (B, K).
    """
    w = np.asarray(wins, dtype=float)
    single = w.ndim == 2
    if single:
        w = w[None]
    k = w.shape[-1]
    w = w + prior * (1.0 - np.eye(k))
    games = w + np.swapaxes(w, 1, 2)  # (B, K, K)
    total_wins = w.sum(axis=2)  # (B, K)
    p = np.ones(w.shape[:2])
    for _ in range(iters):
        denom = (games / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        new = total_wins / np.maximum(denom, 1e-300)
        new = new / np.exp(np.log(np.maximum(new, 1e-300)).mean(axis=1, keepdims=True))
        done = np.max(np.abs(np.log(np.maximum(new, 1e-300)) - np.log(p))) < tol
        p = new
        if done:
            break
    theta = np.log(np.maximum(p, 1e-300))
    theta -= theta.mean(axis=1, keepdims=True)
    return theta[0] if single else theta


def elo(theta: np.ndarray) -> np.ndarray:
    """Bradley-Terry log-strengths on the Elo scale: 400 points = 10:1 odds, mean 1000."""
    return ELO_CENTER + ELO_SCALE * np.asarray(theta)


def elo_ratings(scores: np.ndarray, names: list[str], tie: float = 0.0, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> dict[str, dict]:
    """Elo-scale Bradley-Terry rating of each checkpoint from scores (K, N), with bootstrap intervals."""
    w = pairwise_wins(scores, tie)  # (N, K, K)
    point = elo(bradley_terry(w.sum(axis=0)))
    counts = bootstrap_counts(w.shape[0], n_boot, seed)  # (B, N)
    boot = elo(bradley_terry(np.einsum("bn,nij->bij", counts, w)))  # (B, K)
    out = {}
    for i, name in enumerate(names):
        lo, hi = percentile_interval(boot[:, i], level)
        out[name] = {"elo": float(point[i]), "lo": lo, "hi": hi}
    return out


# ---- length-controlled win rate -------------------------------------------------------------------

def _logistic_fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray, ridge: float = 1e-4,
                  iters: int = 50) -> np.ndarray:
    """Weighted logistic regression of soft labels y on [1, x] by Newton's method.

    x, y: (N,); weights: (B, N) (bootstrap counts). Returns coefficients (B, 2).
    """
    X = np.stack([np.ones_like(x), x], axis=1)  # (N, 2)
    beta = np.zeros((weights.shape[0], 2))
    eye = ridge * np.eye(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(beta @ X.T)))  # (B, N)
        grad = (weights * (y - p)) @ X - ridge * beta  # (B, 2)
        h = np.einsum("bn,ni,nj->bij", weights * p * (1 - p), X, X) + eye  # (B, 2, 2)
        step = np.linalg.solve(h, grad[..., None])[..., 0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def length_controlled_win_rate(o: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, n_boot: int = 1000,
                               seed: int = 0, level: float = 0.95) -> Interval:
    """AlpacaEval-2-style LC win rate of A over B: the win rate predicted at equal lengths.

    Fits P(A wins) = sigmoid(b0 + b1 * tanh((len_a - len_b) / sd)) to the outcomes (ties = 0.5) and
    reports sigmoid(b0), so a judge that simply prefers longer answers does not move it.
    """
    o = np.asarray(o, dtype=float)
    n = len(o)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    diff = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    sd = diff.std()
    x = np.tanh(diff / sd) if sd > 0 else np.zeros(n)
    point = _logistic_fit(x, o, np.ones((1, n)))[0]
    boot = _logistic_fit(x, o, bootstrap_counts(n, n_boot, seed))
    sig = lambda b: 1.0 / (1.0 + np.exp(-b))  # noqa: E731
    return Interval(float(sig(point[0])), *percentile_interval(sig(boot[:, 0]), level))
