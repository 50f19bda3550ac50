"""Progress for long runs: transformers' tqdm bar, plus one readable log line every `logging_steps`."""

from __future__ import annotations

import time

from transformers.trainer_callback import ProgressCallback

from camelid.log import get_logger

log = get_logger("sft")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class LogLines(ProgressCallback):
    """Replaces transformers' ProgressCallback: same bar, but logs `step 40/300 loss 1.23 ... eta 2m10s`
    through camelid's logger instead of printing raw dicts."""

    def __init__(self):
        super().__init__()
        self._t0: float | None = None
        self._step0 = 0
        self._tokens0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        # A resumed run starts mid-count: measure this session's throughput from where it started.
        seen = [h["num_tokens"] for h in state.log_history if "num_tokens" in h]
        self._t0, self._step0, self._tokens0 = time.perf_counter(), state.global_step, seen[-1] if seen else 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self._t0 is None:
            return
        elapsed = time.perf_counter() - self._t0
        done = state.global_step - self._step0
        parts = [f"step {state.global_step}/{state.max_steps}"]
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            parts.append(f"eval_loss {logs['eval_loss']:.4f}")
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.2e}")
        if "mean_token_accuracy" in logs:
            parts.append(f"acc {logs['mean_token_accuracy']:.3f}")
        tokens = logs.get("num_tokens")
        if tokens is not None and elapsed > 0:
            if tokens < self._tokens0:  # TRL restarted its count on resume (it printed "-11,756 tok/s" before)
                self._tokens0 = 0
            parts.append(f"{(tokens - self._tokens0) / elapsed:,.0f} tok/s")
        if done > 0 and state.max_steps > state.global_step and "loss" in logs:
            parts.append(f"eta {_duration(elapsed / done * (state.max_steps - state.global_step))}")
        if len(parts) > 1:
            msg = "  ".join(parts)
            if self.training_bar is not None:
                self.training_bar.clear()
            log.info(msg)
            if self.training_bar is not None:
                self.training_bar.refresh()
