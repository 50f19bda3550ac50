"""PPO losses on response tokens: clipped policy loss, clipped value loss, GRPO's KL term, entropy, approx KL.

Every loss is a token-level mean over the action mask of the minibatch (OpenRLHF's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camelid.ppo.advantages import masked_mean
from camelid.ppo.rewards import kl_penalty


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor       # () scalar to minimise
    clip_fraction: torch.Tensor  # () share of tokens where the clipped term was used
    approx_kl: torch.Tensor  # () 0.5 * mean (log ratio)^2 between the current and the rollout policy


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                action_mask: torch.Tensor, clip_range: float = 0.2) -> PolicyLossOutput:
    """max(-A * r, -A * clip(r, 1 - e, 1 + e)) with r = exp(logp - old_logp); all inputs (B, A)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), action_mask)
    clip_fraction = masked_mean((clipped > unclipped).to(logprobs.dtype), action_mask)
    approx_kl = 0.5 * masked_mean(log_ratio.detach() ** 2, action_mask)
    return PolicyLossOutput(loss, clip_fraction.detach(), approx_kl)


@dataclass
class ValueLossOutput:
    loss: torch.Tensor           # () scalar to minimise
    clip_fraction: torch.Tensor  # () share of tokens where the clipped value was worse


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               action_mask: torch.Tensor, clip_range: float = 0.2) -> ValueLossOutput:
    """0.5 * max((V - R)^2, (V_old + clip(V - V_old, -e, e) - R)^2); all inputs (B, A)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), action_mask)
    clip_fraction = masked_mean((clipped > unclipped).to(values.dtype), action_mask)
    return ValueLossOutput(loss, clip_fraction.detach())


def kl_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """GRPO's KL term: the token mean of k3 = exp(ref - logp) - (ref - logp) - 1 (>= 0); inputs (B, A) -> ().

    Shao et al. 2024 (DeepSeekMath) eq. 4; differentiable in ``logprobs`` (the current policy's).
    """
    return masked_mean(kl_penalty(logprobs, ref_logprobs, "k3"), action_mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: (B, A, V) -> (B, A)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
