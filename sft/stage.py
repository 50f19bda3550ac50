"""The SFT stage's declaration: its section, its job (a policy) and an optional second pass from that job's model,
and the keys a resumed run may change."""

from __future__ import annotations

from camelid.registry import validate_name
from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

# What a resumed Trainer run may change (rs's fine-tune, the SFT recipe too, shares them).
RESUME_KEYS = frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
                         "report_to"})


SECOND_PASS_JOB = "sft-second-pass"  # its job name (run folder, `camelid run --only`)


class SFTStage(Stage):
    name = "sft"
    help = "Supervised fine-tuning (Llama 2 recipe on TRL), publishes sft/vN"
    description = ("Supervised fine-tuning (Llama 2 recipe on TRL's SFTTrainer); publishes the model into the "
                   "registry as sft/vN (stages.sft.output); with stages.sft.second_pass, a second pass from that model "
                   "on other data publishes its own (stages.sft.second_pass.output).")
    config_model = "camelid.sft.config:SFTStageConfig"
    job_specs = (JobSpec("sft", kind="sft", checkpoint_marker="trainer_state.json", policy=True,
                         resume_keys=RESUME_KEYS, recipe="camelid.sft.recipe:SFTRecipe"),)

    def jobs(self, cfg):
        sc = cfg.stages.sft
        # The second pass's settings are not the first's: changing them reruns the second pass only. They stay in
        # the first job's settings (not its hash), so its data paths are checked before the first training step.
        first = self.make_job(cfg, sc, inputs={"model": sc.model}, input_kinds={"model": policy_kinds()},
                              exclude={"second_pass"})
        if sc.second_pass is None:
            return [first]
        validate_name(sc.second_pass.output, "stages.sft.second_pass.output")  # before the first pass trains
        second = self.make_job(cfg, sc.second_pass.section(sc), name=SECOND_PASS_JOB,
                               inputs={"model": sc.output}, input_kinds={"model": policy_kinds()},
                               where="stages.sft.second_pass")
        return [first, second]


STAGE = SFTStage()
