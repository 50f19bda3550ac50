"""`camelid reward`: one recipe for the helpfulness and the safety reward model (Llama 2 §3.2.2).

    setup()  -> the init model with a scalar head, training pairs after Llama 2's data rules (reward/data.py)
    train()  -> TRL's RewardTrainer with the rating margin (+ optional auxiliary safety loss)
    evaluate -> accuracy per rating level on both objectives' test sets (Table 8), calibration,
                unsafe precision/recall at the shared safety threshold, a score histogram (reward/evaluate.py)
    publish  -> rm-<objective>/vN: model/ (seq-cls, num_labels=1, + tokenizer), calibration.json,
                scores.png, every count and metric in the manifest

Runs under `accelerate launch` / torchrun: every process trains; the main one evaluates and publishes.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.reward import calibration
from camelid.reward.config import RewardModelConfig
from camelid.reward.scoring import distinct_pad
from camelid.stage import Recipe, StageContext

log = get_logger("reward")


# ---- setup: model -------------------------------------------------------------------------------------

def load_init_model(init: Artifact, rm: RewardModelConfig, precision: str):
    """The init checkpoint with a fresh scalar head (num_labels=1) and pad_token_id set."""
    from transformers import AutoModelForSequenceClassification, set_seed
    from transformers.utils import logging as hf_logging

    from camelid.models import hub_errors, load_tokenizer, torch_dtype

    tokenizer = distinct_pad(load_tokenizer(init))  # pad == eos would hide a row's final eos from the score
    set_seed(rm.seed)  # the new head's initial weights
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is the point, not a warning
    try:
        with hub_errors(init):
            model = AutoModelForSequenceClassification.from_pretrained(
                init.model_path, num_labels=1, dtype=torch_dtype(precision), use_safetensors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    # Llama has no pad token: without pad_token_id the model cannot find each row's last token.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def peft_config(rm: RewardModelConfig):
    """LoRA on the backbone; the score head trains whole (modules_to_save)."""
    return rm.lora.peft_config("SEQ_CLS", modules_to_save=["score"]) if rm.mode == "lora" else None


# ---- train --------------------------------------------------------------------------------------------

def build_trainer(rm: RewardModelConfig, model, tokenizer, rows: list[dict], out_dir: Path, precision: str,
                  use_cpu: bool):
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import RewardConfig

    from camelid.reward.trainer import CamelidRewardTrainer, PreferenceCollator
    from camelid.training.batching import GPU_PAD_MULTIPLE
    from camelid.training.callbacks import StopOnNonFiniteLoss

    args = RewardConfig(
        output_dir=str(out_dir), max_length=rm.max_length, center_rewards_coefficient=rm.center_rewards_coefficient,
        per_device_train_batch_size=rm.batch_size, gradient_accumulation_steps=rm.grad_accum,
        num_train_epochs=rm.epochs, max_steps=rm.max_steps, learning_rate=rm.learning_rate,
        lr_scheduler_type=rm.lr_scheduler, warmup_steps=rm.warmup_ratio, weight_decay=rm.weight_decay,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=use_cpu,
        logging_steps=rm.logging_steps, save_strategy="steps", save_steps=rm.save_steps, save_total_limit=2,
        report_to=rm.report_to or "none", seed=rm.seed, data_seed=rm.seed, eval_strategy="no",
        ddp_find_unused_parameters=False, disable_tqdm=True, dataloader_num_workers=0,
        activation_checkpointing=rm.activation_checkpointing,
        train_sampling_strategy="group_by_length" if rm.group_by_length else "random",
    )
    pad = rm.pad_to_multiple_of or (None if use_cpu or not torch.cuda.is_available() else GPU_PAD_MULTIPLE)
    collator = PreferenceCollator(pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=pad)
    trainer = CamelidRewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                   processing_class=tokenizer, data_collator=collator,
                                   peft_config=peft_config(rm), aux_safety_weight=rm.aux_safety_loss,
                                   packing=use_cpu if rm.packing == "auto" else rm.packing)
    trainer.add_callback(StopOnNonFiniteLoss("reward model", "stages.reward.<objective>.learning_rate"))
    # disable_tqdm swaps the bar for PrinterCallback, which prints every log dict ({'train_runtime': ...}) to
    # stdout; train() logs what matters through camelid's logger.
    trainer.remove_callback(PrinterCallback)
    return trainer


def train(trainer, checkpoint: Path | None) -> dict:
    """RewardTrainer.train(), from ``checkpoint`` when resuming; the loss history and counts."""
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    accs = [h["accuracy"] for h in history if "accuracy" in h and "loss" in h]
    return {"steps": trainer.state.global_step, "seconds": round(time.perf_counter() - t0, 1),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "train_accuracy_last": accs[-1] if accs else None, "losses": losses}


# ---- the recipe ---------------------------------------------------------------------------------------

class RewardRecipe(Recipe):
    """The job's reward model (objective helpfulness | safety): setup -> train -> evaluate -> publish. Every
    process trains; the main one evaluates and publishes (the driver hands the others its ref)."""

    def setup(self) -> None:
        from camelid.models import device_for, pick_precision

        ctx = self.ctx
        self.objective = ctx.job.options.objective
        self.rm: RewardModelConfig = ctx.section  # the job's own section (stages.reward.<objective>, or a round's)
        device = device_for(ctx.job.runtime.device)
        precision = pick_precision(self.rm.precision, device)
        log.info("reward-%s: init %s, margin %s, precision %s, %d process(es)", self.objective,
                 ctx.inputs["init"].ref, self.rm.margin, precision, ctx.state.num_processes)
        self.trainer, self.tokenizer, self.data = setup(ctx, self.rm, self.objective, precision,
                                                        use_cpu=device.type == "cpu")

    def train(self) -> None:
        stats = self.train_stats = train(self.trainer, self.ctx.checkpoint)
        if stats["loss_first"] is None:  # fewer steps than logging_steps: no loss was logged
            log.info("trained %d steps in %.0fs (no loss logged: fewer steps than logging_steps)", stats["steps"],
                     stats["seconds"])
        else:
            log.info("trained %d steps in %.0fs: loss %.4f -> %.4f", stats["steps"], stats["seconds"],
                     stats["loss_first"], stats["loss_last"])

    def evaluate(self) -> None:
        """Table 8 accuracy, calibration, unsafe detection and the score histogram (main process)."""
        from transformers import AutoModelForSequenceClassification

        from camelid.models import gather_full_model
        from camelid.reward.evaluate import evaluate

        # Sharded weights (FSDP, ZeRO-3) are gathered into one plain model on the main process (a collective).
        trained = gather_full_model(self.trainer, AutoModelForSequenceClassification)
        if not self.ctx.is_main:
            return
        if self.rm.mode == "lora":
            trained = trained.merge_and_unload()
        self.trained = trained
        self.eval_metrics, self.calibration, self.plot = evaluate(
            trained, self.tokenizer, self.objective, self.rm, self.data.test_sets, self.data.rows,
            self.ctx.job.shared["safety_threshold"])

    def publish(self) -> Artifact | None:
        """The model, calibration, plot and metrics (main process)."""
        from camelid.models import count_parameters, save_model
        from camelid.reward.evaluate import report, save_histogram, table8_rows

        if not self.ctx.is_main:
            return None
        ctx, objective, trained, tokenizer, data = self.ctx, self.objective, self.trained, self.tokenizer, self.data
        metrics = {"data": data.counts, "train": self.train_stats, "eval": self.eval_metrics,
                   "parameters": count_parameters(trained)}
        with ctx.publish(data_fingerprints=data.fingerprints, metrics=metrics) as pub:
            trained.config.pad_token_id = tokenizer.pad_token_id
            save_model(pub.dir, trained, tokenizer)
            calibration.save(self.calibration, pub.dir)
            save_histogram(pub.dir / "scores.png", objective, self.plot)
            other = ctx.job.options.other
            table = table8_rows(f"rm-{objective} (this run)", self.eval_metrics, ctx.registry,
                                other and other.output)
            pub.metrics["table8"] = table
        report(pub.artifact, objective, pub.artifact.manifest["metrics"], table)
        return pub.artifact


# ---- setup: the trainer for this objective (a function, like train(): benches time the steps alone) ---------

def setup(ctx: StageContext, rm: RewardModelConfig, objective: str, precision: str, use_cpu: bool):
    """(trainer, tokenizer, prepared data) for this objective."""
    from camelid.errors import ConfigError
    from camelid.models import is_sharded
    from camelid.reward.data import prepare

    model, tokenizer = load_init_model(ctx.inputs["init"], rm, precision)
    data = prepare(objective, tokenizer, rm, ctx.job.options.other)
    trainer = build_trainer(rm, model, tokenizer, data.rows, ctx.run_dir, precision, use_cpu=use_cpu)
    if rm.mode == "lora" and is_sharded(trainer):
        raise ConfigError(f"stages.reward.{objective}.mode=lora under FSDP / DeepSpeed ZeRO-3 is not supported: "
                          "launch LoRA runs with configs/ddp.yaml or configs/deepspeed_zero2.yaml")
    return trainer, tokenizer, data
