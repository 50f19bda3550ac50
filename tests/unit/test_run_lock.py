"""#29 item 14: a stage's run folder is locked while it trains, and its checkpoints are pruned after a publish."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from camelid.runs.lock import RunLocked, hold_run_folder, prune_checkpoints


def test_a_second_holder_is_told_who_holds_the_run_folder(tmp_path):
    folder = tmp_path / "runs" / "sft" / "abc"
    with hold_run_folder(folder, "sft") as waited:
        assert waited is False
        with pytest.raises(RunLocked) as e, hold_run_folder(folder, "sft", wait=False):
            pass
    msg = str(e.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()} since " in msg and "(sft)" in msg
    with hold_run_folder(folder, "sft", wait=False) as waited:  # released: free again
        assert waited is False


def test_a_waiting_run_gets_the_folder_when_the_holder_finishes(tmp_path, caplog):
    folder = tmp_path / "runs" / "sft" / "abc"
    held, release = threading.Event(), threading.Event()

    def first():
        with hold_run_folder(folder, "sft"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    with caplog.at_level("INFO", logger="camelid"), hold_run_folder(folder, "sft", poll=0.05) as waited:
        assert waited is True
    t.join()
    assert "is being trained by pid" in caplog.text


def _checkpoint(folder, step, *, weights=True, complete=True):
    d = folder / f"checkpoint-{step}"
    d.mkdir(parents=True)
    if weights:
        (d / "model.safetensors").write_bytes(b"w")
        (d / "optimizer.pt").write_bytes(b"o")
    if complete:
        (d / "trainer_state.json").write_text("{}")
    return d


@pytest.mark.parametrize("keep, left", [("last", ["checkpoint-4"]), ("all", ["checkpoint-2", "checkpoint-4",
                                                                               "checkpoint-6"]), ("none", [])])
def test_prune_keeps_what_keep_checkpoints_says(tmp_path, keep, left):
    for step in (2, 4):
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 6, complete=False)  # a half-written one (killed mid-save) is never the one kept
    prune_checkpoints(tmp_path, keep, "trainer_state.json")
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == left


def test_prune_keeps_checkpoints_without_weights(tmp_path):
    """Rejection sampling's per-batch answers: a resume reads every one of them, and they are small."""
    for step in (1, 2, 3):
        _checkpoint(tmp_path, step, weights=False)
    prune_checkpoints(tmp_path, "last", "trainer_state.json")
    assert len(list(tmp_path.glob("checkpoint-*"))) == 3


def _sft_run_folder(cfg, reg):
    from camelid.runs import run_dir
    from camelid.stages import job_for

    job = job_for(cfg, "sft")
    return run_dir(cfg, job, {r: reg.resolve(ref) for r, ref in job.inputs.items()})


@pytest.mark.slow
def test_sft_keeps_only_its_last_checkpoint_and_waits_for_a_held_folder(micro, one_torch_thread, caplog):
    from camelid.stage import run_job

    cfg, reg = micro("stages.sft.save_steps=4")  # checkpoints at steps 4 and 8
    folder = _sft_run_folder(cfg, reg)
    art = run_job(cfg, reg, "sft")
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-8"]

    # Another process holds the folder: this run waits for it, then takes the artifact it published from the
    # same settings and inputs instead of training them a second time.
    held = threading.Event()

    def other_run():
        with hold_run_folder(folder, "sft"):
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(5)
    with caplog.at_level("INFO", logger="camelid"):
        again = run_job(cfg, reg, "sft")
    t.join()
    assert again.ref == art.ref and reg.versions("sft") == ["v1"]
    assert "waiting" in caplog.text and "published meanwhile" in caplog.text


@pytest.mark.slow
def test_keep_checkpoints_all_keeps_every_one(micro, one_torch_thread):
    from camelid.stage import run_job

    cfg, reg = micro("stages.sft.save_steps=4", "keep_checkpoints=all")
    run_job(cfg, reg, "sft")
    assert sorted(p.name for p in _sft_run_folder(cfg, reg).glob("checkpoint-*")) == ["checkpoint-4",
                                                                                         "checkpoint-8"]
