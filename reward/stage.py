"""The reward stage's declaration: one job per objective (helpfulness, safety), each from its init model."""

from __future__ import annotations

from camelid.reward.data import OBJECTIVES
from camelid.stage import Stage

INIT_KINDS = ("base", "sft", "reward", "ppo", "rs")


class RewardStage(Stage):
    name = "reward"
    kind = "reward"
    help = "Train the helpfulness and/or safety reward model"
    description = ("Train Llama 2-style reward models (margin loss by rating) and publish rm-<objective>/vN. "
                   "Without --objective, trains every objective in stages.reward.objectives.")
    shared = ("safety_threshold",)  # the calibration puts sigmoid = threshold at the best unsafe/safe cut
    resume_keys = frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "report_to"})
    checkpoint_marker = "trainer_state.json"

    def job(self, cfg, objective: str):
        rm = getattr(cfg.stages.reward, objective)
        return self.make_job(cfg, rm, name=f"reward-{objective}", inputs={"init": rm.init},
                             input_kinds={"init": INIT_KINDS}, options={"objective": objective},
                             where=f"stages.reward.{objective}")

    def jobs(self, cfg):
        return [self.job(cfg, objective) for objective in cfg.stages.reward.objectives]

    def add_arguments(self, parser) -> None:
        parser.add_argument("--objective", choices=OBJECTIVES, action="append",
                            help="which reward model to train (repeatable; default: stages.reward.objectives)")

    def select(self, cfg, args):
        return cfg, [self.job(cfg, objective) for objective in args.objective or cfg.stages.reward.objectives]

    def run(self, ctx):
        from camelid.reward.recipe import run

        return run(ctx)


STAGE = RewardStage()
