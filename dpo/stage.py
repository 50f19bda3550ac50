"""The DPO stage's declaration: its section, its one job (from a policy, publishing a policy), the keys a resumed
run may change."""

from __future__ import annotations

from camelid.sft.stage import RESUME_KEYS  # a transformers Trainer run resumes the same way in both stages
from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds


class DPOStage(Stage):
    name = "dpo"
    help = "DPO from a policy on the reward models' preference pairs (TRL), publishes dpo/vN"
    description = ("Direct Preference Optimization on TRL's DPOTrainer: from stages.dpo.policy (the reference too), "
                   "on the pairs the reward models learn from (safety pairs with helpfulness mixed in, as the "
                   "safety RM mixes them); publishes a policy as stages.dpo.output/vN.")
    config_model = "camelid.dpo.config:DPOConfig"  # imported when a config is built, not by `camelid --help`
    job_specs = (JobSpec("dpo", kind="dpo", checkpoint_marker="trainer_state.json", policy=True,
                         resume_keys=RESUME_KEYS, recipe="camelid.dpo.recipe:DPORecipe"),)

    def jobs(self, cfg):
        return [self.job(cfg, cfg.stages.dpo)]

    def job(self, cfg, dc):
        """The job of section ``dc`` (stages.dpo, or a round's copy)."""
        inputs, kinds = {"policy": dc.policy}, {"policy": policy_kinds()}
        if dc.own_answers is not None:  # the model whose answers replace a side of the pairs (camelid.dpo.own)
            inputs["own_answers"], kinds["own_answers"] = dc.own_answers.model, policy_kinds()
        return self.make_job(cfg, dc, inputs=inputs, input_kinds=kinds)


STAGE = DPOStage()
