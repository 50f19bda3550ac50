"""Typed config of the DPO stage (`stages.dpo` in pipelines.yaml).

The pair settings (`data`, `mix_data`, `mix_share`, `drop_unsafe_chosen`) mean what they mean for the
safety reward model (camelid.reward.config): the pairs are chosen by the same code, so a profile can give
DPO exactly the pairs its reward models learn from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from camelid.data.records import RATINGS
from camelid.data.spec import DataSpec
from camelid.training.settings import LoraSettings, TrainerSettings

# TRL's DPO losses camelid offers: sigmoid is DPO (Rafailov et al. 2023), hinge is SLiC, ipo is IPO
# (Azar et al. 2023), robust is rDPO (Chowdhury et al. 2024, needs label_smoothing > 0).
LossType = Literal["sigmoid", "hinge", "ipo", "robust"]
# Losses in which a per-pair offset on the implicit reward difference is the Llama 2 margin (dpo/data.py).
MARGIN_LOSSES = ("sigmoid", "hinge")


class OwnAnswers(BaseModel):
    """A model's own greedy answers in place of one side of the training pairs (camelid.dpo.own)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Model that answers the pairs' prompts: registry ref, local path or hf:<id> "
                       "(e.g. the base model the SFT started from, which complies with harmful requests).")
    sides: list[Literal["rejected", "chosen"]] = Field(
        default_factory=lambda: ["rejected"], min_length=1,
        description="rejected: where the chosen answer is a refusal, the model's answer becomes the rejected one "
        "if it complies; chosen: where the rejected answer is a refusal, the model's answer becomes the chosen one "
        "if it helps (cleaned as self-distillation cleans it).")
    max_new_tokens: int = Field(48, gt=0, description="Longest answer in tokens (greedy).")


class DPOConfig(TrainerSettings):
    """DPO from a policy on preference pairs (TRL's DPOTrainer); the reference is the starting policy."""

    policy: str = Field("sft", description="Policy to start from and to stay close to (the reference): registry "
                        "ref (sft, ppo@v2), local path or hf:<id>.")
    output: str = Field("dpo", description="Registry name to publish the policy under.")
    data: DataSpec | list[DataSpec] = Field(
        default_factory=lambda: DataSpec(format="toy", objective="safety", split="train"),
        description="Training preference pairs: one spec or a weighted list (mixture). The safety reward model's "
        "`data`.")
    mix_data: DataSpec | list[DataSpec] | None = Field(
        default_factory=lambda: DataSpec(format="toy", objective="helpfulness", split="train"),
        description="The other objective's pairs, mixed in at mix_share (the safety reward model's `mix_data`).")
    mix_share: float = Field(
        0.5, ge=0, lt=1, description="Share of the training pairs drawn from mix_data (the safety RM uses 0.1: it "
        "only judges safety; a DPO policy learns both objectives from these pairs alone).")
    drop_unsafe_chosen: bool = Field(
        True, description="Drop pairs whose chosen answer is unsafe while the rejected one is safe (Llama 2's "
        "safety RM rule): the policy never learns that complying beats refusing.")
    own_answers: OwnAnswers | None = Field(
        None, description="Replace one side of `data`'s pairs (not mix_data's) by a model's own greedy answers: a "
        "compliance written by a real model as the rejected answer to a harmful request, where the generated "
        "pairs' compliant answers are templates the policy likely finds unlikely already (camelid.dpo.own). null: off.")
    min_rating: Literal[RATINGS] = Field(
        "negligibly_better", description="Keep only pairs rated at least this (Llama 2's levels, strongest first: "
        f"{', '.join(RATINGS)}). negligibly_better keeps all.")
    margin: Literal["none", "small", "large"] = Field(
        "none", description="Llama 2's reward-model margin table by rating, as an offset on DPO's implicit reward "
        "difference (ODPO): loss -log sigmoid(beta * (log-ratio chosen - log-ratio rejected) - m(rating)). "
        "small: 1, 2/3, 1/3, 0; large: 3, 2, 1, 0; none: plain DPO. sigmoid and hinge losses only.")
    eval_data: DataSpec | list[DataSpec] | None = Field(
        default_factory=lambda: DataSpec(format="toy", objective="safety", split="heldout", n=300),
        description="Held-out pairs: DPO loss, implicit-reward accuracy and margin after training (null to skip).")
    eval_prompts: DataSpec | None = Field(
        default_factory=lambda: DataSpec(format="toy", split="eval", n=200),
        description="Held-out prompts answered greedily after training and scored (toy world: by the oracle), "
        "as the sft stage does.")
    beta: float = Field(0.1, gt=0, description="KL strength: how far the policy may move from the reference "
                        "(DPO's beta; for ipo its tau).")
    loss_type: LossType = Field("sigmoid", description="sigmoid (DPO), hinge (SLiC), ipo, robust (rDPO).")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="robust: the assumed share of flipped labels.")
    mode: Literal["full", "lora"] = Field("full", description="Full fine-tune or LoRA adapters (peft); with LoRA "
                                          "the reference is the policy with its adapters off.")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA settings (mode: lora).")
    max_length: int = Field(256, gt=8, description="Max tokens of prompt + answer; longer pairs are dropped and "
                            "counted (not truncated: a cut answer would be trained as if it ended there).")
    learning_rate: float = Field(5e-7, gt=0, description="Peak learning rate (the DPO paper: 1e-6 with a warm-up "
                                 "for a 6B model; TRL's default 1e-6).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming up (the DPO paper: "
                                "150 steps).")
    save_total_limit: int = Field(2, gt=0, description="Keep only the newest N checkpoints in the run folder.")
    eval_steps: int = Field(0, ge=0, description="Held-out pair metrics every N steps (0: only after training).")
    max_new_tokens: int = Field(64, gt=0, description="Generation length for the held-out prompt evaluation.")

    @model_validator(mode="after")
    def _loss_settings(self) -> DPOConfig:
        if self.margin != "none" and self.loss_type not in MARGIN_LOSSES:
            raise ValueError(f"margin={self.margin!r} needs loss_type {' or '.join(MARGIN_LOSSES)} (got "
                             f"{self.loss_type!r}): ipo and robust have no reward-difference offset; set margin: none")
        if self.loss_type == "robust" and self.label_smoothing == 0:
            raise ValueError("loss_type robust needs label_smoothing > 0 (the assumed share of flipped labels, e.g. "
                             "0.1); with 0 it is plain DPO: use loss_type sigmoid")
        return self
