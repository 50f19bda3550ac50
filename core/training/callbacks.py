"""Trainer callbacks every TRL-based stage shares."""

from __future__ import annotations

import math

from transformers import TrainerCallback

from camelid.errors import TrainingDiverged


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop at the first logged NaN/inf loss with TrainingDiverged (PPO's rule, for the TRL stages).

    Raised from on_log, so training stops at that logging step and the stage publishes nothing; checkpoints
    already in the run folder were written before the loss broke.
    """

    def __init__(self, what: str, setting: str):
        self.what, self.setting = what, setting

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingDiverged(f"{self.what}: the training loss became {loss} at step {state.global_step}; "
                                   f"nothing was published. Lower {self.setting} or check the data, then rerun.")
