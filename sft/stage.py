"""The SFT stage's declaration: its section, its one job (a policy), and the keys a resumed run may change."""

from __future__ import annotations

from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

# What a resumed Trainer run may change (rs's fine-tune, the SFT recipe too, shares them).
RESUME_KEYS = frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
                         "report_to"})


class SFTStage(Stage):
    name = "sft"
    help = "Supervised fine-tuning (Llama 2 recipe on TRL), publishes sft/vN"
    description = ("Supervised fine-tuning (Llama 2 recipe on TRL's SFTTrainer); publishes the model into the "
                   "registry as sft/vN (stages.sft.output).")
    config_model = "camelid.sft.config:SFTConfig"
    job_specs = (JobSpec("sft", kind="sft", checkpoint_marker="trainer_state.json", policy=True,
                         resume_keys=RESUME_KEYS, recipe="camelid.sft.recipe:SFTRecipe"),)

    def jobs(self, cfg):
        sc = cfg.stages.sft
        return [self.make_job(cfg, sc, inputs={"model": sc.model}, input_kinds={"model": policy_kinds()})]


STAGE = SFTStage()
