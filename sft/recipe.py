"""`camelid sft`: Llama 2's supervised fine-tuning recipe on TRL's SFTTrainer.

    setup()    resolve the base ref, load data and model, count/drop bad examples, build the trainer
    train()    SFTTrainer.train() (resumes from the newest checkpoint in the run folder with --resume)
    evaluate() held-out loss; greedy answers to held-out prompts, scored by the toy world's oracle
    publish()  publish sft/vN (model/, plus adapter/ for LoRA) with metrics; rank 0 only, atomically

Llama 2 (Touvron et al. 2023, §3.1): loss on answer tokens only, examples packed into rows (here
padding-free, so attention never crosses an example boundary), cosine LR 2e-5, weight decay 0.1,
2 epochs. Profiles set the values; tiny CPU models need a far larger LR.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from camelid.errors import CamelidError, ConfigError
from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.sft.config import SFTConfig
from camelid.sft.data import PreparedData, prepare
from camelid.sft.evaluate import held_out_answers, write_generations
from camelid.stage import Recipe, StageContext

log = get_logger("sft")
EVAL_BEFORE_FILE = "eval_before.json"  # in the run folder: a resumed run publishes it too


def _quiet_library_progress_bars() -> None:
    """Keep the log readable: the training bar and our log lines stay; per-map and per-shard bars go."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


class SFTRecipe(Recipe):
    """The SFT job (and rs's fine-tune): setup -> train -> evaluate -> publish."""

    def __init__(self, ctx: StageContext):
        self.ctx, self.runtime = ctx, ctx.job.runtime  # device, remote code, attention kernel
        self.sc: SFTConfig = ctx.section  # stages.sft, or another SFT-shaped section (e.g. rejection sampling's)
        self.job = ctx.job
        self.state = ctx.state  # one process, or this rank of an accelerate/torchrun group
        self.base = ctx.inputs["model"]
        self.run_dir = ctx.run_dir
        self.metrics: dict = {}
        self.fingerprints: dict[str, str] = {}
        self.generations: list[dict] = []

    # ---- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        from camelid.data.load import load_records
        from camelid.models import count_parameters, device_for, pick_precision

        _quiet_library_progress_bars()
        sc = self.sc
        if sc.mode == "full" and sc.lora.quantize_4bit:
            raise ConfigError("lora.quantize_4bit (QLoRA) needs mode: lora")
        self.device = device_for(self.runtime.device)
        self.precision = pick_precision(sc.precision, self.device)

        train = load_records(sc.data, "sft")
        self.fingerprints["train"] = train.fingerprint
        log.info("train data %s", train.summary())
        heldout = None
        if sc.eval_data is not None:
            heldout = load_records(sc.eval_data, "sft")
            self.fingerprints["eval"] = heldout.fingerprint

        model, self.tokenizer = self._load_model()
        if sc.self_distill is not None:
            from camelid.sft.distill import self_distill_examples

            teacher = self.ctx.inputs.get("self_distill_model")
            if teacher is None:  # the model being fine-tuned answers, before its first step
                own, self.metrics["self_distill"], self.fingerprints["self_distill"] = self_distill_examples(
                    model, self.tokenizer, self.base, sc.self_distill, max_new_tokens=sc.self_distill_max_new_tokens)
            else:  # another model (a second pass: the first pass's starting model), loaded for this only
                own, self.metrics["self_distill"], self.fingerprints["self_distill"] = self._distill_from(teacher)
            train.records = [*train.records, *own]
        self.train_data = prepare(train.records, self.tokenizer, max_length=sc.max_length,
                                  too_long=sc.too_long, what="train data")
        log.info("train examples: %s", self.train_data.summary())
        self.eval_data: PreparedData | None = None
        if heldout is not None:
            self.eval_data = prepare(heldout.records, self.tokenizer, max_length=sc.max_length,
                                     too_long=sc.too_long, what="eval data")
        self.metrics["data"] = {"train": self.train_data.stats(), "source_dropped": dict(train.dropped)}
        if self.eval_data is not None:
            self.metrics["data"]["eval"] = self.eval_data.stats()

        self.trainer = self._build_trainer(model)
        self.model = self.trainer.model
        if self.sharded and sc.mode == "lora":
            raise ConfigError(f"{self.job.where}.mode=lora under FSDP / DeepSpeed ZeRO-3 is not supported (the adapters "
                               "would have to be merged into sharded weights): launch LoRA runs with "
                               "configs/ddp.yaml or configs/deepspeed_zero2.yaml")
        self.metrics["parameters"] = count_parameters(self.model)
        self.metrics["trainable_parameters"] = count_parameters(self.model, trainable_only=True)
        log.info("%s from %s: %s, %.2fM parameters (%.2fM trainable), %s on %s x%d, run folder %s",
                 sc.mode, self.base.ref, type(self.model).__name__, self.metrics["parameters"] / 1e6,
                 self.metrics["trainable_parameters"] / 1e6, self.precision, self.device.type,
                 self.state.num_processes, self.run_dir)

    def _distill_from(self, teacher):
        """Self-distillation answers from ``teacher`` (another model than the one trained), with its own tokenizer and
        this section's chat template. It is loaded only on a cache miss and freed before training."""
        import gc

        from camelid.models import load_causal_lm, load_tokenizer
        from camelid.sft.distill import self_distill_examples

        def load():
            return load_causal_lm(teacher, precision="bf16" if self.precision == "bf16" else "fp32",
                                  device=self.runtime.device, trust_remote_code=self.runtime.trust_remote_code,
                                  chat_template=self._template())[0]

        tokenizer = load_tokenizer(teacher, chat_template=self._template(),
                                   trust_remote_code=self.runtime.trust_remote_code)
        out = self_distill_examples(load, tokenizer, teacher, self.sc.self_distill,
                                    max_new_tokens=self.sc.self_distill_max_new_tokens)
        gc.collect()
        return out

    def _load_model(self):
        from camelid.models import load_causal_lm, load_tokenizer

        sc = self.sc
        if sc.mode == "lora" and sc.lora.quantize_4bit:
            return self._load_4bit(), load_tokenizer(self.base, chat_template=self._template(),
                                                     trust_remote_code=self.runtime.trust_remote_code)
        # fp16 trains with fp32 master weights (AMP); bf16 trains in bf16 weights, as TRL's scripts do.
        return load_causal_lm(self.base, precision="bf16" if self.precision == "bf16" else "fp32",
                              device=self.runtime.device, trust_remote_code=self.runtime.trust_remote_code,
                              chat_template=self._template(), attn_implementation=self._attention())

    def _pad_multiple(self) -> int | None:
        """What batch lengths are padded to a multiple of: stages.sft.pad_to_multiple_of, else by hardware.

        GPUs, unpacked: 64 (a few shapes; each new one costs a cuDNN attention plan, measured on an H100).
        GPUs, packed: the whole flattened row, batch_size x max_length, so every step has the same shape
        and compiled kernels (flex_attention) are built once; the tail is padding that no token attends to
        and no loss counts. CPU: none.
        """
        sc = self.sc
        if sc.pad_to_multiple_of or self.device.type != "cuda":
            return sc.pad_to_multiple_of
        from camelid.training.batching import GPU_PAD_MULTIPLE

        return sc.batch_size * sc.max_length if sc.packing else GPU_PAD_MULTIPLE

    def _attention(self) -> str | None:
        """The configured kernel; for packing on a GPU with none configured, one that handles packed rows.

        Padding-free packing flattens the batch into one row; under sdpa that row gets a full
        (tokens x tokens) mask, which ran out of an H100's 80 GB at 128 x 256 tokens. flash-attn reads the
        sequence boundaries instead; flex_attention (in torch) builds a block-sparse mask: 45.7% MFU for a
        0.8B model on an H100 (bench/RESULTS.md).
        """
        if self.runtime.attn_implementation or not self.sc.packing or self.device.type != "cuda":
            return self.runtime.attn_implementation
        import importlib.util

        kernel = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"
        log.info("packing on a GPU: attention kernel %s (set attn_implementation to choose another)", kernel)
        return kernel

    def _varlen_kernel(self) -> bool:
        """Whether the attention kernel reads packed sequences from one flattened row (TRL's padding-free
        collator); sdpa and eager get `RowPackedCollator`'s rows instead."""
        kernel = self._attention() or ""
        return kernel.startswith(("flash_attention", "flex_attention", "kernels-community"))

    def _template(self) -> str | None:
        # None keeps the tokenizer's own template ('tokenizer'); load_tokenizer falls back to llama2 if it has none.
        return None if self.sc.chat_template == "tokenizer" else self.sc.chat_template

    def _load_4bit(self):
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
            raise CamelidError("lora.quantize_4bit (QLoRA) needs the bitsandbytes package and a CUDA GPU; "
                               "install bitsandbytes on a GPU machine, or set stages.sft.lora.quantize_4bit=false")
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(
            self.base.model_path, quantization_config=quant, dtype=torch.bfloat16, use_safetensors=True,
            device_map={"": self.state.local_process_index}, trust_remote_code=self.runtime.trust_remote_code)
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=self.sc.activation_checkpointing)

    def _trl_args(self):
        from trl import SFTConfig as TRLConfig

        sc = self.sc
        has_eval = self.eval_data is not None
        return TRLConfig(
            output_dir=str(self.run_dir),
            # Llama 2 recipe. Loss on answers only: the datasets arrive tokenized with an answer mask
            # (camelid.sft.data, which also covers templates without {% generation %} markers), not as messages.
            assistant_only_loss=False,
            packing=sc.packing, packing_strategy="bfd",  # bfd = padding-free rows: no cross-example attention
            max_length=sc.max_length, truncation_mode="keep_start",
            # Length-grouped batches: on the toy world 52% of padded slots were padding with random batches, 9%
            # grouped (bench/RESULTS.md); packed rows are already dense, so grouping is only for unpacked runs.
            train_sampling_strategy="group_by_length" if sc.group_by_length and not sc.packing else "random",
            # Measured on an H100 (bench/RESULTS.md): unbucketed lengths made cuDNN attention rebuild its plan for
            # nearly every batch, ~1 s of CPU per step for a 0.8B model, so GPUs pad to a multiple of 64.
            pad_to_multiple_of=self._pad_multiple(),
            num_train_epochs=sc.epochs, max_steps=sc.max_steps,
            learning_rate=sc.learning_rate, lr_scheduler_type=sc.lr_scheduler, warmup_steps=sc.warmup_ratio,
            weight_decay=sc.weight_decay,
            per_device_train_batch_size=sc.batch_size, per_device_eval_batch_size=sc.batch_size,
            gradient_accumulation_steps=sc.grad_accum,
            # TRL defaults to bf16=True, which errors or crawls on CPU: precision comes from the hardware.
            bf16=self.precision == "bf16", fp16=self.precision == "fp16",
            use_cpu=self.device.type == "cpu",
            activation_checkpointing=sc.activation_checkpointing,
            # running like a job
            logging_steps=sc.logging_steps, logging_first_step=True,
            save_strategy="steps", save_steps=sc.save_steps, save_total_limit=sc.save_total_limit,
            eval_strategy="steps" if has_eval and sc.eval_steps else "no",
            eval_steps=sc.eval_steps or None,
            report_to=list(sc.report_to) or "none",
            run_name=f"{self.job.output}-{self.run_dir.name}",
            seed=sc.seed, data_seed=sc.seed,
            ddp_find_unused_parameters=False,
            dataloader_num_workers=0,
            trust_remote_code=self.runtime.trust_remote_code,
        )

    def _peft_config(self):
        return self.sc.lora.peft_config("CAUSAL_LM") if self.sc.mode == "lora" else None

    def _build_trainer(self, model):
        from transformers.trainer_callback import ProgressCallback

        from camelid.sft.batching import RowPackedCollator, SFTTrainerWithSeededGrouping
        from camelid.sft.progress import LogLines
        from camelid.training.callbacks import StopOnNonFiniteLoss

        trainer = SFTTrainerWithSeededGrouping(
            model=model, args=self._trl_args(), processing_class=self.tokenizer,
            train_dataset=self.train_data.dataset(),
            eval_dataset=self.eval_data.dataset() if self.eval_data is not None else None,
            peft_config=self._peft_config(),
            opening_weight=self.sc.opening_weight, opening_tokens=self.sc.opening_tokens,
        )
        if self.sc.packing and not self._varlen_kernel():
            # TRL refuses a custom collator with packing; its own would flatten the batch into one row.
            trainer.data_collator = RowPackedCollator(pad_token_id=self.tokenizer.pad_token_id,
                                                      pad_to_multiple_of=self.sc.pad_to_multiple_of)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LogLines())
        trainer.add_callback(StopOnNonFiniteLoss("SFT", f"{self.job.where}.learning_rate"))
        return trainer

    # ---- train ------------------------------------------------------------------------------------
    def train(self) -> None:
        trainer, checkpoint = self.trainer, self.ctx.checkpoint
        before = self.run_dir / EVAL_BEFORE_FILE
        if self.eval_data is not None and checkpoint is None and self.trainer.is_fsdp_enabled:
            # FSDP2 shards the model and its optimizer together when training starts; evaluating first would
            # shard the model alone, which accelerate refuses.
            log.info("FSDP: no held-out loss before training (the model is sharded when training starts)")
        elif self.eval_data is not None and checkpoint is None:
            self.metrics["eval_loss_before"] = self._eval_loss()
            log.info("held-out loss before training: %.4f", self.metrics["eval_loss_before"])
            if self.state.is_main_process:  # a resumed run publishes it too
                before.write_text(json.dumps({"eval_loss_before": self.metrics["eval_loss_before"]}))
        elif checkpoint is not None and before.is_file():
            self.metrics.update(json.loads(before.read_text()))
        prior = _prior_progress(checkpoint)  # read now: checkpoint rotation may delete it
        t0 = time.perf_counter()
        out = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        wall = time.perf_counter() - t0
        self.metrics.update(self._train_metrics(out, prior, wall))
        log.info("trained %d steps in %.0fs (%s tok/s%s); train loss %.4f", trainer.state.global_step, wall,
                 self.metrics["tokens_per_second"],
                 f" per process x{self.state.num_processes}" if self.state.num_processes > 1 else "",
                 self.metrics["train_loss"])

    def _train_metrics(self, out, prior: dict, wall: float) -> dict:
        """Loss and throughput of the whole run, a resumed one included.

        On resume TRL restarts its token count at 0 and transformers averages the loss over this session's steps
        only, so the session's numbers are combined with the checkpoint's (exact when save_steps is a multiple of
        logging_steps, as the checkpoint's log history then holds the loss of every step before it).
        """
        state, sc = self.trainer.state, self.sc
        history = state.log_history
        session = [h for h in history if h.get("step", 0) > prior["step"]]
        session_tokens = max([h.get("num_tokens", 0) for h in session], default=0)
        steps = max(state.global_step, 1)
        session_loss_sum = out.training_loss * (state.global_step - prior["step"])  # its mean over this session
        return {
            "train_loss": (prior["loss_sum"] + session_loss_sum) / steps,
            "train_loss_first": next((h["loss"] for h in history if "loss" in h), None),
            "train_loss_last": next((h["loss"] for h in reversed(history) if "loss" in h), None),
            "steps": state.global_step,
            "epochs": round(float(state.epoch or 0), 4),
            "train_seconds": round(wall, 1),
            "tokens_per_second": round(session_tokens / wall, 1) if wall > 0 else None,
            "train_tokens": prior["tokens"] + session_tokens if session_tokens or prior["tokens"] else None,
            "precision": self.precision,
            "packing": sc.packing,
            "batches": "packed" if sc.packing else ("grouped by length" if sc.group_by_length else "random"),
            "loss_curve": [[h["step"], round(h["loss"], 4)] for h in history if "loss" in h],
        }

    @property
    def sharded(self) -> bool:
        """Whether each process holds only a shard of the weights (FSDP, DeepSpeed ZeRO-3)."""
        from camelid.models import is_sharded

        return is_sharded(self.trainer)

    def _eval_loss(self) -> float:
        return float(self.trainer.evaluate()["eval_loss"])

    # ---- evaluate ---------------------------------------------------------------------------------
    def evaluate(self) -> None:
        sc = self.sc
        if self.eval_data is not None:
            self.metrics["eval_loss"] = self._eval_loss()  # every rank takes part (DDP gathers)
            self.metrics["eval_perplexity"] = math.exp(min(self.metrics["eval_loss"], 50))
            log.info("held-out loss after training: %.4f", self.metrics["eval_loss"])
        self.generations = held_out_answers(self.model, self.tokenizer, sc.eval_prompts,
                                            max_new_tokens=sc.max_new_tokens, sharded=self.sharded,
                                            is_main=self.state.is_main_process, metrics=self.metrics,
                                            fingerprints=self.fingerprints)

    # ---- publish ----------------------------------------------------------------------------------
    def publish(self) -> Artifact | None:
        """Publish on the main process (others return None). Nothing appears in the registry if this raises."""
        from transformers import AutoModelForCausalLM

        from camelid.models import gather_full_model, save_model

        # Sharded weights are gathered into one full model first: a collective, so every rank takes part.
        full = gather_full_model(self.trainer, AutoModelForCausalLM)
        if not self.state.is_main_process:
            return None
        with self.ctx.publish(data_fingerprints=self.fingerprints, metrics=self.metrics) as pub:
            if self.sc.mode == "lora":
                save_model(pub.dir, self.model, self.tokenizer, folder="adapter")
                full = self._merged_model(pub.dir / "adapter")
            save_model(pub.dir, full, self.tokenizer)
            write_generations(pub.dir, self.generations)
        return pub.artifact

    def _merged_model(self, adapter_dir: Path):
        """LoRA weights folded into the base: a plain model the next stages load like any other."""
        if not self.sc.lora.quantize_4bit:
            return self.model.merge_and_unload()
        # QLoRA: merge into a bf16 copy of the base, not into 4-bit weights.
        from peft import PeftModel

        from camelid.models import load_causal_lm

        base, _ = load_causal_lm(self.base, precision="bf16", device=self.runtime.device,
                                 trust_remote_code=self.runtime.trust_remote_code)
        return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()



def _prior_progress(checkpoint: Path | None) -> dict:
    """Step, token count and loss sum a checkpoint's log history holds (zeros for a fresh run)."""
    if checkpoint is None:
        return {"step": 0, "tokens": 0, "loss_sum": 0.0}
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    history = state.get("log_history", [])
    loss_sum, last = 0.0, 0
    for h in history:
        if "loss" in h:
            loss_sum += h["loss"] * (h["step"] - last)
            last = h["step"]
    return {"step": int(state.get("global_step", 0)), "tokens": max([h.get("num_tokens", 0) for h in history],
                                                                      default=0), "loss_sum": loss_sum}
