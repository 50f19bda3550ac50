"""Typed config of the rejection-sampling stage (`stages.rs` in pipelines.yaml).

The sampling settings sit at the top of the section; `finetune:` is an SFT-shaped section (a subclass of
camelid.sft.config.SFTConfig) so the SFT recipe trains it unchanged. Its model, output and data are not
free settings: they are the policy, `output` and the kept answers, filled in here so `camelid config`
shows what the fine-tune will really read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from camelid.data.spec import DataSpec
from camelid.sft.config import SFTConfig
from camelid.training.settings import Precision

KEPT_FORMAT = "messages"  # the kept answers are chat conversations: prompt messages + the best answer


class RSFinetuneConfig(SFTConfig):
    """Fine-tuning the policy on the kept answers: the SFT recipe's settings (loss on answers only)."""

    chat_template: str = Field(
        "tokenizer", description="'tokenizer' (default: the policy's own template, the one it was trained and "
        "sampled with), 'llama2' or a jinja string.")
    epochs: float = Field(1.0, gt=0, description="Passes over the kept answers.")
    eval_data: DataSpec | list[DataSpec] | None = Field(
        default_factory=lambda: DataSpec(format="toy", split="heldout", n=500),
        description="Held-out conversations for the eval loss (null to skip).")


class RSConfig(BaseModel):
    """Rejection sampling: K answers per prompt from the policy, the best by the combined reward, fine-tune."""

    model_config = ConfigDict(extra="forbid")
    policy: str = Field("sft", description="Policy to sample from and fine-tune (registry ref / path / hf:<id>).")
    reward_helpfulness: str = Field("rm-helpfulness", description="Helpfulness reward model ref.")
    reward_safety: str = Field("rm-safety", description="Safety reward model ref.")
    prompts: DataSpec | list[DataSpec] = Field(
        default_factory=lambda: DataSpec(format="toy", split="ppo", n=1024),
        description="Prompts to sample for, one spec or a weighted mixture (e.g. toy prompts plus a real-wording "
        "safety set); each carries is_safety (the combined reward).")
    k: int = Field(8, ge=1, description="Samples per prompt (Llama 2: up to tens; the K curve shows the gain).")
    temperature: float = Field(
        1.0, gt=0, description="Sampling temperature (Llama 2 raised it from round to round: more diverse samples "
        "make best-of-K better). Greedy (0) would give K equal answers, so it is not allowed.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_new_tokens: int = Field(64, gt=0, description="Max answer length.")
    margin: float | None = Field(
        None, ge=0, description="Keep a prompt's best answer only if its combined reward beats the policy's "
        "current (greedy) answer by more than this; null: keep every prompt's best (no greedy pass).")
    below_margin: Literal["drop", "current"] = Field(
        "drop", description="With a margin, what a prompt whose best answer does not beat the current (greedy) one "
        "by it adds to the fine-tune: drop (nothing) or current (the greedy answer, so the fine-tune rehearses what "
        "the policy already does well while it learns the better answers; measured on SmolLM2 (docs/experiments/smollm2.md): the "
        "better answers alone, help on benign-but-scary prompts, taught it to 'help' with harmful ones too).")
    min_reward: float | None = Field(
        None, description="Train only on answers whose combined reward is at least this (a floor on the reward's "
        "own scale, as ReST filters; null: none). With below_margin: current it keeps the policy's answers the "
        "reward rates highly (refusals of harmful requests) and drops those it rates low (refusals of benign "
        "ones), and it drops prompts the reward cannot rate well whatever the answer.")
    label_filter: bool = Field(
        False, description="Where a prompt's own row says which answer is right (camelid.data.records.labelled_group: "
        "harmful: a refusal; borderline: help), a sample the refusal detector (camelid.eval.refusal) puts on the "
        "wrong side is never picked, and such a current answer is neither kept nor a bar to beat; a prompt with no "
        "sample left is dropped. Unlabelled prompts (tasks, most real data) are untouched. A guard against a "
        "reward model that rates some compliance with a harmful request above a refusal, as SmolLM2's did "
        "(docs/experiments/smollm2.md).")
    batch_size: int = Field(
        8, gt=0, description="Prompts per batch: batch_size x k answers are generated at once. A batch is the "
        "unit of --resume and has its own seed, so results don't depend on the number of processes.")
    precision: Precision = Field("auto", description="Sampling and scoring precision (auto: bf16 on GPUs, fp32 on CPU).")
    seed: int = Field(0, description="Sampling seed (batch b samples with seed + b).")
    samples_output: str = Field("rs-sample", description="Registry name of the kept answers (a dataset artifact).")
    output: str = Field("rs", description="Registry name of the fine-tuned policy.")
    finetune: RSFinetuneConfig = Field(default_factory=RSFinetuneConfig,
                                       description="SFT settings for fine-tuning the policy on the kept answers.")

    @model_validator(mode="after")
    def _below_margin_needs_a_margin(self) -> RSConfig:
        if self.below_margin == "current" and self.margin is None:
            raise ValueError("below_margin: current keeps the greedy answer of prompts below the margin; without a "
                             "margin every prompt keeps its best sample: set stages.rs.margin (e.g. 1.0)")
        return self

    @model_validator(mode="after")
    def _derive_finetune(self) -> RSConfig:
        """finetune.model/output/data follow policy/output/samples_output; setting them differently is an error."""
        derived = {"model": self.policy, "output": self.output,
                   "data": DataSpec(format=KEPT_FORMAT, path=f"registry:{self.samples_output}")}
        ft = self.finetune
        for key, value in derived.items():
            if key in ft.model_fields_set and getattr(ft, key) != value:
                source = {"model": "policy", "output": "output", "data": "samples_output"}[key]
                raise ValueError(f"finetune.{key} is set by rs.{source} (the fine-tune trains the policy on the kept "
                                 f"answers and publishes as rs.output); set stages.rs.{source} instead")
        self.finetune = ft.model_copy(update=derived)
        return self

