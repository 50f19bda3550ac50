"""The DPO stage's declaration: one job, from a policy, publishing a policy."""

from __future__ import annotations

from camelid.dpo.config import DPOConfig
from camelid.stage import Stage

POLICY_KINDS = ("base", "sft", "ppo", "rs", "dpo")


class DPOStage(Stage):
    name = "dpo"
    kind = "dpo"
    help = "DPO from a policy on the reward models' preference pairs (TRL), publishes dpo/vN"
    description = ("Direct Preference Optimization on TRL's DPOTrainer: from stages.dpo.policy (the reference too), "
                   "on the pairs the reward models learn from (safety pairs with helpfulness mixed in, as the "
                   "safety RM mixes them); publishes a policy as stages.dpo.output/vN.")
    config_model = DPOConfig
    resume_keys = frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "save_total_limit",
                             "eval_steps", "report_to"})
    checkpoint_marker = "trainer_state.json"
    policy = True  # its artifact is a chat policy: compare, rs, ppo and rounds take it as one

    def jobs(self, cfg):
        dc = cfg.stages.dpo
        return [self.make_job(cfg, dc, inputs={"policy": dc.policy}, input_kinds={"policy": POLICY_KINDS})]

    def run(self, ctx):
        from camelid.dpo.recipe import run

        return run(ctx)


STAGE = DPOStage()
