"""Typed config of the SFT stage (`stages.sft` in pipelines.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

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
    self_distill_model: str | None = Field(
        None, description="The model that answers the self-distillation prompts (registry ref / path / hf:<id>), "
        "with its own tokenizer and this section's chat_template. null: the model being fine-tuned. A second pass "
        "(second_pass.self_distill) sets it to the first pass's starting model, the one whose behaviour it keeps.")
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

    @model_serializer(mode="wrap")
    def _without_unset_teacher(self, handler):
        # Left out while null, so the config hash of every SFT-shaped section (sft, rs's fine-tune) is what it was
        # before the key existed: an up-to-date stage stays up to date.
        out = handler(self)
        if isinstance(out, dict) and out.get("self_distill_model", 0) is None:
            del out["self_distill_model"]
        return out

    @model_validator(mode="after")
    def _distill_model_needs_prompts(self):
        if self.self_distill_model is not None and self.self_distill is None:
            raise ValueError(f"self_distill_model is {self.self_distill_model!r} but self_distill is null: name the "
                             "prompts it should answer, or drop self_distill_model")
        return self


# The settings a second pass sets itself; every other one is the first pass's.
SECOND_PASS_OWN = ("epochs", "max_steps", "learning_rate", "opening_weight", "opening_tokens",
                   "self_distill_max_new_tokens")


class SFTSecondPass(BaseModel):
    """A second pass of the SFT stage: the first pass's model trained further on other data, as its own job.

    Curriculum-style fine-tunes end on a short pass over the data the model should follow most closely, at a lower
    rate. Here it publishes its own artifact, so the first pass stays in the registry and changing the second pass
    reruns only it. Settings it does not name (template, max_length, batch size, eval data, ...) are the first
    pass's. Its self-distillation (``self_distill``, none by default) asks the first pass's starting model, not the
    first pass's model: the behaviour to keep is the one from before any fine-tuning.
    """

    model_config = ConfigDict(extra="forbid")
    output: str = Field(..., description="Registry name of the second pass's model (the first pass publishes "
                        "stages.sft.output, which is this pass's starting model).")
    data: DataSpec | list[DataSpec] = Field(..., description="Its training conversations: one data spec or a "
                                            "weighted list (mixture).")
    epochs: float | None = Field(None, gt=0, description="Passes over its data (null: the first pass's).")
    max_steps: int | None = Field(None, description="Stop after this many steps (null: the first pass's).")
    learning_rate: float | None = Field(None, gt=0, description="Its peak learning rate (null: the first pass's).")
    opening_weight: float | None = Field(None, ge=1.0, description="Its opening_weight (null: the first pass's).")
    opening_tokens: int | None = Field(None, gt=0, description="Its opening_tokens (null: the first pass's).")
    self_distill: DataSpec | list[DataSpec] | None = Field(
        None, description="Prompts the first pass's starting model (stages.sft.model) answers itself, greedy; its "
        "cleaned answers join this pass's data (camelid.sft.distill). null: none (the first pass's self_distill "
        "is its own).")
    self_distill_max_new_tokens: int | None = Field(None, gt=0, description="Longest self-distilled answer in "
                                                    "tokens (null: the first pass's).")

    def section(self, first: SFTConfig) -> SFTConfig:
        """The SFT section this pass trains with: the first pass's, from its output, with this pass's settings."""
        values = first.model_dump(exclude={"second_pass"})
        values.update(model=first.output, output=self.output, data=self.data, self_distill=self.self_distill,
                      self_distill_model=first.model if self.self_distill is not None else None)
        values.update({k: getattr(self, k) for k in SECOND_PASS_OWN if getattr(self, k) is not None})
        return SFTConfig.model_validate(values)


class SFTStageConfig(SFTConfig):
    """`stages.sft`: one SFT pass, and optionally a second from its model (`second_pass`)."""

    second_pass: SFTSecondPass | None = Field(
        None, description="A second SFT job from this one's model, on other data (e.g. a short, low-rate pass over "
        "the real-wording rows alone): {output, data, and optionally epochs, max_steps, learning_rate, "
        "opening_weight, opening_tokens, self_distill, self_distill_max_new_tokens}; its other settings are this "
        "section's. null: one pass.")

    @model_validator(mode="after")
    def _two_names(self):
        if self.second_pass is not None and self.second_pass.output == self.output:
            raise ValueError(f"second_pass.output is {self.output!r}, the first pass's output too: give the second "
                             "pass its own registry name (the first pass's model is its starting point)")
        return self
