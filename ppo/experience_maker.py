"""Experience making: one iteration's rollouts and everything PPO computes once about them.

Sample responses (KV cache) with their log-probs, score them with both reward models combined by Llama 2's
rule (camelid.reward.combined, the scorer rs and compare use too), whiten with running statistics, take
reference log-probs and values in one forward each (no values without a value model), then the advantage
estimator of ``stages.ppo.advantage`` (camelid.ppo.advantages: GAE, GRPO, RLOO, REINFORCE++). The result is
an `Experience`.

B = prompts on this process, A = response length, T = prompt + response length.
"""

from __future__ import annotations

import contextlib
import time

import torch

from camelid.models import stop_token_ids
from camelid.ppo.advantages import estimate
from camelid.ppo.collective import ensure_finite, sum_over_processes
from camelid.ppo.experience import Experience
from camelid.ppo.rewards import RunningMoments, kl_penalty, whiten
from camelid.ppo.rollout import (
    Rollout,
    Rows,
    action_logprobs,
    action_values,
    encode_prompts,
    left_pad,
    pack_rows,
    position_ids,
    sample,
    sequence_logprobs,
)
from camelid.reward.combined import CombinedScorer


class PromptSchedule:
    """Which prompts each iteration samples: a pure function of (seed, iteration), so a resumed run is exact.

    An iteration takes batch_size / samples_per_prompt distinct prompts and lists each samples_per_prompt times
    in a row, so a prompt's responses are consecutive rows of one process (local_batch is a multiple of it).
    """

    def __init__(self, prompts: list, *, seed: int, batch_size: int, rank: int, local_batch: int,
                 samples_per_prompt: int = 1):
        self.prompts, self.seed, self.batch_size = prompts, seed, batch_size
        self.rank, self.local_batch, self.samples_per_prompt = rank, local_batch, samples_per_prompt
        self._orders: dict[int, list[int]] = {}  # one epoch's shuffle at a time

    def batch(self, iteration: int) -> list:
        """This process's share of the prompts of ``iteration`` (each repeated samples_per_prompt times)."""
        n, g = len(self.prompts), self.batch_size // self.samples_per_prompt
        out = []
        for k in range(iteration * g, (iteration + 1) * g):
            epoch, pos = divmod(k, n)
            out += [self.prompts[self._order(epoch)[pos]]] * self.samples_per_prompt
        return out[self.rank * self.local_batch:(self.rank + 1) * self.local_batch]

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
            self._orders = {epoch: torch.randperm(len(self.prompts), generator=gen).tolist()}
        return self._orders[epoch]


class ExperienceMaker:
    """Turns a batch of prompts into an `Experience`; also generates and scores for held-out evaluation."""

    compact = True  # reference and value forwards on packed rows (rollout.pack_rows), not the padded batch

    def __init__(self, cfg, acc, *, policy, reference, value, tokenizer, rewards: CombinedScorer):
        self.cfg, self.acc = cfg, acc
        self.policy = policy        # unwrapped (generation and no-grad forwards skip the DDP wrapper)
        self.reference = reference  # None with LoRA: the policy with its adapter disabled
        self.value = value          # unwrapped ValueModel; None with a critic-free estimator
        self.tokenizer = tokenizer
        self.rewards = rewards      # both reward models and Llama 2's rule
        self.moments = RunningMoments()  # of every combined score so far, on all processes (checkpointed)

    def generate(self, prompts: list, temperature: float) -> tuple[list, Rollout, list[str]]:
        """(conversations, rollout, decoded response texts) for ``prompts``; temperature 0 is greedy."""
        tok = self.tokenizer
        conversations = [p.messages for p in prompts]
        input_ids, mask = left_pad(encode_prompts(tok, conversations, self.cfg.max_prompt_length), tok.pad_token_id)
        try:
            ro = sample(self.policy, input_ids.to(self.acc.device), mask.to(self.acc.device),
                        eos_id=stop_token_ids(tok, self.policy), pad_id=tok.pad_token_id,
                        max_new_tokens=self.cfg.max_new_tokens, temperature=temperature, top_p=self.cfg.top_p)
        except RuntimeError as e:  # torch.multinomial on NaN probabilities: the policy itself is broken
            if "inf" in str(e) or "nan" in str(e):
                ensure_finite(self.acc, "the policy's output distribution", torch.tensor(float("nan")))
            raise
        a = ro.action_mask.shape[1]
        texts = [tok.decode(r[m.bool()], skip_special_tokens=True).strip()
                 for r, m in zip(ro.sequences[:, -a:].cpu(), ro.action_mask.cpu())]
        return conversations, ro, texts

    def score(self, prompts: list, conversations: list, texts: list[str]):
        """(Rh, Rs, Rc, used safety) per response, each (B,): both RMs' scores and Llama 2's combination."""
        s = self.rewards.score(conversations, texts, [p.is_safety for p in prompts])
        return tuple(x.to(self.acc.device) for x in (s.helpfulness, s.safety, s.combined, s.used_safety))

    def reference_logprobs(self, ro: Rollout, temperature: float, rows: Rows | None = None) -> torch.Tensor:
        """(B, A) log pi_ref of the sampled tokens (LoRA: the policy with its adapter disabled); ``rows``: compacted."""
        lora = self.reference is None
        model = self.policy if lora else self.reference
        a = ro.action_mask.shape[1]
        if rows is None and self.compact:
            rows = pack_rows(ro.sequences, ro.attention_mask, a)
        with self.policy.disable_adapter() if lora else contextlib.nullcontext():
            if rows is not None:
                return action_logprobs(model, rows, ro.sequences[:, -a:], ro.action_mask, temperature)[0]
            return sequence_logprobs(model, ro.sequences, ro.attention_mask, a, temperature)

    def reference_and_values(self, ro: Rollout, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, A) reference log-probs and (B, A) values V(s_t), both 0 after each response's end.

        Without a value model (critic-free estimators) the values are 0 and no value forward runs.
        """
        seq, attn, amask = ro.sequences, ro.attention_mask, ro.action_mask
        a = amask.shape[1]
        rows = pack_rows(seq, attn, a) if self.compact else None
        ref_logprobs = self.reference_logprobs(ro, temperature, rows) * amask
        if self.value is None:
            return ref_logprobs, torch.zeros_like(ref_logprobs)
        self.value.eval()
        try:
            if rows is not None:
                values = action_values(self.value, rows) * amask
            else:
                values = self.value(seq, attn, position_ids(attn))[:, -a - 1:-1] * amask
        finally:
            self.value.train()
        return ref_logprobs, values

    @torch.no_grad()
    def make(self, prompts: list) -> tuple[Experience, dict[str, float]]:
        """The Experience of ``prompts`` and the seconds spent generating and scoring.

        ``prompts``: groups of cfg.samples_per_prompt consecutive copies of a prompt (`PromptSchedule.batch`).
        """
        cfg, acc = self.cfg, self.acc
        if len(prompts) % cfg.samples_per_prompt:
            raise ValueError(f"{len(prompts)} prompts are not groups of samples_per_prompt={cfg.samples_per_prompt}")
        t0 = time.perf_counter()
        conversations, ro, texts = self.generate(prompts, cfg.temperature)
        t1 = time.perf_counter()
        rh, rs, rc, used_safety = self.score(prompts, conversations, texts)
        ensure_finite(acc, "a reward model score", rh, rs)
        off_label = torch.zeros_like(rc)
        reward = rc
        if cfg.label_penalty:  # the rule-based term (PPOConfig.label_penalty): on the raw score, before whitening
            from camelid.eval.refusal import on_label

            off_label = torch.tensor([0.0 if on_label(p, t) else 1.0 for p, t in zip(prompts, texts)],
                                     dtype=rc.dtype, device=rc.device)
            reward = rc - cfg.label_penalty * off_label
        seq, attn, amask = ro.sequences, ro.attention_mask, ro.action_mask
        ref_logprobs, values = self.reference_and_values(ro, cfg.temperature)  # (B, A) each
        ensure_finite(acc, "the rollout log-probs, reference log-probs or values", ro.logprobs, ref_logprobs, values)
        t2 = time.perf_counter()

        # Whiten the raw combined score (= logit(sigmoid(score)), see rewards.py) with statistics of every
        # score seen so far, on all processes.
        self.moments.update(acc.gather(reward) if acc.num_processes > 1 else reward)
        scores = whiten(reward, self.moments.mean, self.moments.std)  # (B,)
        kl = kl_penalty(ro.logprobs, ref_logprobs, cfg.kl_estimator) * amask  # (B, A)
        all_reduce = (lambda t: sum_over_processes(acc, t)) if acc.num_processes > 1 else None
        est = estimate(cfg.advantage, scores, kl, values, amask, samples_per_prompt=cfg.samples_per_prompt,
                       beta=cfg.kl_coef, gamma=cfg.gamma, lam=cfg.lam, all_reduce=all_reduce)
        exp = Experience(
            sequences=seq, attention_mask=attn, action_mask=amask, old_logprobs=ro.logprobs,
            ref_logprobs=ref_logprobs, values=values, rewards=est.rewards, advantages=est.advantages,
            returns=est.returns, scores=scores,
            info={"rh": rh, "rs": rs, "rc": rc, "used_safety": used_safety.float(), "off_label": off_label,
                  "kl": (ro.logprobs - ref_logprobs).mul(amask).sum(-1),  # (B,) sequence KL, k1
                  "length": amask.sum(-1).float(), "truncated": ro.truncated.float()},
        )
        return exp, {"time/generation": t1 - t0, "time/scoring": t2 - t1}


def experience_metrics(exp: Experience) -> dict[str, float]:
    """Batch means of what the rollouts earned and how they looked (this process)."""
    info = exp.info
    return {
        "reward/helpfulness": info["rh"].mean().item(), "reward/safety": info["rs"].mean().item(),
        "reward/combined": info["rc"].mean().item(), "reward/whitened": exp.scores.mean().item(),
        "kl": info["kl"].mean().item(), "safety_share": info["used_safety"].mean().item(),
        "response_length": info["length"].mean().item(), "truncated_share": info["truncated"].mean().item(),
        "off_label_share": info["off_label"].mean().item(),
    }
