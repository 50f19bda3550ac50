"""Llama 2's combined reward from both reward models: the one scorer ppo, rs, compare and rounds call.

    rewards = load_combined_scorer(helpfulness_art, safety_art, registry, threshold=0.15)
    s = rewards.score(conversations, responses, is_safety)  # s.helpfulness, s.safety, s.combined, s.used_safety

Both RMs score every response (one render + tokenize when their tokenizers agree, in batches of similar length),
and camelid.training.reward_rule combines the scores: Rc = Rs if the prompt is safety-tagged or sigmoid(Rs) < threshold,
else Rh. Compare may run with one RM (the other set to null): its scores and the combined score are then None.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camelid.reward import scoring
from camelid.training.reward_rule import combined_reward


def length_groups(lengths: list[int], *, overhead: int = 32, max_rows: int = 64) -> list[list[int]]:
    """Indices sorted by length, cut into batches that minimise padded slots + ``overhead`` slots per forward."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best, cut = [0.0] + [float("inf")] * len(order), [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        width = lengths[order[j - 1]]  # the longest of order[i:j]
        for i in range(max(0, j - max_rows), j):
            cost = best[i] + (j - i) * width + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(order)
    while j:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]


def _scores_by_length(rm, ids: list[list[int]]) -> torch.Tensor:
    """(B,) ``rm.score_ids`` of ``ids``, in batches of similar length (`length_groups`)."""
    out = torch.empty(len(ids))
    for group in length_groups([len(x) for x in ids]):
        out[group] = rm.score_ids([ids[i] for i in group], batch_size=len(group)).float()
    return out


def score_both(rm_h, rm_s, conversations: list, texts: list[str]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B,) helpfulness and (B,) safety scores (None for a missing RM); one render + tokenize for both when their
    tokenizers agree. Scored in batches of similar length, not one batch padded to the longest rendering."""
    rms = (rm_h, rm_s)
    if not all(hasattr(m, "score_ids") and hasattr(m, "tokenizer") for m in rms if m is not None):  # test stand-ins
        return tuple(None if m is None else torch.as_tensor(m.score(conversations, texts)) for m in rms)
    ids_h = rm_h.encode(conversations, texts) if rm_h is not None else None
    ids_s = None
    if rm_s is not None:
        ids_s = ids_h if ids_h is not None and rm_h.shares_tokenization(rm_s) else rm_s.encode(conversations, texts)
    return tuple(None if m is None else _scores_by_length(m, ids) for m, ids in ((rm_h, ids_h), (rm_s, ids_s)))


@dataclass(frozen=True)
class CombinedScores:
    """What the two reward models and Llama 2's rule say of a batch of responses; each (B,), on the CPU."""

    helpfulness: torch.Tensor | None  # calibrated Rh (None without a helpfulness RM)
    safety: torch.Tensor | None       # calibrated Rs (None without a safety RM)
    combined: torch.Tensor | None     # Rc (None unless both RMs scored)
    used_safety: torch.Tensor | None  # bool: Rc is Rs


@dataclass
class CombinedScorer:
    """The helpfulness and safety reward models (`scoring.RewardModel`, or stand-ins with ``.score``) and the
    threshold of Llama 2's rule (shared.safety_threshold)."""

    helpfulness: object | None
    safety: object | None
    threshold: float

    def score(self, conversations: list, responses: list[str], is_safety) -> CombinedScores:
        """Both RMs' scores of responses[i] to conversations[i] and their combination; ``is_safety`` (B,) bool
        marks the safety-tagged prompts."""
        rh, rs = score_both(self.helpfulness, self.safety, conversations, responses)
        rh, rs = (None if x is None else x.float() for x in (rh, rs))
        rc = used = None
        if rh is not None and rs is not None:
            tags = torch.tensor([bool(t) for t in is_safety], dtype=torch.bool)  # None (untagged) is False
            rc, used = combined_reward(rh, rs, tags, self.threshold)
        return CombinedScores(helpfulness=rh, safety=rs, combined=rc, used_safety=used)


def load_combined_scorer(helpfulness, safety, registry, *, threshold: float, device: str | torch.device = "auto",
                         precision: str = "auto") -> CombinedScorer:
    """Both reward models (registry refs or artifacts; None: that judge is skipped), frozen on ``device``."""
    def load(ref):
        return None if ref is None else scoring.load_reward_model(ref, registry, device=device, precision=precision)

    return CombinedScorer(helpfulness=load(helpfulness), safety=load(safety), threshold=threshold)
