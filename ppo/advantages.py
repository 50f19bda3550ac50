"""Advantage estimators (GAE with a value model; GRPO, RLOO, REINFORCE++ without) and masked whitening.

Every estimator starts from the same per-response score: Llama 2's combined reward, whitened with running
statistics (`ExperienceMaker.make`). B responses come in groups of n = samples_per_prompt consecutive rows that
answer the same prompt (`PromptSchedule`); A = response length.

  gae                   delta_t = r_t + gamma V_{t+1} - V_t, A_t = sum_l (gamma lam)^l delta_{t+l}, whitened over
                        the batch; r_t = -beta KL_t (+ score on the last token). Schulman et al. 2016 (GAE),
                        Ouyang et al. 2022 / Touvron et al. 2023 (Llama 2) for the KL-shaped reward.
  grpo                  A_i = (s_i - mean(s_group)) / (std(s_group) + eps) on every token of response i, the KL to
                        the reference as a loss term beta * k3 (not in the reward). Shao et al. 2024, DeepSeekMath,
                        arXiv:2402.03300, eq. 3 and its outcome supervision (section 4.1.2).
  rloo                  R_i = s_i - beta sum_t KL_t;  A_i = R_i - 1/(n-1) sum_{j != i} R_j on every token.
                        Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
                        Learning from Human Feedback in LLMs", arXiv:2402.14740 (Kool et al. 2019's estimator).
  reinforce++           r_t = -beta KL_t (+ s_i on the last token); G_t = sum_{k >= t} gamma^(k-t) r_k; A = G
                        whitened over the whole batch (all processes). Hu 2025, "REINFORCE++", arXiv:2501.03262.
  reinforce++-baseline  the same with s_i - mean(s_group) in place of s_i (the paper's variant for n samples
                        per prompt; OpenRLHF's reinforce_baseline).

Llama 2's routing inside a group: a prompt's n responses can be scored by different reward models (one answer's
safety score falls under the threshold and it is scored by the safety RM, the others by the helpfulness RM). The
per-prompt statistics are taken over the combined reward as it is, after the whitening: that IS the reward the
policy is trained on, and the switch to the safety score is Llama 2's penalty for an unsafe answer. Statistics
per reward model would compare such an answer only with other answers routed like it -- alone in its bucket it
would get advantage 0, and the penalty would vanish exactly where it matters. The whitening is one affine map
for the whole batch, so it cancels in grpo's (s - mean) / std and shifts nothing in rloo's differences. On a
safety-tagged prompt every response is scored by the safety RM, so the group baseline also removes the offset
between the two RMs' scales that a value model started from the helpfulness RM has to learn (#14, #26).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from camelid.ppo.rewards import token_rewards

GRPO_EPS = 1e-4  # TRL's; a group whose scores differ by less than this is not blown up to +-0.7


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


# ---- critic-free estimators --------------------------------------------------------------------------------

def _groups(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B,) -> (B / n, n): row g holds the n responses to prompt g."""
    if x.dim() != 1 or x.shape[0] % n:
        raise ValueError(f"{tuple(x.shape)} responses do not split into groups of {n}")
    return x.view(-1, n)


def _alike(g: torch.Tensor) -> torch.Tensor:
    """(G, n) -> (G, 1) True where the group's values are all equal: their advantage is exactly 0, not rounding."""
    return (g == g[:, :1]).all(-1, keepdim=True)


def grpo_advantages(scores: torch.Tensor, n: int, eps: float = GRPO_EPS) -> torch.Tensor:
    """(s_i - mean_group) / (std_group + eps), std with n - 1 (as TRL and OpenRLHF). (B,) -> (B,)"""
    g = _groups(scores, n)
    adv = (g - g.mean(-1, keepdim=True)) / (g.std(-1, keepdim=True) + eps)
    return torch.where(_alike(g), torch.zeros_like(adv), adv).flatten()


def rloo_advantages(rewards: torch.Tensor, n: int) -> torch.Tensor:
    """R_i minus the mean of the other n - 1 responses' R (leave-one-out). (B,) -> (B,)"""
    g = _groups(rewards, n)
    adv = g - (g.sum(-1, keepdim=True) - g) / (n - 1)
    return torch.where(_alike(g), torch.zeros_like(adv), adv).flatten()


def centered_per_prompt(scores: torch.Tensor, n: int) -> torch.Tensor:
    """s_i - mean of its group (reinforce++-baseline). (B,) -> (B,)"""
    g = _groups(scores, n)
    out = g - g.mean(-1, keepdim=True)
    return torch.where(_alike(g), torch.zeros_like(out), out).flatten()


def discounted_returns(rewards: torch.Tensor, action_mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = r_t + gamma G_{t+1} over the response, 0 after it (GAE with V = 0 and lambda = 1). (B, A) -> (B, A)"""
    advantages, _ = gae(rewards, torch.zeros_like(rewards), action_mask, gamma, 1.0)
    return advantages


def on_tokens(per_response: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """A sequence-level value on every response token: (B,), (B, A) -> (B, A)."""
    return per_response.unsqueeze(1) * action_mask.to(per_response.dtype)


@dataclass
class Advantages:
    rewards: torch.Tensor     # (B, A) per-token rewards the estimator used (grpo: the score alone, on the last token)
    advantages: torch.Tensor  # (B, A) what the policy loss multiplies the ratio with
    returns: torch.Tensor     # (B, A) value targets (gae); the discounted reward-to-go without a value model


def estimate(advantage: str, scores: torch.Tensor, kl: torch.Tensor, values: torch.Tensor,
             action_mask: torch.Tensor, *, samples_per_prompt: int, beta: float, gamma: float, lam: float,
             all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Advantages:
    """The estimator ``advantage`` (module docstring) on one batch.

    scores: (B,) whitened combined rewards, n = samples_per_prompt consecutive rows per prompt; kl: (B, A)
    per-token KL estimate (0 off the mask); values: (B, A) V(s_t) (gae only). ``all_reduce`` (a sum over
    processes) makes the batch whitening of gae and reinforce++ global; groups never span processes.
    """
    n = samples_per_prompt
    if advantage == "gae":
        rewards = token_rewards(scores, kl, action_mask, beta)
        adv, returns = gae(rewards, values, action_mask, gamma, lam)
        return Advantages(rewards, masked_whiten(adv, action_mask, all_reduce=all_reduce), returns)
    if advantage == "grpo":
        # KL as a loss term (losses.kl_loss), as the paper does (its eq. 3): the advantage stays the group-normalised
        # score, so a response's KL cannot shift its group's mean and std, and the gradient of k3 at the current
        # policy is the exact gradient of the KL, not a stale rollout-time estimate folded into a reward.
        rewards = token_rewards(scores, torch.zeros_like(kl), action_mask, 0.0)
        adv = on_tokens(grpo_advantages(scores, n), action_mask)
        return Advantages(rewards, adv, discounted_returns(rewards, action_mask, gamma))
    if advantage == "rloo":
        rewards = token_rewards(scores, kl, action_mask, beta)  # the paper's sequence reward: s - beta sum_t KL_t
        adv = on_tokens(rloo_advantages(rewards.sum(-1), n), action_mask)
        return Advantages(rewards, adv, discounted_returns(rewards, action_mask, gamma))
    if advantage in ("reinforce++", "reinforce++-baseline"):
        if advantage == "reinforce++-baseline":
            scores = centered_per_prompt(scores, n)
        rewards = token_rewards(scores, kl, action_mask, beta)
        returns = discounted_returns(rewards, action_mask, gamma)
        return Advantages(rewards, masked_whiten(returns, action_mask, all_reduce=all_reduce), returns)
    raise ValueError(f"unknown advantage estimator {advantage!r}")
