"""The reward stage's declaration: one job per objective (helpfulness, safety), each from its init model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

if TYPE_CHECKING:
    from camelid.reward.config import RewardModelConfig


@dataclass(frozen=True)
class RewardOptions:
    """What a reward job reads beyond its own section."""

    objective: str                      # helpfulness | safety
    other: RewardModelConfig | None     # the other objective's section: its test set and RM cross Table 8


class RewardStage(Stage):
    name = "reward"
    help = "Train the helpfulness and/or safety reward model"
    description = ("Train Llama 2-style reward models (margin loss by rating) and publish rm-<objective>/vN. "
                   "Without --objective, trains every objective in stages.reward.objectives.")
    config_model = "camelid.reward.config:RewardStageConfig"
    shared = ("safety_threshold",)  # the calibration puts sigmoid = threshold at the best unsafe/safe cut
    job_specs = (JobSpec("reward", kind="reward", checkpoint_marker="trainer_state.json",
                         resume_keys=frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "report_to"}),
                         recipe="camelid.reward.recipe:RewardRecipe"),)

    def job(self, cfg, objective: str, section: RewardModelConfig | None = None):
        """The ``objective``'s job, from ``section`` (default: stages.reward.<objective>; rounds pass their copy)."""
        rm = section if section is not None else getattr(cfg.stages.reward, objective)
        other = getattr(cfg.stages.reward, "safety" if objective == "helpfulness" else "helpfulness")
        return self.make_job(cfg, rm, name=f"reward-{objective}", inputs={"init": rm.init},
                             input_kinds={"init": (*policy_kinds(), "reward")},
                             options=RewardOptions(objective, other.model_copy(deep=True)),
                             where=f"stages.reward.{objective}")

    def jobs(self, cfg):
        return [self.job(cfg, objective) for objective in cfg.stages.reward.objectives]

    def add_arguments(self, parser) -> None:
        from camelid.reward.config import OBJECTIVES

        parser.add_argument("--objective", choices=OBJECTIVES, action="append",
                            help="which reward model to train (repeatable; default: stages.reward.objectives)")

    def select(self, cfg, args):
        return [self.job(cfg, objective) for objective in args.objective or cfg.stages.reward.objectives]


STAGE = RewardStage()
