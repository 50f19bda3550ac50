"""Typed config of iterative rounds (the top-level `rounds:` section of pipelines.yaml).

A round copies the stage sections it runs (`stages.reward.*`, `stages.rs`, `stages.ppo`, `stages.dpo`,
`stages.compare`)
and changes only what the round decides: the policy, the reward models, the training pairs and the output
names (`<name>-r<round>`). `overrides` adjusts the copies for rounds only (e.g. fewer PPO iterations per
round than a one-off `camelid ppo`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from camelid.data.spec import DataSpec

POLICY_UPDATES = ("rs", "ppo", "rs+ppo", "dpo")
Update = Literal["rs", "ppo", "rs+ppo", "dpo"]
OVERRIDABLE = ("reward", "rs", "ppo", "dpo", "compare")


class AnnotationConfig(BaseModel):
    """Who labels a round's pairs: simulated annotators on the toy oracle, or people in the annotation app."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["simulated", "human"] = Field(
        "simulated", description="simulated: annotators built on the toy oracle label at once (toy prompts only); "
        "human: the round queues its pairs in the annotation app and stops; `camelid round --continue` exports "
        "the labels and goes on.")
    annotators: int = Field(3, ge=1, description="Labels per pair, each from a different annotator (simulated: "
                            "how many simulated annotators vote; human: the queue's k).")
    flip: float = Field(0.1, ge=0, le=1, description="Simulated: P(an annotator prefers the worse answer).")
    jitter: float = Field(0.2, ge=0, le=1, description="Simulated: P(the strength is one level off).")
    safety_flip: float = Field(0.05, ge=0, le=1, description="Simulated: P(a response's safety label is wrong).")
    seed: int = Field(0, description="Simulated annotators' seed (each pair and annotator draws its own stream).")
    db: str = Field("annotations-r{round}.sqlite", description="Human: the annotation database of a round "
                    "(relative paths are under runs_dir/rounds; {round} is the round number).")
    url: str = Field("http://127.0.0.1:8765/", description="Human: where `camelid annotate serve` is reached "
                     "(printed when a round stops for labels).")


class RoundsConfig(BaseModel):
    """Llama 2's iterative loop: pairs from the latest policy -> labels -> both RMs -> policy update -> compare."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(3, ge=1, description="Rounds to run (a finished round is skipped when it is up to date).")
    policy: str = Field("sft", description="The policy round 1 samples from and improves (registry ref).")
    policy_update: Update | list[Update] = Field(
        "rs", description="How a round updates the policy: rejection sampling, PPO, or rejection sampling then "
        "PPO from its result (Llama 2's RLHF-V5), or DPO on the pairs the round's safety RM trains on. A list "
        "gives each round its own (Llama 2's schedule: "
        "[rs, rs, rs+ppo]); rounds past its end repeat its last entry.")
    pairs_per_round: int = Field(256, ge=1, description="New prompts a round samples two answers for.")
    prompts: DataSpec = Field(default_factory=lambda: DataSpec(format="toy", split="ppo"),
                              description="Where new prompts come from (n is set per round).")
    prompt_offset: int = Field(
        5000, ge=0, description="Round r takes prompts offset + (r-1)*pairs_per_round onwards: new prompts every "
        "round, away from the first ones that ppo and rs train on.")
    temperatures: tuple[float, float] = Field(
        (0.7, 1.0), description="The two sampling temperatures of a pair's answers (Llama 2 sampled each pair's "
        "two answers with different temperatures).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling for the pairs' answers.")
    sample_tries: int = Field(
        3, ge=1, description="A prompt whose two answers come out the same (a peaked policy often gives one answer "
        "at both temperatures) is sampled again with another seed, up to this many times in all; then dropped.")
    max_new_tokens: int = Field(48, gt=0, description="Answer length cap.")
    seed: int = Field(0, description="Sampling seed (round r samples with seed + r).")
    annotation: AnnotationConfig = Field(default_factory=AnnotationConfig, description="Who labels the pairs.")
    base_data: bool = Field(
        True, description="Keep each RM's own `data` in its training mix, next to every round's pairs (Llama 2 "
        "kept earlier data when it retrained); false: train on the rounds' pairs only.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Settings for the rounds' copies of stage sections, by stage: "
        "{reward: {helpfulness: {...}, safety: {...}}, rs: {...}, ppo: {...}, dpo: {...}, compare: {...}}.")
    report_output: str = Field("rounds-report", description="Registry name of the report across rounds.")

    @field_validator("overrides")
    @classmethod
    def _known_sections(cls, value: dict) -> dict:
        for key, body in value.items():
            if key not in OVERRIDABLE:
                raise ValueError(f"unknown section {key!r}; a round copies: {', '.join(OVERRIDABLE)}")
            if not isinstance(body, dict):
                raise ValueError(f"{key} must be a mapping of settings, got {body!r}")
        return value

    @field_validator("policy_update")
    @classmethod
    def _some_update(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError(f"give one of {', '.join(POLICY_UPDATES)} or a list of them per round, not []")
        return value

    def update_for(self, r: int) -> str:
        """Round r's policy update: policy_update, or its r-th entry (the last one for rounds past the end)."""
        u = self.policy_update
        return u if isinstance(u, str) else u[min(r, len(u)) - 1]

    @field_validator("temperatures")
    @classmethod
    def _positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        if min(value) <= 0:
            raise ValueError(f"temperatures must be > 0 (two greedy answers would be equal), got {list(value)}")
        return value
