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
        first = self.make_job(cfg, sc, inputs=self.inputs(sc.model, sc), input_kinds=self.input_kinds(sc),
                              exclude={"second_pass"})
        if sc.second_pass is None:
            return [first]
        validate_name(sc.second_pass.output, "stages.sft.second_pass.output")  # before the first pass trains
        section = sc.second_pass.section(sc)
        second = self.make_job(cfg, section, name=SECOND_PASS_JOB, inputs=self.inputs(sc.output, section),
                               input_kinds=self.input_kinds(section), where="stages.sft.second_pass")
        return [first, second]

    @staticmethod
    def inputs(model: str, section) -> dict[str, str]:
        """The model to train, and the one that answers the self-distillation prompts where that is another."""
        out = {"model": model}
        if section.self_distill_model is not None:
            out["self_distill_model"] = section.self_distill_model
        return out

    @staticmethod
    def input_kinds(section) -> dict[str, tuple[str, ...]]:
        return {role: policy_kinds() for role in SFTStage.inputs("", section)}


STAGE = SFTStage()
