"""`camelid dpo`: Direct Preference Optimization from a policy, on TRL's DPOTrainer.

    setup()    the policy (also the reference), the reward models' pairs (dpo/data.py), the trainer; the
               reference log-probs of every pair are computed once, before the first step
    train()    DPOTrainer.train() (resumes from the newest checkpoint in the run folder with --resume)
    evaluate() held-out pairs: DPO loss, implicit-reward accuracy and margin; greedy answers to held-out
               prompts scored by the toy world's oracle, as the sft stage publishes them
    publish()  publish dpo/vN (model/, plus adapter/ for LoRA) with metrics; main process only

DPO (Rafailov et al. 2023) skips the reward model and PPO's sampling: it raises the policy's log-likelihood
ratio to the reference on the chosen answer over the rejected one, -log sigmoid(beta * difference).
"""

from __future__ import annotations

import json
import time

from transformers import TrainerCallback

from camelid.dpo.config import DPOConfig
from camelid.dpo.data import MARGIN, PreparedPairs, prepare, with_margins
from camelid.errors import ConfigError
from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.stage import Recipe, StageContext

log = get_logger("dpo")
LOGGED = (("rewards/accuracies", "acc"), ("rewards/margins", "margin"), ("logps/chosen", "logp_c"),
          ("logps/rejected", "logp_r"))


class DPORecipe(Recipe):
    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        self.job, self.state = ctx.job, ctx.state
        self.runtime = ctx.job.runtime  # device, remote code, attention kernel
        self.dc: DPOConfig = ctx.section
        self.policy = ctx.inputs["policy"]
        self.metrics: dict = {}
        self.generations: list[dict] = []

    # ---- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        import datasets
        import transformers

        from camelid.models import (
            count_parameters,
            device_for,
            is_sharded,
            load_causal_lm,
            load_tokenizer,
            pick_precision,
        )

        datasets.disable_progress_bars()  # TRL's per-map bars; our log lines stay
        transformers.utils.logging.disable_progress_bar()
        dc = self.dc
        self.device = device_for(self.runtime.device)
        self.precision = pick_precision(dc.precision, self.device)
        # The pairs first: bad data is reported before a model is loaded.
        tokenizer = load_tokenizer(self.policy, trust_remote_code=self.runtime.trust_remote_code)
        self.data: PreparedPairs = prepare(dc, tokenizer, self.job.where, transform=self._own_answers())
        self.metrics["data"] = self.data.counts
        # bf16 trains in bf16 weights, as TRL's scripts do; fp16 keeps fp32 weights under AMP.
        model, self.tokenizer = load_causal_lm(
            self.policy, precision="bf16" if self.precision == "bf16" else "fp32", device=self.runtime.device,
            trust_remote_code=self.runtime.trust_remote_code, attn_implementation=self.runtime.attn_implementation)
        self.trainer = self._build_trainer(model)
        self.model = self.trainer.model
        if dc.mode == "lora" and is_sharded(self.trainer):
            raise ConfigError(f"{self.job.where}.mode=lora under FSDP / DeepSpeed ZeRO-3 is not supported: launch "
                              "LoRA runs with configs/ddp.yaml or configs/deepspeed_zero2.yaml")
        self.metrics["parameters"] = count_parameters(self.model)
        self.metrics["trainable_parameters"] = count_parameters(self.model, trainable_only=True)
        log.info("%s DPO from %s: %.2fM parameters (%.2fM trainable), beta %s, loss %s, margin %s, %s on %s x%d, "
                 "run folder %s", dc.mode, self.policy.ref, self.metrics["parameters"] / 1e6,
                 self.metrics["trainable_parameters"] / 1e6, dc.beta, dc.loss_type, dc.margin, self.precision,
                 self.device.type, self.state.num_processes, self.run_dir)

    def _own_answers(self):
        """The pairs' rewrite by stages.dpo.own_answers (camelid.dpo.own), or None."""
        if self.dc.own_answers is None:
            return None
        from camelid.dpo.own import own_answers

        settings, artifact = self.dc.own_answers, self.ctx.inputs["own_answers"]
        return lambda pairs: own_answers(pairs, settings, artifact, device=self.runtime.device)

    @property
    def run_dir(self):
        return self.ctx.run_dir

    def _trl_args(self):
        from trl import DPOConfig as TRLConfig

        dc = self.dc
        has_eval = self.data.eval is not None
        return TRLConfig(
            output_dir=str(self.run_dir),
            beta=dc.beta, loss_type=[dc.loss_type], label_smoothing=dc.label_smoothing,
            # The reference log-probs of every pair are computed once before training: no second model in memory
            # during training, and the place where a rating's margin becomes the offset (dpo/data.py).
            precompute_ref_log_probs=True, precompute_ref_batch_size=dc.batch_size,
            max_length=dc.max_length,  # pairs longer than this were dropped in dpo/data.py, so nothing is cut
            num_train_epochs=dc.epochs, max_steps=dc.max_steps,
            learning_rate=dc.learning_rate, lr_scheduler_type=dc.lr_scheduler, warmup_steps=dc.warmup_ratio,
            weight_decay=dc.weight_decay,
            per_device_train_batch_size=dc.batch_size, per_device_eval_batch_size=dc.batch_size,
            gradient_accumulation_steps=dc.grad_accum,
            pad_to_multiple_of=dc.pad_to_multiple_of,
            # TRL defaults to bf16=True and activation checkpointing on: precision from the hardware, the
            # checkpointing from the config (off by default, as every camelid stage).
            bf16=self.precision == "bf16", fp16=self.precision == "fp16", use_cpu=self.device.type == "cpu",
            activation_checkpointing=dc.activation_checkpointing,
            logging_steps=dc.logging_steps, logging_first_step=True, disable_tqdm=True,
            save_strategy="steps", save_steps=dc.save_steps, save_total_limit=dc.save_total_limit,
            eval_strategy="steps" if has_eval and dc.eval_steps else "no", eval_steps=dc.eval_steps or None,
            report_to=list(dc.report_to) or "none", run_name=f"{self.job.output}-{self.run_dir.name}",
            seed=dc.seed, data_seed=dc.seed,
            ddp_find_unused_parameters=False, dataloader_num_workers=0,
            trust_remote_code=self.runtime.trust_remote_code,
        )

    def _build_trainer(self, model):
        from transformers.trainer_callback import PrinterCallback
        from trl import DPOTrainer

        from camelid.training.callbacks import StopOnNonFiniteLoss

        trainer = DPOTrainer(
            model=model, args=self._trl_args(), processing_class=self.tokenizer,
            train_dataset=self._on_disk("train", self.data.train),
            eval_dataset=self._on_disk("eval", self.data.eval) if self.data.eval is not None else None,
            peft_config=self.dc.lora.peft_config("CAUSAL_LM") if self.dc.mode == "lora" else None)
        trainer.train_dataset = with_margins(trainer.train_dataset, self.dc.beta)
        if trainer.eval_dataset is not None:
            trainer.eval_dataset = trainer.eval_dataset.remove_columns(MARGIN)
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; LogLines logs what matters
        trainer.add_callback(LogLines())
        trainer.add_callback(StopOnNonFiniteLoss("DPO", f"{self.job.where}.learning_rate"))
        return trainer

    def _on_disk(self, name: str, rows: list[dict]):
        """``rows`` as a dataset saved in the run folder (written by the main process, read by every one).

        TRL tokenizes and caches the reference log-probs next to a dataset's files, under names every process
        derives alike; an in-memory dataset gets a random temporary name per process, and the other processes
        of an accelerate launch then look for a file the main process never wrote.
        """
        import hashlib

        from datasets import Dataset, load_from_disk

        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
        path = self.run_dir / "pairs" / f"{name}-{digest}"
        if self.state.is_main_process and not path.is_dir():
            tmp = path.with_name(path.name + ".tmp")
            Dataset.from_list(rows).save_to_disk(str(tmp))
            tmp.rename(path)
        self.state.wait_for_everyone()
        return load_from_disk(str(path))

    # ---- train ------------------------------------------------------------------------------------
    def train(self) -> None:
        checkpoint = self.ctx.checkpoint
        t0 = time.perf_counter()
        self.trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        wall = time.perf_counter() - t0
        state = self.trainer.state
        history = [h for h in state.log_history if "loss" in h]
        self.metrics.update({
            "steps": state.global_step, "epochs": round(float(state.epoch or 0), 4), "train_seconds": round(wall, 1),
            "precision": self.precision,
            "train_loss_first": history[0]["loss"] if history else None,
            "train_loss_last": history[-1]["loss"] if history else None,
            "train_reward_accuracy_last": history[-1].get("rewards/accuracies") if history else None,
            "train_reward_margin_last": history[-1].get("rewards/margins") if history else None,
            "loss_curve": [[h["step"], round(h["loss"], 4)] for h in history],
        })
        log.info("trained %d steps in %.0fs; loss %s -> %s", state.global_step, wall,
                 _num(self.metrics["train_loss_first"]), _num(self.metrics["train_loss_last"]))

    # ---- evaluate ---------------------------------------------------------------------------------
    def evaluate(self) -> None:
        from camelid.models import is_sharded
        from camelid.sft.evaluate import held_out_answers

        dc = self.dc
        if self.data.eval is not None:  # every rank takes part (DDP gathers)
            out = self.trainer.evaluate()
            self.metrics["eval"] = {"loss": out["eval_loss"], "reward_accuracy": out.get("eval_rewards/accuracies"),
                                    "reward_margin": out.get("eval_rewards/margins")}
            log.info("held-out pairs: loss %.4f, implicit-reward accuracy %s, margin %s", out["eval_loss"],
                     _num(out.get("eval_rewards/accuracies")), _num(out.get("eval_rewards/margins")))
        self.generations = held_out_answers(self.model, self.tokenizer, dc.eval_prompts,
                                            max_new_tokens=dc.max_new_tokens, sharded=is_sharded(self.trainer),
                                            is_main=self.state.is_main_process, metrics=self.metrics,
                                            fingerprints=self.data.fingerprints)

    # ---- publish ----------------------------------------------------------------------------------
    def publish(self) -> Artifact | None:
        """Publish on the main process (others return None). Nothing appears in the registry if this raises."""
        from transformers import AutoModelForCausalLM

        from camelid.models import gather_full_model, save_model
        from camelid.sft.evaluate import write_generations

        full = gather_full_model(self.trainer, AutoModelForCausalLM)  # a collective: every rank calls it
        if not self.state.is_main_process:
            return None
        with self.ctx.publish(data_fingerprints=self.data.fingerprints, metrics=self.metrics) as pub:
            if self.dc.mode == "lora":
                save_model(pub.dir, self.model, self.tokenizer, folder="adapter")
                full = self.model.merge_and_unload()  # a plain model the next stages load like any other
            save_model(pub.dir, full, self.tokenizer)
            write_generations(pub.dir, self.generations)
        return pub.artifact


def _num(value) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


class LogLines(TrainerCallback):
    """One log line per logging step: loss, implicit-reward accuracy and margin, chosen/rejected log-probs."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        parts = [f"step {state.global_step}/{state.max_steps}", f"loss {logs['loss']:.4f}"]
        parts += [f"{short} {logs[key]:.3f}" for key, short in LOGGED if key in logs]
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.2e}")
        log.info("  ".join(parts))

