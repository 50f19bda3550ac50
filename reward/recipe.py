"""`camelid reward`: one recipe for the helpfulness and the safety reward model (Llama 2 §3.2.2).

    setup()  -> the init model with a scalar head, training pairs after Llama 2's data rules, test sets
    train()  -> TRL's RewardTrainer with the rating margin (+ optional auxiliary safety loss)
    evaluate -> accuracy per rating level on both objectives' test sets (Table 8), calibration,
                unsafe precision/recall at PPO's 0.15, a score histogram
    save()   -> publish rm-<objective>/vN: model/ (seq-cls, num_labels=1, + tokenizer), calibration.json,
                scores.png, every count and metric in the manifest

Runs under `accelerate launch` / torchrun: every process trains; the main one evaluates and publishes.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from camelid.config import PipelineConfig
from camelid.data.records import PreferencePair
from camelid.errors import ConfigError, DataError
from camelid.log import get_logger
from camelid.registry import Artifact, Registry
from camelid.reward import calibration
from camelid.reward.config import RewardModelConfig
from camelid.reward.margins import margin_for
from camelid.reward.metrics import accuracy_by_level, format_table8, unsafe_detection
from camelid.reward.rules import drop_unsafe_chosen, mix_in
from camelid.reward.scoring import raw_scores, tokenize
from camelid.reward.trainer import safe_label

log = get_logger("reward")
OBJECTIVES = ("helpfulness", "safety")
INIT_KINDS = ("base", "sft", "reward", "ppo")


def other_objective(objective: str) -> str:
    return "safety" if objective == "helpfulness" else "helpfulness"


@dataclass
class TestSet:
    objective: str                 # whose held-out pairs these are
    pairs: list[PreferencePair]
    fingerprint: str
    dropped_unsafe_chosen: int = 0


@dataclass
class Prepared:
    """Everything setup() builds; counts go to the log and the manifest."""

    rows: list[dict]               # tokenized training rows for RewardTrainer
    counts: dict
    fingerprints: dict[str, str]
    test_sets: list[TestSet] = field(default_factory=list)


# ---- setup: data --------------------------------------------------------------------------------------

def _load_pairs(spec) -> tuple[list[PreferencePair], str, str]:
    from camelid.data.load import load_records

    result = load_records(spec, "pairs")
    return list(result.records), result.fingerprint, result.summary()


def select_training_pairs(rm: RewardModelConfig, *, seed: int) -> tuple[list[PreferencePair], dict, dict]:
    """Load data (+ mix_data) and apply Llama 2's rules: (pairs, counts, fingerprints)."""
    pairs, fp, summary = _load_pairs(rm.data)
    log.info("train data %s", summary)
    counts: dict = {"loaded": len(pairs)}
    fps = {"train": fp}
    if rm.drop_unsafe_chosen:
        pairs, counts["dropped_unsafe_chosen"] = drop_unsafe_chosen(pairs)
    if rm.mix_share > 0:
        if rm.mix_data is None:
            raise ConfigError(f"mix_share={rm.mix_share} but no mix_data: name the other objective's pairs in "
                              "mix_data, or set mix_share=0")
        other, fps["mix"], summary = _load_pairs(rm.mix_data)
        log.info("mix data %s", summary)
        counts["mix_loaded"] = len(other)
        if rm.drop_unsafe_chosen:  # the rule is about what this RM learns, wherever the pair came from
            other, counts["mix_dropped_unsafe_chosen"] = drop_unsafe_chosen(other)
        pairs, counts["mix_added"] = mix_in(pairs, other, rm.mix_share, seed=seed)
    elif rm.mix_data is not None:
        log.info("mix_data is set but mix_share is 0: nothing mixed in")
    if not pairs:
        raise DataError(f"no training pairs left after the data rules ({counts}); check data / drop_unsafe_chosen")
    return pairs, counts, fps


def tokenize_pairs(tokenizer, pairs: list[PreferencePair], margin_table: str, max_length: int
                   ) -> tuple[list[dict], int]:
    """RewardTrainer rows (chosen_ids, rejected_ids, margin, safety labels) and how many were too long.

    RewardTrainer would drop over-long pairs silently; dropping them here with the same rule lets us
    count them (and its own filter then finds nothing to drop).
    """
    rows, too_long = [], 0
    for p in pairs:
        c, r = tokenize(tokenizer, p.prompt, p.chosen), tokenize(tokenizer, p.prompt, p.rejected)
        if len(c) > max_length or len(r) > max_length:
            too_long += 1
            continue
        rows.append({"chosen_ids": c, "rejected_ids": r, "margin": margin_for(p.rating, margin_table),
                     "chosen_safe": safe_label(p.chosen_safe), "rejected_safe": safe_label(p.rejected_safe)})
    return rows, too_long


def load_test_sets(cfg: PipelineConfig, objective: str) -> list[TestSet]:
    """This objective's eval_data, then the other objective's (Table 8 crosses both RMs and both sets)."""
    out = []
    for obj in (objective, other_objective(objective)):
        rm = getattr(cfg.stages.reward, obj)
        if rm.eval_data is None:
            continue
        pairs, fp, summary = _load_pairs(rm.eval_data)
        log.info("%s test set %s", obj, summary)
        dropped = 0
        if rm.drop_unsafe_chosen:  # the same rule defines what "correct" means on the safety test set
            pairs, dropped = drop_unsafe_chosen(pairs)
        out.append(TestSet(obj, pairs, fp, dropped))
    return out


def prepare(cfg: PipelineConfig, objective: str, tokenizer) -> Prepared:
    rm: RewardModelConfig = getattr(cfg.stages.reward, objective)
    pairs, counts, fps = select_training_pairs(rm, seed=rm.seed)
    rows, counts["dropped_too_long"] = tokenize_pairs(tokenizer, pairs, rm.margin, rm.max_length)
    counts["train_pairs"] = len(rows)
    if not rows:
        raise DataError(f"all {len(pairs)} training pairs are longer than max_length={rm.max_length} tokens; "
                        "raise stages.reward.<objective>.max_length")
    tests = load_test_sets(cfg, objective)
    for t in tests:
        fps[f"eval_{t.objective}"] = t.fingerprint
        counts[f"eval_{t.objective}_pairs"] = len(t.pairs)
        if t.dropped_unsafe_chosen:
            counts[f"eval_{t.objective}_dropped_unsafe_chosen"] = t.dropped_unsafe_chosen
    log.info("reward-%s data: %s", objective, ", ".join(f"{k}={v}" for k, v in counts.items()))
    return Prepared(rows, counts, fps, tests)


# ---- setup: model -------------------------------------------------------------------------------------

def load_init_model(init: Artifact, rm: RewardModelConfig, precision: str):
    """The init checkpoint with a fresh scalar head (num_labels=1) and pad_token_id set."""
    from transformers import AutoModelForSequenceClassification, set_seed
    from transformers.utils import logging as hf_logging

    from camelid.models import hub_errors, load_tokenizer, torch_dtype

    tokenizer = load_tokenizer(init)
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
    if rm.mode != "lora":
        return None
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_CLS, r=rm.lora.r, lora_alpha=rm.lora.alpha,
                      lora_dropout=rm.lora.dropout, target_modules=rm.lora.target_modules,
                      modules_to_save=["score"])


# ---- train --------------------------------------------------------------------------------------------

def build_trainer(rm: RewardModelConfig, model, tokenizer, rows: list[dict], out_dir: Path, precision: str,
                  use_cpu: bool):
    from datasets import Dataset
    from trl import RewardConfig

    from camelid.batching import GPU_PAD_MULTIPLE
    from camelid.reward.trainer import CamelidRewardTrainer, PreferenceCollator

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
    return CamelidRewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, data_collator=collator,
                                peft_config=peft_config(rm), aux_safety_weight=rm.aux_safety_loss)


def train(trainer, out_dir: Path, resume: bool) -> dict:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out_dir)) if resume and out_dir.is_dir() else None
    if resume:
        log.info("resuming from %s", last) if last else log.info("--resume: no checkpoint in %s, starting fresh",
                                                                   out_dir)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    accs = [h["accuracy"] for h in history if "accuracy" in h and "loss" in h]
    if losses and not all(math.isfinite(v) for v in losses):
        raise DataError(f"training loss became {losses[-1]}: lower learning_rate or check the data")
    return {"steps": trainer.state.global_step, "seconds": round(time.perf_counter() - t0, 1),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "train_accuracy_last": accs[-1] if accs else None, "resumed_from": Path(last).name if last else None,
            "losses": losses}


# ---- evaluate -----------------------------------------------------------------------------------------

def score_pairs(model, tokenizer, pairs: list[PreferencePair], batch_size: int = 32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores of (chosen, rejected): two (N,) tensors."""
    ids = [tokenize(tokenizer, p.prompt, p.chosen) for p in pairs] + \
          [tokenize(tokenizer, p.prompt, p.rejected) for p in pairs]
    s = raw_scores(model, tokenizer, ids, batch_size=batch_size)
    return s[:len(pairs)], s[len(pairs):]


def evaluate(model, tokenizer, objective: str, rm: RewardModelConfig, tests: list[TestSet], fallback: list[dict],
             threshold: float) -> tuple[dict, dict, dict]:
    """(metrics, calibration, plot data): per-level accuracy per test set, calibration fitted on own test set."""
    metrics: dict = {"accuracy": {}}
    scored = {}
    for t in tests:
        if not t.pairs:
            continue
        rc, rr = score_pairs(model, tokenizer, t.pairs)
        scored[t.objective] = (t, rc, rr)
        metrics["accuracy"][t.objective] = accuracy_by_level(rc, rr, [p.rating for p in t.pairs])
    method = rm.calibration if rm.calibration != "auto" else ("threshold" if objective == "safety" else "center")
    own = scored.get(objective)
    if own is not None:
        t, rc, rr = own
        raw = torch.cat([rc, rr])
        labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
    else:  # no held-out set: centre on training scores (labels from the rows)
        sample = fallback[:256]
        raw = raw_scores(model, tokenizer, [r["chosen_ids"] for r in sample] + [r["rejected_ids"] for r in sample])
        labels = [None] * len(raw)
        method = "center" if method in ("logistic", "threshold") else method
    cal = calibration.fit(raw, labels, method, threshold)
    cal["fitted_on"] = f"{objective} held-out responses" if own is not None else "training responses (no eval_data)"
    metrics["calibration"] = {**cal, **calibration.threshold_report(raw, cal, threshold)}
    safety = scored.get("safety")
    if objective == "safety" and safety is not None:
        t, rc, rr = safety
        labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
        metrics["unsafe_detection"] = unsafe_detection(calibration.apply(torch.cat([rc, rr]), cal), labels, threshold)
    plot = {"scored": scored, "calibration": cal, "threshold": threshold}
    return metrics, cal, plot


def save_histogram(path: Path, objective: str, plot: dict) -> bool:
    """Calibrated score histograms: chosen vs rejected, and safe vs unsafe with PPO's threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored, cal, thr = plot["scored"], plot["calibration"], plot["threshold"]
    if objective not in scored:
        return False
    t, rc, rr = scored[objective]
    c, r = calibration.apply(rc, cal), calibration.apply(rr, cal)
    resp = torch.cat([c, r])
    labels = [p.chosen_safe for p in t.pairs] + [p.rejected_safe for p in t.pairs]
    x_thr = math.log(thr / (1 - thr))
    bins = torch.linspace(float(resp.min()), float(resp.max()) + 1e-6, 41).tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist(c.tolist(), bins=bins, alpha=0.6, label=f"chosen (n={len(c)})")
    axes[0].hist(r.tolist(), bins=bins, alpha=0.6, label=f"rejected (n={len(r)})")
    axes[0].set_title(f"rm-{objective} on {objective} held-out: chosen vs rejected")
    safe = [s for s, lab in zip(resp.tolist(), labels, strict=True) if lab is True]
    unsafe = [s for s, lab in zip(resp.tolist(), labels, strict=True) if lab is False]
    axes[1].hist(safe, bins=bins, alpha=0.6, label=f"safe (n={len(safe)})", color="tab:green")
    axes[1].hist(unsafe, bins=bins, alpha=0.6, label=f"unsafe (n={len(unsafe)})", color="tab:red")
    axes[1].set_title("by response safety label")
    for ax in axes:
        ax.axvline(x_thr, color="k", linestyle="--", label=f"sigmoid = {thr} (x = {x_thr:.2f})")
        ax.set_xlabel(f"calibrated score ({cal['method']})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def table8_rows(objective: str, ref: str, metrics: dict, registry: Registry, cfg: PipelineConfig) -> list[list]:
    """Rows (test set, RM, accuracy): this RM's, then the other RM's from its latest manifest if it exists."""
    rows = [[obj, ref, acc] for obj, acc in metrics["accuracy"].items()]
    other = getattr(cfg.stages.reward, other_objective(objective)).output
    if registry.versions(other):
        art = registry.resolve(other)
        for obj, acc in art.manifest.get("metrics", {}).get("eval", {}).get("accuracy", {}).items():
            rows.append([obj, art.ref, acc])
    return sorted(rows, key=lambda r: (r[0] != "helpfulness", r[1]))


# ---- the recipe ---------------------------------------------------------------------------------------

def run(cfg: PipelineConfig, registry: Registry, *, objective: str, resume: bool = False) -> Artifact:
    """Train, evaluate and publish the ``objective`` reward model (helpfulness | safety)."""
    from transformers import AutoModelForSequenceClassification

    from camelid.init_cmd import ensure_base
    from camelid.models import (
        count_parameters,
        device_for,
        gather_full_model,
        is_sharded,
        pick_precision,
        process_state,
        resolve_model,
    )
    from camelid.stages import job_for, run_dir

    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}: use helpfulness or safety")
    state = process_state(cfg.device)
    t_start = time.perf_counter()
    job = job_for(cfg, f"reward-{objective}")
    rm: RewardModelConfig = getattr(cfg.stages.reward, objective)
    if state.is_main_process:
        ensure_base(cfg, registry, rm.init)
    state.wait_for_everyone()
    init = resolve_model(rm.init, registry)
    if not init.external and init.kind not in INIT_KINDS:
        raise ConfigError(f"init {init.ref} is a {init.kind} artifact; a reward model starts from a model "
                          f"({', '.join(INIT_KINDS)})")
    device = device_for(cfg.device)
    precision = pick_precision(rm.precision, device)
    log.info("reward-%s: init %s, margin %s, precision %s, %d process(es)", objective, init.ref, rm.margin,
             precision, state.num_processes)

    model, tokenizer = load_init_model(init, rm, precision)
    data = prepare(cfg, objective, tokenizer)
    out_dir = run_dir(cfg, job, {"init": init})
    if not resume and out_dir.exists() and state.is_main_process:
        shutil.rmtree(out_dir)  # a fresh run must not pick up a stale checkpoint later with --resume
    state.wait_for_everyone()

    trainer = build_trainer(rm, model, tokenizer, data.rows, out_dir, precision, use_cpu=device.type == "cpu")
    if rm.mode == "lora" and is_sharded(trainer):
        raise ConfigError(f"stages.reward.{objective}.mode=lora under FSDP / DeepSpeed ZeRO-3 is not supported: "
                          "launch LoRA runs with configs/ddp.yaml or configs/deepspeed_zero2.yaml")
    train_stats = train(trainer, out_dir, resume)
    if train_stats["loss_first"] is None:  # fewer steps than logging_steps: no loss was logged
        log.info("trained %d steps in %.0fs (no loss logged: fewer steps than logging_steps)", train_stats["steps"],
                 train_stats["seconds"])
    else:
        log.info("trained %d steps in %.0fs: loss %.4f -> %.4f", train_stats["steps"], train_stats["seconds"],
                 train_stats["loss_first"], train_stats["loss_last"])
    # Sharded weights (FSDP, ZeRO-3) are gathered into one plain model on the main process (a collective).
    trained = gather_full_model(trainer, AutoModelForSequenceClassification)
    if rm.mode == "lora":
        trained = trained.merge_and_unload() if trained is not None else None
    state.wait_for_everyone()
    if not state.is_main_process:
        state.wait_for_everyone()  # the main process evaluates and publishes
        return registry.resolve(rm.output)

    threshold = cfg.stages.ppo.safety_threshold
    eval_metrics, cal, plot = evaluate(trained, tokenizer, objective, rm, data.test_sets, data.rows, threshold)
    metrics = {"data": data.counts, "train": train_stats, "eval": eval_metrics,
               "parameters": count_parameters(trained), "seconds": None}
    with registry.publish(rm.output, "reward", config=job.section, inputs={"init": init},
                          data_fingerprints=data.fingerprints) as pub:
        trained.config.pad_token_id = tokenizer.pad_token_id
        trained.save_pretrained(pub.dir / "model", safe_serialization=True)
        tokenizer.save_pretrained(pub.dir / "model")
        calibration.save(cal, pub.dir)
        save_histogram(pub.dir / "scores.png", objective, plot)
        table = table8_rows(objective, f"rm-{objective} (this run)", eval_metrics, registry, cfg)
        metrics["table8"] = table
        metrics["seconds"] = round(time.perf_counter() - t_start, 1)
        pub.metrics.update(metrics)
    _report(pub.artifact, objective, metrics, table)
    state.wait_for_everyone()
    return pub.artifact


def _report(art: Artifact, objective: str, metrics: dict, table: list[list]) -> None:
    if table:
        log.info("accuracy per rating level (Llama 2 Table 8 style):\n%s", format_table8(table))
    c = metrics["eval"]["calibration"]
    log.info("calibration %s: offset %.3f, temperature %.3f; sigmoid=%.2f falls at raw score %.3f, %.1f%% of "
             "held-out responses below it", c["method"], c["offset"], c["temperature"], c["threshold"],
             c["raw_score_at_threshold"], 100 * c["share_below"])
    u = metrics["eval"].get("unsafe_detection")
    if u:
        log.info("unsafe at sigmoid(score) < %.2f: precision %.3f, recall %.3f (%d unsafe of %d responses)",
                 u["threshold"], u["precision"], u["recall"], u["n_unsafe"], u["n"])
    log.info("published %s (%.0fs)", art.ref, metrics["seconds"])
