"""Typed config of checkpoint comparison (`stages.compare`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from camelid.data.spec import DataSpec


class CompareConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoints: list[str] = Field(default_factory=lambda: ["sft", "ppo"], min_length=1,
                                   description="Checkpoints to compare (registry refs / paths / hf:<id>).")
    prompts: DataSpec = Field(default_factory=lambda: DataSpec(format="toy", split="eval", n=200),
                              description="Held-out prompts every checkpoint answers.")
    sets: dict[str, DataSpec] = Field(
        default_factory=dict, description="Extra prompt sets every checkpoint answers, by name (e.g. real-eval: "
        "{format: real, split: eval}, knowledge: {format: knowledge}, xstest: {format: xstest, path: ...}): refusal "
        "of harmful prompts, over-refusal of safe ones (string match) and answer match where prompts carry answers; "
        "no reward model scores them (camelid.eval.prompt_sets).")
    reward_helpfulness: str | None = Field("rm-helpfulness", description="Helpfulness RM ref (null: skip).")
    reward_safety: str | None = Field("rm-safety", description="Safety RM ref (null: skip).")
    reference: str | None = Field(None, description="Reference checkpoint for KL/perplexity (null: skip).")
    output: str = Field("report", description="Registry name of the report artifact.")
    max_new_tokens: int = Field(64, gt=0, description="Generation length.")
    temperature: float = Field(0.0, ge=0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    seed: int = Field(0, description="Sampling seed, the same for every checkpoint.")
    bootstrap: int = Field(1000, gt=0, description="Bootstrap resamples for confidence intervals.")
    tie_threshold: float = Field(0.0, ge=0, description="Score differences up to this count as a tie (RM judges).")
    examples: int = Field(20, ge=0, description="Side-by-side examples in the report (most disagreement first).")
