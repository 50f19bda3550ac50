"""Generalised advantage estimation and masked whitening of advantages."""

from __future__ import annotations

from collections.abc import Callable

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, action_mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (both (B, A)) from per-token rewards (B, A) and values (B, A).

    delta_t = r_t + gamma * V_{t+1} - V_t;  A_t = delta_t + gamma * lam * A_{t+1}; returns = A + V.
    Responses are right-padded: beyond the mask rewards and values count as 0, so the episode ends
    at the last response token (V after it is 0).
    """
    mask = action_mask.to(values.dtype)
    values = values * mask
    rewards = rewards * mask
    n = rewards.shape[1]
    last = torch.zeros_like(rewards[:, 0])  # (B,)
    out = []
    for t in reversed(range(n)):
        next_value = values[:, t + 1] if t + 1 < n else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        out.append(last)
    advantages = torch.stack(out[::-1], dim=1) * mask  # (B, A)
    return advantages, advantages + values


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (over all of them, or along ``dim``)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True, eps: float = 1e-8,
                  all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """(x - mean) / std over the masked entries, with the unbiased variance (as TRL). (B, A) -> (B, A)

    ``all_reduce`` (a sum over processes) makes the statistics global under data parallelism.
    If ``shift_mean`` is False the mean is added back (only the scale changes).
    """
    m = mask.to(x.dtype)
    stats = torch.stack([(x * m).sum(), (x * x * m).sum(), m.sum()])  # (3,) sum, sum of squares, count
    if all_reduce is not None:
        stats = all_reduce(stats)
    total, total_sq, count = stats.unbind()
    mean = total / count
    var = (total_sq / count - mean * mean) * count / (count - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var.clamp(min=0) + eps)
    if not shift_mean:
        out = out + mean
    return out * m
