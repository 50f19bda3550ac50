"""Whitening with running statistics and the per-token KL penalty (the combined reward: camelid.training.reward_rule).

Pure functions on tensors (no models), so every formula has an exact unit test.

A note on ``logit``: Llama 2 writes the reward as ``R~c = whiten(logit(Rc))``, where ``Rc`` is a
reward model's output *through a sigmoid*. Our reward models return the raw (calibrated) scalar
score, and ``logit(sigmoid(score)) == score``; so the recipe whitens the raw score directly and
`logit` is only here for inputs that really are probabilities.
"""

from __future__ import annotations

import math

import torch


def logit(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] so 0 and 1 stay finite."""
    p = p.clamp(eps, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


def whiten(x: torch.Tensor, mean: float | torch.Tensor, std: float | torch.Tensor, eps: float = 1e-8,
           ) -> torch.Tensor:
    """(x - mean) / (std + eps): scores to zero mean, unit variance under the given statistics."""
    return (x - mean) / (std + eps)


class RunningMoments:
    """Mean and standard deviation of every score seen so far (Chan et al.'s parallel update).

    Saved with checkpoints so a resumed run whitens exactly as the uninterrupted one would.
    """

    def __init__(self) -> None:
        self.mean = 0.0
        self.var = 1.0  # population variance of everything seen
        self.count = 0

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def update(self, x: torch.Tensor) -> tuple[float, float]:
        """Fold a batch (any shape) in; returns the batch's own (mean, population std)."""
        x = x.detach().double().flatten()
        n = x.numel()
        if n == 0:
            return self.mean, self.std
        b_mean = x.mean().item()
        b_var = x.var(unbiased=False).item()
        if self.count == 0:
            self.mean, self.var, self.count = b_mean, b_var, n
            return b_mean, math.sqrt(b_var)
        total = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.var = m2 / total
        self.count = total
        return b_mean, math.sqrt(b_var)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), int(state["count"])


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from samples of the policy. (B, A) -> (B, A).

    k1 = log p - log q (unbiased, can be negative per token); k3 = (r - 1) - log r with r = q / p
    (unbiased, never negative, lower variance) -- Schulman, "Approximating KL divergence".
    """
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}: use k1 or k3")


def token_rewards(score: torch.Tensor, kl: torch.Tensor, action_mask: torch.Tensor, beta: float,
                  ) -> torch.Tensor:
    """R_t = -beta * KL_t on every response token, plus the sequence score on the last one. (B, A)

    score: (B,) whitened combined reward; kl: (B, A) per-token KL estimate; action_mask: (B, A) 1 on
    response tokens (up to and including EOS), 0 on padding after it.
    """
    mask = action_mask.to(kl.dtype)
    rewards = -beta * kl * mask  # (B, A)
    last = (action_mask.long().sum(-1) - 1).clamp(min=0)  # (B,) index of the last response token
    return rewards.scatter_add(1, last.unsqueeze(1), score.to(rewards.dtype).unsqueeze(1))
