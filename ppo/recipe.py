"""The PPO recipe: setup -> train -> evaluate -> publish ppo/vN (docs/stages/ppo.md).

Run by the stage driver (camelid.stage.execute), which resolves and checks the roles -- policy (also the
reference unless one is given), reward_helpfulness, reward_safety, value_init (gae only: the critic-free
estimators have no value model) -- and picks the run folder
and the checkpoint to resume from. Runs under `accelerate launch` unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from camelid.errors import ConfigError
from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.stage import Recipe, StageContext

log = get_logger("ppo")


def _oracle_for(prompts: list) -> Callable | None:
    """The toy world's oracle scores responses to its own prompts; real prompts have none."""
    from camelid.data.toyworld import all_toy_prompts, evaluate

    return evaluate if all_toy_prompts(prompts) else None


def _load_prompts(spec, what: str):
    from camelid.data.load import load_records

    result = load_records(spec, "prompts")
    log.info("%s: %s", what, result.summary())
    return result


def setup(ctx: StageContext, *, callbacks: list[Callable] | None = None):
    """Load the four roles and the prompts, build the trainer. -> (trainer, data fingerprints)"""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers.utils import logging as hf_logging

    from camelid.models import device_for, load_tokenizer, pick_precision
    from camelid.ppo.models import add_lora, load_causal, load_value
    from camelid.ppo.trainer import PPOTrainer
    from camelid.reward.combined import load_combined_scorer

    hf_logging.disable_progress_bar()  # one progress bar (PPO's), not one per checkpoint shard
    runtime, p, inputs, registry = ctx.job.runtime, ctx.section, ctx.inputs, ctx.registry
    # cpu=True on a CPU-only machine is what makes accelerate use gloo (MULTI_CPU) under `accelerate launch`
    # / torchrun; without it every process silently runs alone.
    on_cpu = device_for(runtime.device).type == "cpu"
    precision = pick_precision(p.precision, device_for(runtime.device))
    # Trainable weights stay fp32 (a 1e-6 step vanishes in bf16) and run under autocast; frozen models
    # (reference, reward models) and LoRA's frozen base use the low precision directly.
    accelerator = Accelerator(cpu=on_cpu, log_with=p.report_to or None, project_dir=str(ctx.run_dir),
                              mixed_precision="no" if precision == "fp32" else precision)
    trainable = "fp32" if p.mode == "full" else precision
    set_seed(p.seed + accelerator.process_index)  # different samples on each process
    device = accelerator.device

    tokenizer = load_tokenizer(inputs["policy"], trust_remote_code=runtime.trust_remote_code)
    policy = load_causal(inputs["policy"], precision=trainable, device=device)
    if policy.config.pad_token_id is None:
        policy.config.pad_token_id = tokenizer.pad_token_id
    if p.mode == "lora":
        if "reference" in inputs:
            raise ConfigError("stages.ppo.reference cannot be set with mode: lora (the reference is the policy "
                              "with its adapter disabled)")
        policy, reference = add_lora(policy, p.lora, task_type="CAUSAL_LM"), None
    else:
        reference = load_causal(inputs.get("reference", inputs["policy"]), precision=precision, device=device)
    value = None
    if not p.critic_free:
        value = load_value(inputs["value_init"], precision=trainable, device=device,
                           pad_token_id=tokenizer.pad_token_id)
        if p.mode == "lora":
            value.model = add_lora(value.model, p.lora, task_type="SEQ_CLS")
        value.model.config.use_cache = False
    if p.activation_checkpointing:  # generation runs in eval mode, where checkpointing is off and the KV cache on
        for m in (policy, *([value.model] if value is not None else [])):
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    rewards = load_combined_scorer(inputs["reward_helpfulness"], inputs["reward_safety"], registry,
                                   threshold=ctx.job.shared["safety_threshold"], device=device, precision=precision)

    prompts = _load_prompts(p.prompts, "rollout prompts")
    eval_prompts = _load_prompts(p.eval_prompts, "held-out prompts") if p.eval_prompts else None
    data = {"prompts": prompts.fingerprint}
    if eval_prompts is not None:
        data["eval_prompts"] = eval_prompts.fingerprint
    eval_records = eval_prompts.records if eval_prompts is not None else None
    trainer = PPOTrainer(p, accelerator=accelerator, policy=policy, reference=reference, value=value,
                         tokenizer=tokenizer, rewards=rewards,
                         prompts=prompts.records, eval_prompts=eval_records, run_dir=ctx.run_dir, callbacks=callbacks,
                         oracle=_oracle_for(eval_records or []))
    return trainer, data


class PPORecipe(Recipe):
    """Train PPO and publish ``stages.ppo.output``/vN from the main process (None elsewhere).

    ``ctx.job.options.callbacks``: optional ``f(trainer, metrics)`` called after each iteration (tests,
    benches); one may raise ``camelid.ppo.trainer.StopTraining`` to end the run without publishing.
    """

    trainer = None

    def setup(self) -> None:
        ctx, p = self.ctx, self.ctx.section
        self.trainer, self.data = setup(ctx, callbacks=list(ctx.job.options.callbacks) or None)
        if ctx.checkpoint is not None:
            self.trainer.resume(ctx.checkpoint)
        _log_start(ctx, self.trainer)
        if p.report_to:
            self.trainer.acc.init_trackers("ppo", config={k: v for k, v in ctx.job.section.items()
                                                          if isinstance(v, int | float | str)})

    def train(self) -> None:
        """The iterations (held-out evaluations at eval_every, the first before any update), then the best policy
        seen when early stopping is on."""
        trainer, p = self.trainer, self.ctx.section
        self.t_start = time.perf_counter()
        if trainer.iteration == 0 and trainer.eval_prompts:
            trainer.evals.append({"iteration": 0, **trainer.evaluate()})  # the starting point, for the report
            log.info("before PPO: %s", _fmt(trainer.evals[0]))
        self.result = result = trainer.train()
        if result.best_checkpoint is not None and p.early_stopping_patience is not None:
            log.info("publishing the best policy seen on held-out prompts (%s)", result.best_checkpoint)
            trainer.load_policy(result.best_checkpoint)

    def evaluate(self) -> None:
        """The published policy on the held-out prompts; with the training history, the manifest's metrics."""
        trainer, result = self.trainer, self.result
        final = trainer.final_evaluation()
        if final:
            log.info("after PPO: %s", _fmt(final))
        self.metrics = {
            "iterations": result.iterations, "stopped_early": result.stopped_early,
            "train_last": result.history[-1] if result.history else {},
            "eval_before": next((e for e in result.evals if e["iteration"] == 0), {}),
            "eval": final, "evals": result.evals, "minutes": (time.perf_counter() - self.t_start) / 60,
        }

    def publish(self) -> Artifact | None:
        from camelid.models import save_model

        if not self.ctx.is_main:
            return None
        trainer = self.trainer
        with self.ctx.publish(data_fingerprints=self.data, metrics=self.metrics) as pub:
            policy = trainer.unwrapped_policy
            if self.ctx.section.mode == "lora":
                save_model(pub.dir, policy, trainer.tokenizer, folder="adapter")
                policy = policy.merge_and_unload()
            save_model(pub.dir, policy, trainer.tokenizer)
        return pub.artifact

    def cleanup(self) -> None:
        # Finish the trackers only: Accelerator.end_training() also destroys the process group, which would
        # break the next stage of a multi-process `camelid run` (compare's first collective).
        for tracker in self.trainer.acc.trackers if self.trainer is not None else ():
            tracker.finish()


def _log_start(ctx: StageContext, trainer) -> None:
    from camelid.models import count_parameters

    p, inputs = ctx.section, ctx.inputs
    value = f"value from {inputs['value_init'].ref}" if "value_init" in inputs else "no value model"
    log.info("on %d process(es): policy %s (%s, %.2fM trainable), advantage %s (%s), RMs %s + %s, %d prompts, "
             "%d iterations x %d (%d samples per prompt)", trainer.acc.num_processes,
             inputs["policy"].ref, p.mode, count_parameters(trainer.unwrapped_policy, True) / 1e6, p.advantage, value,
             inputs["reward_helpfulness"].ref, inputs["reward_safety"].ref,
             len(trainer.prompts), p.iterations, p.rollout_batch_size, p.samples_per_prompt)


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float))
