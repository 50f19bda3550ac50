"""Held-out evaluation of the PPO policy: greedy answers scored by both reward models (and the oracle).

Each process answers every world-th prompt; rows are gathered and put back in prompt order, so the
numbers do not depend on the number of processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from camelid.ppo.experience_maker import ExperienceMaker


class Answer(NamedTuple):
    """One held-out prompt's greedy answer and its scores."""

    index: int         # position in the held-out prompts
    text: str
    rh: float          # helpfulness RM score
    rs: float          # safety RM score
    rc: float          # combined reward (Llama 2's rule)
    used_safety: bool  # the combined reward is the safety score
    kl: float          # sampled sequence KL(policy || reference); 0.0 unless asked for
    length: int        # response tokens


@torch.no_grad()
def evaluate(maker: ExperienceMaker, prompts: list, *, batch_size: int, seed: int, sampled_kl: bool = False,
             oracle: Callable | None = None) -> dict[str, float]:
    """Mean scores of the greedy answers to ``prompts`` (empty: {}); ``sampled_kl`` adds the policy's KL."""
    if not prompts:
        return {}
    answers = _answers(maker, prompts, batch_size=batch_size, seed=seed, sampled_kl=sampled_kl)
    n = len(answers)
    out = {"reward/helpfulness": sum(r.rh for r in answers) / n, "reward/safety": sum(r.rs for r in answers) / n,
           "reward/combined": sum(r.rc for r in answers) / n,
           "safety_share": sum(r.used_safety for r in answers) / n,
           "response_length": sum(r.length for r in answers) / n}
    if sampled_kl:
        out["kl"] = sum(r.kl for r in answers) / n
    if oracle is not None:
        scores = oracle([prompts[r.index] for r in answers], [r.text for r in answers])
        out.update({f"oracle/{k}": float(v) for k, v in scores.items() if isinstance(v, int | float)})
    return out


def _answers(maker: ExperienceMaker, prompts: list, *, batch_size: int, seed: int, sampled_kl: bool
             ) -> list[Answer]:
    """Every prompt's Answer, in prompt order, on every process."""
    from accelerate.utils import gather_object

    acc = maker.acc
    temperature = maker.cfg.temperature or 1.0  # for the sampled KL only: the answers are greedy
    mine = list(range(acc.process_index, len(prompts), acc.num_processes))
    rows: list[Answer] = []
    with torch.random.fork_rng(devices=[]):  # the same samples at every evaluation; training's RNG untouched
        torch.manual_seed(seed + 7919)
        for i in range(0, len(mine), batch_size):
            idx = mine[i:i + batch_size]
            batch = [prompts[j] for j in idx]
            conversations, ro, texts = maker.generate(batch, 0.0)
            rh, rs, rc, used = maker.score(batch, conversations, texts)
            kl = torch.zeros_like(rc)  # (B,)
            if sampled_kl:  # KL(policy || reference) is only estimated by samples of the policy
                _, sro, _ = maker.generate(batch, temperature)
                kl = ((sro.logprobs - maker.reference_logprobs(sro, temperature)) * sro.action_mask).sum(-1)
            for j, k in enumerate(idx):
                rows.append(Answer(k, texts[j], rh[j].item(), rs[j].item(), rc[j].item(), used[j].item(),
                                   kl[j].item(), int(ro.action_mask[j].sum())))
    if acc.num_processes > 1:
        rows = gather_object(rows)
    return sorted(rows, key=lambda r: r.index)
