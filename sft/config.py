"""Typed config of the SFT stage (`stages.sft` in pipelines.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from camelid.data.spec import DataSpec
from camelid.training.settings import LoraSettings, TrainerSettings


class LoraConfig(LoraSettings):
    quantize_4bit: bool = Field(False, description="QLoRA: load the base in 4-bit (needs bitsandbytes and a GPU).")


class SFTConfig(TrainerSettings):

    model: str = Field("base", description="Base model: registry ref (base, base@v2), local path, or hf:<id>.")
    output: str = Field("sft", description="Registry name to publish the SFT model under.")
    data: DataSpec | list[DataSpec] = Field(
        default_factory=lambda: DataSpec(format="toy", split="train", n=27540),
        description="Training conversations: one data spec or a weighted list (mixture).")
    eval_data: DataSpec | list[DataSpec] | None = Field(
        default_factory=lambda: DataSpec(format="toy", split="heldout", n=500),
        description="Held-out conversations for the eval loss (null to skip).")
    eval_prompts: DataSpec | None = Field(
        default_factory=lambda: DataSpec(format="toy", split="eval", n=200),
        description="Held-out prompts answered greedily after training and scored (toy world: by the oracle).")
    self_distill: DataSpec | list[DataSpec] | None = Field(
        None, description="Prompts the starting model answers itself (greedy, its own chat template); its answers, "
        "cleaned (refusals and empty answers dropped, cut-off ones trimmed to whole sentences), join the training "
        "data. Keeps what the model knew on ordinary and safe prompts (camelid.sft.distill). null: none.")
    self_distill_max_new_tokens: int = Field(64, gt=0, description="Longest self-distilled answer in tokens.")
    chat_template: str = Field("llama2", description="'llama2', 'tokenizer' (the tokenizer's own) or a jinja string.")
    mode: Literal["full", "lora"] = Field("full", description="Full fine-tune or LoRA adapters (peft).")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA settings (mode: lora).")
    max_length: int = Field(256, gt=8, description="Max tokens per example (after the chat template).")
    too_long: Literal["truncate", "drop"] = Field("truncate", description="What to do with longer examples.")
    packing: bool = Field(False, description="Pack examples into rows without cross-attention (padding-free).")
    group_by_length: bool = Field(
        True, description="Batch examples of similar length together (transformers' LengthGroupedSampler): less "
        "padding, same data per epoch. Ignored with packing.")
    pad_to_multiple_of: int | None = Field(
        None, gt=0, description="Pad each batch's length to a multiple of this (null: on GPUs 64, or the whole "
        "batch_size x max_length row when packing; none on CPU). On GPUs every new batch shape makes cuDNN "
        "attention build a new plan (or flex_attention recompile); a few shapes are built once and reused.")
    epochs: float = Field(2.0, gt=0, description="Passes over the training data (Llama 2: 2).")
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate (Llama 2: 2e-5).")
    save_steps: int = Field(200, gt=0, description="Checkpoint every N steps into the run folder (for --resume).")
    save_total_limit: int = Field(2, gt=0, description="Keep only the newest N checkpoints in the run folder.")
    eval_steps: int = Field(0, ge=0, description="Held-out loss every N steps (0: only before and after training).")
    max_new_tokens: int = Field(64, gt=0, description="Generation length for the held-out prompt evaluation.")
    opening_weight: float = Field(
        1.0, ge=1.0, description="Training-loss weight of each answer's first `opening_tokens` tokens, where a chat "
        "model decides to refuse or to help (1: plain per-token loss). Safety alignment sits mostly in an answer's "
        "first tokens (Qi et al. 2024); on SmolLM2 a weight of 10 on the first token ordered XSTest's unsafe "
        "prompts above its safe ones better than plain SFT did (docs/experiments/smollm2.md). The eval loss stays "
        "plain.")
    opening_tokens: int = Field(1, gt=0, description="How many of each answer's first tokens `opening_weight` "
                                "weights.")
