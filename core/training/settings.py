"""Settings blocks several stages share: LoRA, the optimiser and run housekeeping, TRL trainer settings.

Stages subclass these and override a field only to change its default or help (e.g. SFT's 2 epochs at
2e-5 vs the reward model's 1 epoch at 1e-5, PPO's LoRA dropout of 0).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling alpha.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA path.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list like [q_proj, v_proj].")

    def peft_config(self, task_type: str, modules_to_save: list[str] | None = None):
        """These settings as peft's LoraConfig for ``task_type`` (CAUSAL_LM or SEQ_CLS): the one place every
        stage's LoRA is set up. ``modules_to_save``: whole modules trained beside the adapter (an RM's head)."""
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type=task_type, modules_to_save=modules_to_save)


class OptimSettings(BaseModel):
    """What every training stage has: LR, weight decay, precision, checkpointing, trackers, seed."""

    model_config = ConfigDict(extra="forbid")
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (Llama 2: 0.1).")
    precision: Precision = Field("auto", description="auto: bf16 on GPUs that support it, fp32 on CPU.")
    activation_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    report_to: list[str] = Field(default_factory=list, description="Trackers: tensorboard, wandb, mlflow.")
    seed: int = Field(0, description="Training seed.")


class TrainerSettings(OptimSettings):
    """The transformers Trainer block of the TRL-based stages (sft, reward)."""

    epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name (Llama 2: cosine).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of steps spent warming up.")
    batch_size: int = Field(8, gt=0, description="Per-device batch size.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    pad_to_multiple_of: int | None = Field(
        None, gt=0, description="Pad each batch's length to a multiple of this (null: 64 on GPUs, none on CPU): "
        "few distinct shapes, so cuDNN attention plans are built once.")
    logging_steps: int = Field(10, gt=0, description="Log every N steps.")
    save_steps: int = Field(200, gt=0, description="Checkpoint every N steps into the run folder (for --resume).")
