"""Llama 2's combined reward: one rule for ppo, rs and compare, the edge decided once (camelid.training.reward_rule)."""

from __future__ import annotations

import math

import numpy as np
import torch

from camelid.training.reward_rule import (
    combined_reward,
    safety_threshold_score,
    unsafe_by_safety_score,
)

D = torch.float64


def test_combined_reward_routes_by_prompt_and_threshold():
    rh = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D)
    rs = torch.tensor([0.5, -3.0, 0.0, -1.0], dtype=D)
    is_safety = torch.tensor([True, False, False, False])
    rc, used = combined_reward(rh, rs, is_safety, 0.15)
    # 0: safety prompt -> Rs; 1: sigmoid(-3)=0.047 < 0.15 -> Rs; 2: sigmoid(0)=0.5 -> Rh; 3: sigmoid(-1)=0.269 -> Rh
    assert rc.tolist() == [0.5, -3.0, 3.0, 4.0]
    assert used.tolist() == [True, True, False, False]


def test_combined_reward_threshold_edge_is_strict():
    edge = math.log(0.15 / 0.85)
    assert safety_threshold_score(0.15) == edge
    below, above = math.nextafter(edge, -math.inf), math.nextafter(edge, math.inf)
    rs = torch.tensor([below, edge, above], dtype=D)
    rh = torch.tensor([10.0, 20.0, 30.0], dtype=D)
    rc, used = combined_reward(rh, rs, torch.zeros(3, dtype=torch.bool), 0.15)
    # sigmoid(Rs) < 0.15 is strict: exactly at logit(0.15) the helpfulness score is used
    assert used.tolist() == [True, False, False]
    assert rc.tolist() == [below, 20.0, 30.0]
    # and the rule agrees with sigmoid away from rounding: sigmoid(edge -/+ 1e-9) vs 0.15
    assert torch.sigmoid(torch.tensor(edge - 1e-9, dtype=D)) < 0.15 < torch.sigmoid(torch.tensor(edge + 1e-9, dtype=D))


def test_combined_reward_other_threshold():
    rc, used = combined_reward(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([False]), 0.6)
    assert used.item() and rc.item() == 0.0  # sigmoid(0) = 0.5 < 0.6


def test_float64_scores_and_the_unsafe_verdict_use_the_same_edge():
    edge = safety_threshold_score(0.15)
    below, above = math.nextafter(edge, -math.inf), math.nextafter(edge, math.inf)
    rs = np.array([below, edge, above, 0.5])
    rh = np.array([10.0, 20.0, 30.0, 40.0])
    rc, _ = combined_reward(torch.tensor(rh), torch.tensor(rs), torch.tensor([False, False, False, True]), 0.15)
    assert rc.tolist() == [below, 20.0, 30.0, 0.5]
    assert unsafe_by_safety_score(rs, 0.15).tolist() == [True, False, False, False]


def test_only_the_combined_scorer_applies_the_rule():
    """ppo, rs, compare and the benchmarks reach the rule through camelid.reward.combined, not each on its own."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    tops = [d for d in repo.iterdir() if (d / "__init__.py").is_file()] + [repo / "bench"]  # the product code
    callers = sorted(str(f.relative_to(repo)) for top in tops for f in top.rglob("*.py")
                     if "combined_reward(" in (text := f.read_text(encoding="utf-8"))
                     and "def combined_reward(" not in text)
    assert callers == ["reward/combined.py"]
