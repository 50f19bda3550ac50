"""The PPO loop: make experience once per iteration, then minibatch updates of policy and value.

    trainer = PPOTrainer(cfg, accelerator=..., policy=..., reference=..., value=..., ...)
    trainer.resume(checkpoint_dir)   # optional
    trainer.train()                  # -> TrainResult

Each job has its own module: experience_maker (rollouts, scores, reference log-probs, values, advantages ->
Experience), update (clipped policy + value steps), evaluation (held-out prompts), checkpoint
(checkpoints, resume, early stopping). This one wires them together and runs the loop.
With a critic-free estimator (grpo, rloo, reinforce++) ``value`` is None: nothing of a value model is built,
prepared, trained or checkpointed. Anything non-finite stops the run with `TrainingDiverged` before an optimizer step can write it
into the weights; checkpoints are only written from finite states.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from camelid.errors import ConfigError, TrainingDiverged
from camelid.log import get_logger
from camelid.ppo import evaluation
from camelid.ppo.checkpoint import (
    CHECKPOINT_MARKER,
    EarlyStopping,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from camelid.ppo.collective import NonFinite, mean_over_processes
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience_maker import ExperienceMaker, PromptSchedule, experience_metrics
from camelid.ppo.update import PPOUpdate, adamw
from camelid.reward.combined import CombinedScorer
from camelid.runs import latest_checkpoint

log = get_logger("ppo")

__all__ = ["PPOTrainer", "StopTraining", "TrainResult", "TrainingDiverged"]


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


def local_batch_sizes(cfg: PPOConfig, world: int) -> tuple[int, int]:
    """(rollout batch, minibatch) per process; ConfigError unless the sizes divide evenly."""
    for name, n in (("rollout_batch_size", cfg.rollout_batch_size), ("minibatch_size", cfg.minibatch_size)):
        if n % world:
            raise ConfigError(f"stages.ppo.{name}={n} must be divisible by the {world} processes")
    local_batch, local_minibatch = cfg.rollout_batch_size // world, cfg.minibatch_size // world
    if local_batch % local_minibatch:
        raise ConfigError(f"stages.ppo.rollout_batch_size ({cfg.rollout_batch_size}) must be a multiple of "
                           f"minibatch_size ({cfg.minibatch_size})")
    if local_batch % cfg.samples_per_prompt:  # a prompt's responses stay on one process (per-prompt baselines)
        raise ConfigError(f"stages.ppo.rollout_batch_size ({cfg.rollout_batch_size}) must be a multiple of "
                          f"samples_per_prompt ({cfg.samples_per_prompt}) x the {world} processes")
    return local_batch, local_minibatch


class PPOTrainer:
    def __init__(self, cfg: PPOConfig, *, accelerator, policy, reference, value, tokenizer, rewards: CombinedScorer,
                 prompts: list, eval_prompts: list | None, run_dir: Path, callbacks: list[Callable] | None = None,
                 oracle: Callable | None = None):
        """``reference`` is None in LoRA mode (the policy with its adapter disabled is the reference); ``value`` is
        None with a critic-free estimator (cfg.critic_free); ``rewards``: both reward models and Llama 2's rule."""
        self.cfg, self.acc, self.tokenizer = cfg, accelerator, tokenizer
        self.prompts, self.eval_prompts = prompts, eval_prompts or []
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks or [])
        self.oracle = oracle
        self.pad_id, self.eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
        local_batch, local_minibatch = local_batch_sizes(cfg, accelerator.num_processes)

        if reference is not None:
            reference.requires_grad_(False)
        self.reference = reference.eval() if reference is not None else None
        if (value is None) != cfg.critic_free:
            raise ValueError(f"advantage {cfg.advantage} {'has no' if cfg.critic_free else 'needs a'} value model")
        if cfg.critic_free and cfg.value_warmup:
            log.info("advantage %s has no value model: value_warmup=%d is ignored, the policy trains from the first "
                     "iteration", cfg.advantage, cfg.value_warmup)
        opt_p = adamw(policy, cfg, cfg.learning_rate)
        if value is None:
            self.value = self.opt_v = None
            self.policy, self.opt_p = accelerator.prepare(policy, opt_p)
        else:
            opt_v = adamw(value, cfg, cfg.value_learning_rate or cfg.learning_rate)
            self.policy, self.value, self.opt_p, self.opt_v = accelerator.prepare(policy, value, opt_p, opt_v)

        self.schedule = PromptSchedule(prompts, seed=cfg.seed, batch_size=cfg.rollout_batch_size,
                                       rank=accelerator.process_index, local_batch=local_batch,
                                       samples_per_prompt=cfg.samples_per_prompt)
        self.experience = ExperienceMaker(
            cfg, accelerator, policy=self.unwrapped_policy, reference=self.reference, value=self.unwrapped_value,
            tokenizer=tokenizer, rewards=rewards)
        self.update = PPOUpdate(cfg, accelerator, policy=self.policy, value=self.value, opt_policy=self.opt_p,
                                opt_value=self.opt_v, minibatch_size=local_minibatch)
        self.early_stopping = EarlyStopping(cfg.early_stopping_patience, self.run_dir)
        self.iteration = 0
        self.history: list[dict] = []
        self.evals: list[dict] = []

    @property
    def unwrapped_policy(self):
        return self.acc.unwrap_model(self.policy)

    @property
    def unwrapped_value(self):
        return self.acc.unwrap_model(self.value) if self.value is not None else None

    @property
    def rm_h(self):
        return self.experience.rewards.helpfulness

    @property
    def rm_s(self):
        return self.experience.rewards.safety

    # ---- the loop -------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        """Iterate up to cfg.iterations (or early stopping); checkpoint every save_every and at the end."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stopped_early, last_ckpt = False, self.latest_checkpoint(self.run_dir)
        with self._progress_bar() as bar, self._stop_on_divergence():
            while self.iteration < cfg.iterations:
                metrics = self.step()
                self.iteration += 1
                self.history.append(metrics)
                self._log_iteration(metrics, bar)
                stopped_early = self._evaluate_and_maybe_stop()
                for cb in self.callbacks:  # may raise (tests use this to kill a run between checkpoints)
                    cb(self, metrics)
                if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations or stopped_early:
                    last_ckpt = self.save_checkpoint()
                if stopped_early:
                    break
        return TrainResult(iterations=self.iteration, history=self.history, evals=self.evals,
                           best_checkpoint=self.early_stopping.best_policy, stopped_early=stopped_early,
                           last_checkpoint=last_ckpt)

    def step(self) -> dict[str, float]:
        """One PPO iteration (experience, then updates); returns its metrics averaged over processes."""
        exp, timing = self.experience.make(self.schedule.batch(self.iteration))
        t0 = time.perf_counter()
        stats = self.update.train_on(exp, value_only=self.iteration < self.cfg.value_only_iterations)
        timing["time/training"] = time.perf_counter() - t0
        stats.update({**experience_metrics(exp), **timing})
        stats = mean_over_processes(self.acc, stats)
        stats["iteration"] = self.iteration + 1
        return stats

    def evaluate(self, *, sampled_kl: bool = False) -> dict[str, float]:
        """Greedy answers to the held-out prompts, scored by both RMs (and the oracle, when there is one)."""
        with self._stop_on_divergence():
            return evaluation.evaluate(self.experience, self.eval_prompts, batch_size=self.cfg.eval_batch_size,
                                       seed=self.cfg.seed, sampled_kl=sampled_kl, oracle=self.oracle)

    def _evaluate_and_maybe_stop(self) -> bool:
        """Evaluate every eval_every iterations; True when early stopping says stop."""
        if not self.eval_prompts or self.iteration % self.cfg.eval_every or self.last_eval_deferred():
            return False
        self.record_eval(self.evaluate())
        return self.early_stopping.observe(self.acc, self.unwrapped_policy, self.evals[-1])

    def last_eval_deferred(self) -> bool:
        """True at the last iteration without early stopping: the final evaluation answers the same policy's prompts
        greedily (adding the sampled KL), so the periodic one there would be the same answers a second time (about a
        minute of the smol profile's ppo); `final_evaluation` records it as this iteration's. Early stopping keeps
        it: it picks the best policy from these evaluations."""
        return self.iteration == self.cfg.iterations and self.cfg.early_stopping_patience is None

    def final_evaluation(self) -> dict[str, float]:
        """The published policy's greedy answers with the sampled KL ({} without held-out prompts); also the last
        iteration's periodic `evals` row where that one was left to it (`last_eval_deferred`)."""
        if not self.eval_prompts:
            return {}
        final = self.evaluate(sampled_kl=True)
        if self.iteration % self.cfg.eval_every == 0 and self.last_eval_deferred() \
                and not any(e["iteration"] == self.iteration for e in self.evals):
            self.record_eval(final)
        return final

    def record_eval(self, metrics: dict[str, float]) -> None:
        """One periodic evaluation (the greedy answers' scores) as this iteration's `evals` row, logged."""
        metrics = {k: v for k, v in metrics.items() if k != "kl"}  # the sampled KL is the final evaluation's only
        self.evals.append({"iteration": self.iteration, **metrics})
        self.acc.log({f"eval/{k}": v for k, v in metrics.items()}, step=self.iteration)
        log.info("eval @%d: combined %.3f helpfulness %.3f safety %.3f%s", self.iteration,
                 metrics["reward/combined"], metrics["reward/helpfulness"], metrics["reward/safety"],
                 "".join(f" {k}={v:.3f}" for k, v in metrics.items() if k.startswith("oracle/")))

    def _progress_bar(self):
        from tqdm.auto import tqdm

        return tqdm(total=self.cfg.iterations, initial=self.iteration, desc="ppo", unit="it", dynamic_ncols=True,
                    # None: tqdm's own rule, no bar when stderr is not a terminal (its frames would fill a log)
                    disable=True if not self.acc.is_main_process or os.environ.get("CAMELID_NO_PROGRESS") else None)

    def _log_iteration(self, metrics: dict[str, float], bar) -> None:
        self.acc.log({f"train/{k}": v for k, v in metrics.items()}, step=self.iteration)
        bar.update(1)
        bar.set_postfix(rc=f"{metrics['reward/combined']:.2f}", kl=f"{metrics['kl']:.3f}",
                        safety=f"{metrics['safety_share']:.2f}", len=f"{metrics['response_length']:.0f}")
        log.debug("iter %d: %s", self.iteration, metrics)

    @contextlib.contextmanager
    def _stop_on_divergence(self) -> Iterator[None]:
        """Turn a NaN/inf found by any job into TrainingDiverged naming the iteration and the last checkpoint."""
        try:
            yield
        except NonFinite as e:
            ckpt = self.latest_checkpoint(self.run_dir)
            last_good = f"the last good checkpoint is {ckpt}" if ckpt else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"PPO stopped at iteration {self.iteration + 1}: {e.what} is NaN or inf. Nothing was published and "
                f"no further checkpoint was written; {last_good}. Check the reward models' scores, lower "
                "stages.ppo.learning_rate or raise kl_coef, then rerun (add --resume to continue from the "
                "checkpoint).") from None

    # ---- checkpoints ------------------------------------------------------------------------------
    @staticmethod
    def latest_checkpoint(run_dir: Path) -> Path | None:
        return latest_checkpoint(run_dir, CHECKPOINT_MARKER)

    def save_checkpoint(self) -> Path:
        """checkpoint-<iteration>/: policy, value (if any), optimisers, RNG (per process), moments and history."""
        state = {"iteration": self.iteration, "moments": self.experience.moments.state_dict(),
                 "history": self.history, "evals": self.evals, **self.early_stopping.state_dict()}
        return save_checkpoint(self.acc, self.run_dir, self.iteration, policy=self.unwrapped_policy,
                               value=self.unwrapped_value, optimizers=(self.opt_p, self.opt_v), state=state)

    def resume(self, folder: Path) -> None:
        """Restore weights, optimisers, RNG, iteration, running statistics and history from a checkpoint."""
        state = load_checkpoint(self.acc, Path(folder), policy=self.unwrapped_policy, value=self.unwrapped_value,
                                optimizers=(self.opt_p, self.opt_v))
        self.iteration = int(state["iteration"])
        self.experience.moments.load_state_dict(state["moments"])
        self.history, self.evals = state["history"], state["evals"]
        self.early_stopping.load_state_dict(state)
        log.info("resumed from %s (iteration %d of %d)", folder, self.iteration, self.cfg.iterations)

    def load_policy(self, folder: Path) -> None:
        """Policy weights from a saved policy folder (the best one kept by early stopping)."""
        load_weights(self.unwrapped_policy, Path(folder))
