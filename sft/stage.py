"""The SFT stage's declaration: its section, input, and the keys a resumed run may change."""

from __future__ import annotations

from camelid.stage import Stage


class SFTStage(Stage):
    name = "sft"
    kind = "sft"
    help = "Supervised fine-tuning (Llama 2 recipe on TRL), publishes sft/vN"
    description = ("Supervised fine-tuning (Llama 2 recipe on TRL's SFTTrainer); publishes the model into the "
                   "registry as sft/vN (stages.sft.output).")
    resume_keys = frozenset({"epochs", "max_steps", "logging_steps", "save_steps", "save_total_limit",
                             "eval_steps", "report_to"})
    checkpoint_marker = "trainer_state.json"

    def jobs(self, cfg):
        sc = cfg.stages.sft
        return [self.make_job(cfg, sc, inputs={"model": sc.model},
                              input_kinds={"model": ("base", "sft", "ppo", "rs")})]

    def run(self, ctx):
        from camelid.sft.recipe import run

        return run(ctx)


STAGE = SFTStage()
