"""Typed config of the reward stage (`stages.reward.helpfulness` / `stages.reward.safety`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from camelid.data.spec import DataSpec
from camelid.sft.config import LoraConfig
from camelid.training.settings import TrainerSettings

OBJECTIVES = ("helpfulness", "safety")  # one reward model each
Objective = Literal["helpfulness", "safety"]


class RewardModelConfig(TrainerSettings):

    init: str = Field("sft", description="Model to start from (Llama 2: the SFT checkpoint): registry ref, path or hf:<id>.")
    output: str = Field(..., description="Registry name to publish under (rm-helpfulness / rm-safety).")
    data: DataSpec | list[DataSpec] = Field(..., description="Training preference pairs.")
    eval_data: DataSpec | list[DataSpec] | None = Field(None, description="Held-out pairs for per-rating accuracy.")
    mix_data: DataSpec | list[DataSpec] | None = Field(
        None, description="The other objective's pairs, mixed in at mix_share (Llama 2 mixed both).")
    mix_share: float = Field(0.0, ge=0, lt=1, description="Share of the training set drawn from mix_data.")
    drop_unsafe_chosen: bool = Field(
        False, description="Drop pairs whose chosen answer is unsafe while the rejected is safe (safety RM rule).")
    margin: Literal["none", "small", "large"] = Field(
        "small", description="Llama 2 margin table: small (1, 2/3, 1/3, 0) or large (3, 2, 1, 0) by rating.")
    aux_safety_loss: float = Field(0.0, ge=0, description="Weight of the auxiliary safe/unsafe loss (0: off).")
    center_rewards_coefficient: float | None = Field(
        0.01, description="Push scores towards zero mean so sigmoid(score) is meaningful for PPO's 0.15 rule.")
    calibration: Literal["auto", "threshold", "logistic", "center", "none"] = Field(
        "auto", description="Score calibration fitted on eval_data, stored in calibration.json and applied by scoring: "
        "threshold (Platt temperature, offset putting sigmoid = PPO's safety_threshold at the best unsafe/safe cut), "
        "logistic (plain Platt fit of the safe label), center (subtract the mean score), none; "
        "auto: threshold for the safety RM, center for helpfulness.")
    mode: Literal["full", "lora"] = Field("full", description="Full fine-tune or LoRA.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA settings (mode: lora); the score head "
                             "is trained in full and adapters are merged before publishing.")
    max_length: int = Field(256, gt=8, description="Max tokens of prompt+answer; longer pairs are dropped and counted.")
    epochs: float = Field(1.0, gt=0, description="Passes over the data (Llama 2: 1).")
    save_steps: int = Field(200, gt=0, description="Checkpoint every N steps.")
    learning_rate: float = Field(1e-5, gt=0, description="Peak LR (Llama 2: 1e-5 for 70B, 5e-6... scaled).")
    batch_size: int = Field(8, gt=0, description="Per-device batch size (pairs).")
    group_by_length: bool = Field(
        False, description="Batch pairs of similar length together: 2.4x the pairs/s on the toy world (padding 48% "
        "-> 13%), but the toy safety RM scored 0.02 lower on held-out pairs in each of 3 seeds, so off by "
        "default. The order is seeded per epoch, so --resume replays it.")
    packing: bool | Literal["auto"] = Field(
        "auto", description="Pack each batch's chosen and rejected answers into rows (positions restart per answer, "
        "attention stays within it) instead of padding them to one width: the same batches and scores, fewer "
        "slots (bench/RESULTS.md: 1.3x the pairs/s on SmolLM2, CPU). auto: on a CPU; off on GPUs, where it is "
        "unmeasured and every new (rows, width) shape costs a cuDNN attention plan. Off under FSDP / ZeRO-3, where "
        "the score head is sharded.")
    activation_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, about a third more compute "
        "(TRL's RewardConfig turns it on by default; camelid leaves it to you).")


def _default_rm(objective: str) -> RewardModelConfig:
    other = "safety" if objective == "helpfulness" else "helpfulness"
    return RewardModelConfig(
        output=f"rm-{objective}",
        data=DataSpec(format="toy", objective=objective, split="train"),
        eval_data=DataSpec(format="toy", objective=objective, split="heldout", n=1000),
        mix_data=DataSpec(format="toy", objective=other, split="train") if objective == "safety" else None,
        mix_share=0.1 if objective == "safety" else 0.0,
        drop_unsafe_chosen=objective == "safety",
    )


class RewardStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    objectives: list[Objective] = Field(
        default_factory=lambda: ["helpfulness", "safety"], description="Which RMs `camelid reward` trains.")
    helpfulness: RewardModelConfig = Field(default_factory=lambda: _default_rm("helpfulness"),
                                           description="The helpfulness reward model.")
    safety: RewardModelConfig = Field(default_factory=lambda: _default_rm("safety"),
                                      description="The safety reward model.")
