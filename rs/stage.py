"""The rejection-sampling stage's declaration: two jobs, rs-sample (a dataset) then rs (the fine-tuned policy)."""

from __future__ import annotations

import dataclasses

from camelid.rs.config import RSConfig
from camelid.sft.stage import SFTStage
from camelid.stage import Stage

POLICY_KINDS = ("base", "sft", "ppo", "rs")
# The stage has one checkpoint marker for both jobs. The fine-tune's checkpoints are the Trainer's, which
# finish with trainer_state.json; a sampling checkpoint (one finished batch) writes its own small state
# file under the same name, last, so the driver's one resume policy covers both jobs.
CHECKPOINT_MARKER = "trainer_state.json"


class RSStage(Stage):
    name = "rs"
    kind = "rs"
    help = "Rejection sampling: best of K answers by the combined reward, then fine-tune (publishes rs/vN)"
    description = ("Llama 2's rejection sampling: K answers per prompt from the policy, scored by the combined "
                   "helpfulness/safety reward; the best are published as a dataset (stages.rs.samples_output, with "
                   "the K curve) and the policy is fine-tuned on them with the SFT recipe (stages.rs.output).")
    config_model = RSConfig
    shared = ("safety_threshold",)  # the combined reward's switch to the safety score
    resume_keys = SFTStage.resume_keys  # the fine-tune's; nothing about sampling may change on resume
    checkpoint_marker = CHECKPOINT_MARKER

    def jobs(self, cfg):
        rs = cfg.stages.rs
        sample = self.make_job(
            cfg, rs, name="rs-sample", options={"step": "sample"},
            inputs={"policy": rs.policy, "reward_helpfulness": rs.reward_helpfulness,
                    "reward_safety": rs.reward_safety},
            input_kinds={"policy": POLICY_KINDS, "reward_helpfulness": ("reward",), "reward_safety": ("reward",)})
        # Its artifact is the kept answers: hashed without the fine-tune's settings, so changing those reuses it.
        sample = dataclasses.replace(sample, output=rs.samples_output,
                                     section=rs.model_dump(mode="json", exclude={"finetune", "output"}))
        finetune = self.make_job(cfg, rs.finetune, name="rs", options={"step": "finetune"},
                                 inputs={"model": rs.policy, "samples": rs.samples_output},
                                 input_kinds={"model": POLICY_KINDS, "samples": ("dataset",)},
                                 where="stages.rs.finetune")
        return [sample, finetune]

    def run(self, ctx):
        from camelid.rs.recipe import run_finetune, run_sampling

        return run_sampling(ctx) if ctx.job.options["step"] == "sample" else run_finetune(ctx)


STAGE = RSStage()
