"""The rejection-sampling stage's declaration: two jobs, rs-sample (a dataset) then rs (the fine-tuned policy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from camelid.sft.stage import RESUME_KEYS as SFT_RESUME_KEYS
from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

if TYPE_CHECKING:
    from camelid.rs.config import RSConfig

# A sampling checkpoint is one finished batch: checkpoint-<b>/samples.json, marked complete by this file.
SAMPLE = JobSpec("rs-sample", kind="dataset", checkpoint_marker="batch_state.json",
                 recipe="camelid.rs.recipe:RejectionSampler")
# The fine-tune is the SFT recipe: the Trainer's checkpoints, and the keys a resumed SFT run may change.
FINETUNE = JobSpec("rs", kind="rs", checkpoint_marker="trainer_state.json", policy=True,
                   resume_keys=SFT_RESUME_KEYS, recipe="camelid.rs.recipe:RSFinetune")


class RSStage(Stage):
    name = "rs"
    help = "Rejection sampling: best of K answers by the combined reward, then fine-tune (publishes rs/vN)"
    description = ("Llama 2's rejection sampling: K answers per prompt from the policy, scored by the combined "
                   "helpfulness/safety reward; the best are published as a dataset (stages.rs.samples_output, with "
                   "the K curve) and the policy is fine-tuned on them with the SFT recipe (stages.rs.output).")
    config_model = "camelid.rs.config:RSConfig"
    shared = ("safety_threshold",)  # the combined reward's switch to the safety score
    job_specs = (SAMPLE, FINETUNE)

    def jobs_for(self, cfg, rs: RSConfig) -> list:
        """rs-sample and rs of section ``rs`` (stages.rs, or a round's copy)."""
        policies = policy_kinds()
        # Its artifact is the kept answers: hashed without the fine-tune's settings, so changing those reuses it.
        sample = self.make_job(
            cfg, rs, spec=SAMPLE.name, output=rs.samples_output, exclude={"finetune", "output"},
            inputs={"policy": rs.policy, "reward_helpfulness": rs.reward_helpfulness,
                    "reward_safety": rs.reward_safety},
            input_kinds={"policy": policies, "reward_helpfulness": ("reward",), "reward_safety": ("reward",)})
        finetune = self.make_job(cfg, rs.finetune, spec=FINETUNE.name,
                                 inputs={"model": rs.policy, "samples": rs.samples_output},
                                 input_kinds={"model": policies, "samples": ("dataset",)},
                                 where="stages.rs.finetune")
        return [sample, finetune]

    def jobs(self, cfg):
        return self.jobs_for(cfg, cfg.stages.rs)


STAGE = RSStage()
