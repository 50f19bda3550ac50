"""The SFT log line's throughput after --resume: TRL restarts its token count at 0, and the line must not go
negative (it printed "-11,756 tok/s" on a resumed second pass)."""

from __future__ import annotations

from types import SimpleNamespace

from camelid.sft.progress import LogLines


def test_a_resumed_runs_throughput_counts_this_sessions_tokens(caplog, monkeypatch):
    import camelid.sft.progress as progress

    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    lines = LogLines()
    state = SimpleNamespace(global_step=4, max_steps=6, is_world_process_zero=True,
                            log_history=[{"step": 4, "loss": 1.0, "num_tokens": 5000.0}])
    lines.on_train_begin(None, state, None)  # resumed at step 4, its checkpoint's count at 5,000 tokens
    with caplog.at_level("INFO", logger="camelid.sft"):
        state.global_step = 5
        lines.on_log(None, state, None, logs={"loss": 0.9, "num_tokens": 400.0})  # restarted at 0: 400 in 2 s
        state.global_step = 6
        lines.on_log(None, state, None, logs={"loss": 0.8, "num_tokens": 800.0})
    rates = [m.split("tok/s")[0].split()[-1] for m in caplog.messages]
    assert rates == ["200", "200"]
