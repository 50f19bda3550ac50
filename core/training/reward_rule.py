"""Llama 2's combined reward, the one rule ppo, rs and compare all use (through camelid.reward.combined's scorer).

    Rc = Rs  if the prompt is safety-tagged or sigmoid(Rs) < threshold,  else Rh

The edge is decided once, here: ``sigmoid(Rs) < t`` is evaluated as ``Rs < logit(t)`` in float64 (the same
set of scores, without sigmoid's rounding near 0 and 1), so a score exactly at logit(t) uses the
helpfulness reward. The threshold is `shared.safety_threshold` in pipelines.yaml.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def safety_threshold_score(threshold: float) -> float:
    """The raw safety score below which Llama 2 routes to the safety RM: logit(threshold)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"safety threshold must be in (0, 1), got {threshold}")
    return math.log(threshold / (1.0 - threshold))


def uses_safety(rs, is_safety, threshold: float) -> torch.Tensor:
    """Whether each prompt's combined reward is its safety score. (B,) bool"""
    rs = torch.as_tensor(rs)
    return torch.as_tensor(is_safety, device=rs.device).bool() | (rs.double() < safety_threshold_score(threshold))


def combined_reward(rh, rs, is_safety, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Rc (B,), used_safety (B,) bool) from helpfulness and safety scores (tensors or arrays)."""
    rh, rs = torch.as_tensor(rh), torch.as_tensor(rs)
    use = uses_safety(rs, is_safety, threshold)
    return torch.where(use, rs, rh.to(rs.dtype)), use


def unsafe_by_safety_score(rs, threshold: float) -> np.ndarray:
    """Llama 2's verdict without a prompt tag: sigmoid(Rs) < threshold, by the same edge rule. (N,) bool"""
    return (torch.as_tensor(np.asarray(rs, dtype=float)) < safety_threshold_score(threshold)).numpy()
