"""The PPO loop: make experience once per iteration, then minibatch updates of policy and value.

    trainer = PPOTrainer(cfg, accelerator=..., policy=..., reference=..., value=..., ...)
    trainer.resume(checkpoint_dir)   # optional
    trainer.train()                  # -> TrainResult

Each iteration: sample responses (KV cache) with their log-probs, score them with both reward
models, combine (Llama 2's rule), whiten with running statistics, compute reference log-probs and
values in one forward each, GAE, then ``ppo_epochs`` passes of clipped policy + value updates.
Anything non-finite stops the run with `TrainingDiverged` before an optimizer step can write it
into the weights; checkpoints are only written from finite states.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from camelid.errors import CamelidError, TrainingDiverged
from camelid.log import get_logger
from camelid.ppo.advantages import gae, masked_mean, masked_whiten
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience import Experience
from camelid.ppo.losses import entropy_from_logits, policy_loss, value_loss
from camelid.ppo.rewards import RunningMoments, kl_penalty, token_rewards, whiten
from camelid.ppo.rollout import (
    action_logits,
    encode_prompts,
    gather_logprobs,
    left_pad,
    position_ids,
    sample,
    sequence_logprobs,
)
from camelid.reward_rule import combined_reward
from camelid.runs import CHECKPOINT_PREFIX, latest_checkpoint

log = get_logger("ppo")

CHECKPOINT_MARKER = "state.json"  # written last: a checkpoint folder holding it is complete


class StopTraining(Exception):  # noqa: N818 - a control-flow signal, raised by callbacks
    """A callback raises this to end the run like an interrupt: it propagates, nothing is published."""


@dataclass
class TrainResult:
    iterations: int                      # iterations completed (including resumed ones)
    history: list[dict]                  # per-iteration metrics
    evals: list[dict]                    # held-out evaluations (iteration, metrics)
    best_checkpoint: Path | None = None  # policy folder with the best held-out reward, if kept
    stopped_early: bool = False
    last_checkpoint: Path | None = None
    extra: dict = field(default_factory=dict)


class PPOTrainer:
    def __init__(self, cfg: PPOConfig, *, accelerator, policy, reference, value, tokenizer, reward_helpfulness,
                 reward_safety, prompts: list, eval_prompts: list | None, run_dir: Path,
                 safety_threshold: float, callbacks: list[Callable] | None = None, oracle: Callable | None = None):
        self.cfg = cfg
        self.safety_threshold = safety_threshold
        self.acc = accelerator
        self.lora = cfg.mode == "lora"
        self.tokenizer = tokenizer
        self.rm_h, self.rm_s = reward_helpfulness, reward_safety
        self.prompts, self.eval_prompts = prompts, eval_prompts or []
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks or [])
        self.oracle = oracle
        self.pad_id = tokenizer.pad_token_id
        self.eos_id = tokenizer.eos_token_id

        world = accelerator.num_processes
        for name, n in (("rollout_batch_size", cfg.rollout_batch_size), ("minibatch_size", cfg.minibatch_size)):
            if n % world:
                raise CamelidError(f"stages.ppo.{name}={n} must be divisible by the {world} processes")
        self.local_batch = cfg.rollout_batch_size // world
        self.local_minibatch = cfg.minibatch_size // world
        if self.local_batch % self.local_minibatch:
            raise CamelidError(f"stages.ppo.rollout_batch_size ({cfg.rollout_batch_size}) must be a multiple of "
                               f"minibatch_size ({cfg.minibatch_size})")

        reference_params = [] if reference is None else list(reference.parameters())
        for p in reference_params:
            p.requires_grad_(False)
        self.reference = reference.eval() if reference is not None else None
        opt_p = self._adamw(policy, cfg.learning_rate)
        opt_v = self._adamw(value, cfg.value_learning_rate or cfg.learning_rate)
        self.policy, self.value, self.opt_p, self.opt_v = accelerator.prepare(policy, value, opt_p, opt_v)
        self.moments = RunningMoments()
        self.iteration = 0
        self.history: list[dict] = []
        self.evals: list[dict] = []
        self.best_reward = -math.inf
        self.evals_since_best = 0
        self.best_dir: Path | None = None

    # ---- setup ----------------------------------------------------------------------------------
    def _adamw(self, model, lr: float) -> torch.optim.Optimizer:
        """AdamW with Llama 2's settings; no weight decay on biases and norms (the usual split)."""
        decay, no_decay = [], []
        for _, p in model.named_parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(self.cfg.adam_betas), eps=self.cfg.adam_eps)

    @property
    def unwrapped_policy(self):
        return self.acc.unwrap_model(self.policy)

    @property
    def unwrapped_value(self):
        return self.acc.unwrap_model(self.value)

    def _reference_context(self):
        return self.unwrapped_policy.disable_adapter() if self.lora else contextlib.nullcontext()

    def _reference_model(self):
        return self.unwrapped_policy if self.lora else self.reference

    # ---- distributed helpers -------------------------------------------------------------------
    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        return self.acc.reduce(t.to(self.acc.device), "sum") if self.acc.num_processes > 1 else t

    def _mean_stats(self, stats: dict[str, float]) -> dict[str, float]:
        if self.acc.num_processes == 1 or not stats:
            return stats
        keys = sorted(stats)
        t = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=self.acc.device)
        t = self.acc.reduce(t, "mean")
        return dict(zip(keys, t.tolist()))

    def _last_good(self) -> str:
        ckpt = self.latest_checkpoint(self.run_dir)
        return f"the last good checkpoint is {ckpt}" if ckpt else "no checkpoint had been written yet"

    def _ensure_finite(self, what: str, *tensors: torch.Tensor) -> None:
        """Stop every process together if any of ``tensors`` holds NaN/inf on any process."""
        bad = torch.tensor([float(not torch.isfinite(t.detach()).all()) for t in tensors] or [0.0],
                           device=self.acc.device).sum()
        if self._sum(bad).item() > 0:
            raise TrainingDiverged(
                f"PPO stopped at iteration {self.iteration + 1}: {what} is NaN or inf. Nothing was published and "
                f"no further checkpoint was written; {self._last_good()}. Check the reward models' scores, lower "
                "stages.ppo.learning_rate or raise kl_coef, then rerun (add --resume to continue from the "
                "checkpoint).")

    # ---- data -----------------------------------------------------------------------------------
    def batch_prompts(self, iteration: int) -> list:
        """This process's prompts for ``iteration``: a pure function of (seed, iteration), so resume is exact."""
        n, g = len(self.prompts), self.cfg.rollout_batch_size
        out = []
        for k in range(iteration * g, (iteration + 1) * g):
            epoch, pos = divmod(k, n)
            order = self._order(epoch)
            out.append(self.prompts[order[pos]])
        rank = self.acc.process_index
        return out[rank * self.local_batch:(rank + 1) * self.local_batch]

    def _order(self, epoch: int) -> list[int]:
        cache = getattr(self, "_orders", {})
        if epoch not in cache:
            gen = torch.Generator().manual_seed(self.cfg.seed * 1000003 + epoch)
            cache = {epoch: torch.randperm(len(self.prompts), generator=gen).tolist()}
            self._orders = cache
        return cache[epoch]

    # ---- experience ---------------------------------------------------------------------------
    def _generate(self, prompts: list, temperature: float):
        conversations = [p.messages for p in prompts]
        ids = encode_prompts(self.tokenizer, conversations, self.cfg.max_prompt_length)
        input_ids, mask = left_pad(ids, self.pad_id)
        try:
            ro = sample(self.unwrapped_policy, input_ids.to(self.acc.device), mask.to(self.acc.device),
                        eos_id=self.eos_id, pad_id=self.pad_id, max_new_tokens=self.cfg.max_new_tokens,
                        temperature=temperature, top_p=self.cfg.top_p)
        except RuntimeError as e:  # torch.multinomial on NaN probabilities: the policy itself is broken
            if "inf" in str(e) or "nan" in str(e):
                self._ensure_finite("the policy's output distribution", torch.tensor(float("nan")))
            raise
        a = ro.action_mask.shape[1]
        texts = [self.tokenizer.decode(r[m.bool()], skip_special_tokens=True).strip()
                 for r, m in zip(ro.sequences[:, -a:].cpu(), ro.action_mask.cpu())]
        return conversations, ro, texts

    def _score(self, prompts: list, conversations: list, texts: list[str]):
        rh = self.rm_h.score(conversations, texts).float().to(self.acc.device)  # (B,)
        rs = self.rm_s.score(conversations, texts).float().to(self.acc.device)  # (B,)
        is_safety = torch.tensor([bool(p.is_safety) for p in prompts], device=self.acc.device)
        rc, used_safety = combined_reward(rh, rs, is_safety, self.safety_threshold)
        return rh, rs, rc, used_safety

    @torch.no_grad()
    def make_experience(self, prompts: list) -> tuple[Experience, dict]:
        """Rollouts + rewards + reference log-probs + values + advantages, each computed once."""
        cfg = self.cfg
        t0 = time.perf_counter()
        conversations, ro, texts = self._generate(prompts, cfg.temperature)
        t1 = time.perf_counter()
        rh, rs, rc, used_safety = self._score(prompts, conversations, texts)
        self._ensure_finite("a reward model score", rh, rs)
        seq, attn, amask = ro.sequences, ro.attention_mask, ro.action_mask
        a = amask.shape[1]
        with self._reference_context():
            ref_logprobs = sequence_logprobs(self._reference_model(), seq, attn, a, cfg.temperature) * amask
        self.value.eval()
        values = self.unwrapped_value(seq, attn, position_ids(attn))[:, -a - 1:-1] * amask  # (B, A)
        self.value.train()
        self._ensure_finite("the rollout log-probs, reference log-probs or values", ro.logprobs, ref_logprobs,
                            values)
        t2 = time.perf_counter()

        # Whiten the raw combined score (= logit(sigmoid(score)), see rewards.py) with statistics of every
        # score seen so far, on all processes.
        self.moments.update(self.acc.gather(rc) if self.acc.num_processes > 1 else rc)
        scores = whiten(rc, self.moments.mean, self.moments.std)  # (B,)
        kl = kl_penalty(ro.logprobs, ref_logprobs, cfg.kl_estimator) * amask  # (B, A)
        rewards = token_rewards(scores, kl, amask, cfg.kl_coef)
        advantages, returns = gae(rewards, values, amask, cfg.gamma, cfg.lam)
        advantages = masked_whiten(advantages, amask, all_reduce=self._sum if self.acc.num_processes > 1 else None)
        exp = Experience(
            sequences=seq, attention_mask=attn, action_mask=amask, old_logprobs=ro.logprobs,
            ref_logprobs=ref_logprobs, values=values, rewards=rewards, advantages=advantages, returns=returns,
            scores=scores,
            info={"rh": rh, "rs": rs, "rc": rc, "used_safety": used_safety.float(),
                  "kl": (ro.logprobs - ref_logprobs).mul(amask).sum(-1),  # (B,) sequence KL, k1
                  "length": amask.sum(-1).float(), "truncated": ro.truncated.float()},
        )
        timing = {"time/generation": t1 - t0, "time/scoring": t2 - t1}
        return exp, timing

    # ---- optimisation ------------------------------------------------------------------------
    def train_on(self, exp: Experience) -> dict[str, float]:
        """``ppo_epochs`` passes of minibatch updates; returns mean losses and diagnostics."""
        cfg = self.cfg
        sums: dict[str, float] = {}
        steps = 0
        self.policy.train()
        self.value.train()
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(len(exp))
            for start in range(0, len(exp), self.local_minibatch):
                mb = exp.select(perm[start:start + self.local_minibatch].to(exp.sequences.device))
                mb = mb.without_padding_columns()  # narrower than the rollout batch: same tokens, less compute
                a, mask = mb.num_actions, mb.action_mask
                logits = action_logits(self.policy, mb.sequences, mb.attention_mask, a, cfg.temperature)
                logprobs = gather_logprobs(logits, mb.sequences[:, -a:])  # (b, A)
                with torch.set_grad_enabled(bool(cfg.entropy_coef)):  # logged only when its coef is 0: no graph
                    entropy = masked_mean(entropy_from_logits(logits), mask)
                pl = policy_loss(logprobs, mb.old_logprobs, mb.advantages, mask, cfg.clip_range)
                values = self.value(mb.sequences, mb.attention_mask, position_ids(mb.attention_mask))
                vl = value_loss(values[:, -a - 1:-1], mb.values, mb.returns, mask, cfg.value_clip)
                loss = pl.loss + cfg.vf_coef * vl.loss
                if cfg.entropy_coef:
                    loss = loss - cfg.entropy_coef * entropy
                self._ensure_finite("the PPO loss", loss)
                self.acc.backward(loss)
                gn_p = self.acc.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                gn_v = self.acc.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
                self._ensure_finite("a gradient norm", torch.as_tensor(gn_p), torch.as_tensor(gn_v))
                self.opt_p.step()
                self.opt_v.step()
                self.opt_p.zero_grad(set_to_none=True)
                self.opt_v.zero_grad(set_to_none=True)
                for k, v in (("loss/policy", pl.loss), ("loss/value", vl.loss), ("entropy", entropy),
                             ("clip_fraction", pl.clip_fraction), ("value_clip_fraction", vl.clip_fraction),
                             ("approx_kl", pl.approx_kl), ("grad_norm/policy", gn_p), ("grad_norm/value", gn_v)):
                    sums[k] = sums.get(k, 0.0) + float(torch.as_tensor(v).detach())
                steps += 1
        return {k: v / steps for k, v in sums.items()}

    def step(self) -> dict[str, float]:
        """One PPO iteration; returns its metrics (averaged over processes)."""
        prompts = self.batch_prompts(self.iteration)
        exp, timing = self.make_experience(prompts)
        t0 = time.perf_counter()
        stats = self.train_on(exp)
        timing["time/training"] = time.perf_counter() - t0
        info = exp.info
        stats.update({
            "reward/helpfulness": info["rh"].mean().item(), "reward/safety": info["rs"].mean().item(),
            "reward/combined": info["rc"].mean().item(), "reward/whitened": exp.scores.mean().item(),
            "kl": info["kl"].mean().item(), "safety_share": info["used_safety"].mean().item(),
            "response_length": info["length"].mean().item(), "truncated_share": info["truncated"].mean().item(),
            **timing,
        })
        stats = self._mean_stats(stats)
        stats["iteration"] = self.iteration + 1
        return stats

    # ---- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, *, sampled_kl: bool = False) -> dict[str, float]:
        """Greedy answers to the held-out prompts, scored by both RMs (and the oracle, when there is one)."""
        from accelerate.utils import gather_object

        if not self.eval_prompts:
            return {}
        rank, world = self.acc.process_index, self.acc.num_processes
        mine = list(range(rank, len(self.eval_prompts), world))
        rows: list[tuple] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed + 7919)
            for i in range(0, len(mine), self.cfg.eval_batch_size):
                idx = mine[i:i + self.cfg.eval_batch_size]
                prompts = [self.eval_prompts[j] for j in idx]
                conversations, ro, texts = self._generate(prompts, 0.0)
                rh, rs, rc, used = self._score(prompts, conversations, texts)
                kl = torch.zeros_like(rc)
                if sampled_kl:  # KL(policy || reference) is only estimated by samples of the policy
                    _, sro, _ = self._generate(prompts, self.cfg.temperature or 1.0)
                    a = sro.action_mask.shape[1]
                    with self._reference_context():
                        ref = sequence_logprobs(self._reference_model(), sro.sequences, sro.attention_mask, a,
                                                self.cfg.temperature or 1.0)
                    kl = ((sro.logprobs - ref) * sro.action_mask).sum(-1)
                for j, k in enumerate(idx):
                    rows.append((k, texts[j], rh[j].item(), rs[j].item(), rc[j].item(), used[j].item(),
                                 kl[j].item(), int(ro.action_mask[j].sum())))
        if world > 1:
            rows = gather_object(rows)
        rows.sort(key=lambda r: r[0])
        n = len(rows)
        out = {"reward/helpfulness": sum(r[2] for r in rows) / n, "reward/safety": sum(r[3] for r in rows) / n,
               "reward/combined": sum(r[4] for r in rows) / n, "safety_share": sum(r[5] for r in rows) / n,
               "response_length": sum(r[7] for r in rows) / n}
        if sampled_kl:
            out["kl"] = sum(r[6] for r in rows) / n
        if self.oracle is not None:
            scores = self.oracle([self.eval_prompts[r[0]] for r in rows], [r[1] for r in rows])
            out.update({f"oracle/{k}": float(v) for k, v in scores.items() if isinstance(v, int | float)})
        return out

    # ---- checkpoints ------------------------------------------------------------------------------
    @staticmethod
    def latest_checkpoint(run_dir: Path) -> Path | None:
        return latest_checkpoint(run_dir, CHECKPOINT_MARKER)

    def load_policy(self, folder: Path) -> None:
        """Policy weights from a saved policy folder (the best one kept by early stopping)."""
        from safetensors.torch import load_file

        self._load_weights(self.unwrapped_policy, Path(folder), load_file)

    def _save_models(self, folder: Path, *, value: bool = True) -> None:
        self.unwrapped_policy.save_pretrained(folder / "policy", safe_serialization=True)
        if value:
            self.unwrapped_value.model.save_pretrained(folder / "value", safe_serialization=True)

    def save_checkpoint(self) -> Path:
        """checkpoint-<iteration>/: policy, value, optimisers, RNG (per process), moments and history."""
        final = self.run_dir / f"{CHECKPOINT_PREFIX}{self.iteration}"
        tmp = self.run_dir / f".tmp-{CHECKPOINT_PREFIX}{self.iteration}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self._save_models(tmp)
            torch.save(self.opt_p.state_dict(), tmp / "optimizer_policy.pt")
            torch.save(self.opt_v.state_dict(), tmp / "optimizer_value.pt")
        self.acc.wait_for_everyone()
        rank = self.acc.process_index
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        torch.save(rng, tmp / f"rng_{rank}.pt")
        py_state = random.getstate()
        extra = {"python": [py_state[0], list(py_state[1]), py_state[2]]}
        with contextlib.suppress(ImportError):
            import numpy as np

            st = np.random.get_state()
            extra["numpy"] = [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])]
        (tmp / f"rng_{rank}.json").write_text(json.dumps(extra))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            state = {"iteration": self.iteration, "moments": self.moments.state_dict(), "history": self.history,
                     "evals": self.evals, "best_reward": self.best_reward if self.best_dir else None,
                     "evals_since_best": self.evals_since_best, "world_size": self.acc.num_processes}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self.run_dir.glob(f"{CHECKPOINT_PREFIX}*"):  # keep only the newest good one
                if old != final:
                    shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def resume(self, folder: Path) -> None:
        """Restore weights, optimisers, RNG, iteration, running statistics and history from a checkpoint."""
        from safetensors.torch import load_file

        state = json.loads((folder / "state.json").read_text())
        if state.get("world_size", 1) != self.acc.num_processes:
            raise CamelidError(f"{folder} was written by {state['world_size']} processes; resume with the same "
                               f"number (now {self.acc.num_processes})")
        self._load_weights(self.unwrapped_policy, folder / "policy", load_file)
        self._load_weights(self.unwrapped_value.model, folder / "value", load_file)
        map_location = self.acc.device
        self.opt_p.load_state_dict(torch.load(folder / "optimizer_policy.pt", map_location=map_location,
                                              weights_only=True))
        self.opt_v.load_state_dict(torch.load(folder / "optimizer_value.pt", map_location=map_location,
                                              weights_only=True))
        rank = self.acc.process_index
        rng = torch.load(folder / f"rng_{rank}.pt", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        extra = json.loads((folder / f"rng_{rank}.json").read_text())
        random.setstate((extra["python"][0], tuple(extra["python"][1]), extra["python"][2]))
        if "numpy" in extra:
            import numpy as np

            s = extra["numpy"]
            np.random.set_state((s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4]))
        self.iteration = int(state["iteration"])
        self.moments.load_state_dict(state["moments"])
        self.history, self.evals = state["history"], state["evals"]
        self.evals_since_best = int(state["evals_since_best"])
        if state.get("best_reward") is not None:
            self.best_reward = float(state["best_reward"])
            self.best_dir = self.run_dir / "best"
        log.info("resumed from %s (iteration %d of %d)", folder, self.iteration, self.cfg.iterations)

    @staticmethod
    def _load_weights(model, folder: Path, load_file) -> None:
        if (folder / "adapter_model.safetensors").is_file():  # LoRA: the adapter (and saved modules) only
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
            return
        state = {}
        for f in sorted(folder.glob("*.safetensors")):
            state.update(load_file(str(f)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise CamelidError(f"checkpoint {folder} does not match the model: missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]}")

    # ---- the loop -------------------------------------------------------------------------------
    def _maybe_eval(self) -> bool:
        """Evaluate every eval_every iterations; returns True if early stopping says stop."""
        cfg = self.cfg
        if not self.eval_prompts or self.iteration % cfg.eval_every:
            return False
        metrics = self.evaluate()
        self.evals.append({"iteration": self.iteration, **metrics})
        self.acc.log({f"eval/{k}": v for k, v in metrics.items()}, step=self.iteration)
        log.info("eval @%d: combined %.3f helpfulness %.3f safety %.3f%s", self.iteration,
                 metrics["reward/combined"], metrics["reward/helpfulness"], metrics["reward/safety"],
                 "".join(f" {k}={v:.3f}" for k, v in metrics.items() if k.startswith("oracle/")))
        if cfg.early_stopping_patience is None:
            return False
        if metrics["reward/combined"] > self.best_reward:
            self.best_reward, self.evals_since_best = metrics["reward/combined"], 0
            self.best_dir = self.run_dir / "best"
            if self.acc.is_main_process:
                tmp = self.run_dir / ".tmp-best"
                shutil.rmtree(tmp, ignore_errors=True)
                self.unwrapped_policy.save_pretrained(tmp / "policy", safe_serialization=True)
                (tmp / "eval.json").write_text(json.dumps(self.evals[-1]))
                shutil.rmtree(self.best_dir, ignore_errors=True)
                os.replace(tmp, self.best_dir)
            self.acc.wait_for_everyone()
            return False
        self.evals_since_best += 1
        if self.evals_since_best >= cfg.early_stopping_patience:
            log.info("early stopping: no better held-out combined reward in %d evaluations (best %.3f)",
                     self.evals_since_best, self.best_reward)
            return True
        return False

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc="ppo", unit="it", dynamic_ncols=True,
                   disable=not self.acc.is_main_process or bool(os.environ.get("CAMELID_NO_PROGRESS")))
        stopped_early = False
        last_ckpt = self.latest_checkpoint(self.run_dir)
        try:
            while self.iteration < cfg.iterations:
                metrics = self.step()
                self.iteration += 1
                self.history.append(metrics)
                self.acc.log({f"train/{k}": v for k, v in metrics.items()}, step=self.iteration)
                bar.update(1)
                bar.set_postfix(rc=f"{metrics['reward/combined']:.2f}", kl=f"{metrics['kl']:.3f}",
                                safety=f"{metrics['safety_share']:.2f}", len=f"{metrics['response_length']:.0f}")
                log.debug("iter %d: %s", self.iteration, metrics)
                stopped_early = self._maybe_eval()
                for cb in self.callbacks:  # may raise (tests use this to kill a run between checkpoints)
                    cb(self, metrics)
                if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations or stopped_early:
                    last_ckpt = self.save_checkpoint()
                if stopped_early:
                    break
        finally:
            bar.close()
        return TrainResult(iterations=self.iteration, history=self.history, evals=self.evals,
                           best_checkpoint=(self.best_dir / "policy") if self.best_dir else None,
                           stopped_early=stopped_early, last_checkpoint=last_ckpt)
