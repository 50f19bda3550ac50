"""What the stage driver guards around a run (#29): a full disk mid-stage and a checkpoint --resume cannot
load safely each end in one line saying what stopped, what was kept and what to do, not a traceback."""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from camelid.cli import main as camelid
from camelid.registry import Registry
from camelid.stage import Stage

REPO = Path(__file__).resolve().parents[2]


class FillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field("filled", description="Registry name.")
    fail: str = Field("none", description="none | publish-disk-full | checkpoint-quota | crash: how the run ends.")


class FillStage(Stage):
    """Saves checkpoint-1 (complete), starts checkpoint-2, then publishes, failing as ``fail`` says."""

    name = "diskfill"
    kind = "dataset"
    help = "A toy stage that runs out of disk"
    config_model = FillConfig
    resume_keys = frozenset({"fail"})
    checkpoint_marker = "state.json"

    def jobs(self, cfg):
        return [self.make_job(cfg, cfg.stages.diskfill, inputs={})]

    def run(self, ctx):
        fail = ctx.section.fail
        if ctx.checkpoint is not None:  # load what it saved, as HF's Trainer and the PPO loop do
            from transformers.trainer_pt_utils import safe_globals

            torch.load(ctx.checkpoint / "optimizer.pt", weights_only=True)
            with safe_globals():
                torch.load(ctx.checkpoint / "rng_state.pth", weights_only=True)
            json.loads((ctx.checkpoint / "state.json").read_text())
        else:
            first = ctx.run_dir / "checkpoint-1"
            first.mkdir(parents=True)
            torch.save({"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
                       first / "optimizer.pt")
            torch.save({"python": random.getstate(), "numpy": np.random.get_state(),
                        "cpu": torch.random.get_rng_state()}, first / "rng_state.pth")  # as HF's Trainer
            (first / "state.json").write_text(json.dumps({"step": 1}))
            half = ctx.run_dir / "checkpoint-2"
            half.mkdir()
            (half / "optimizer.pt").write_bytes(b"\0" * 100)
            if fail == "checkpoint-quota":
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(half / "optimizer.pt"))
            if fail == "crash":
                raise KeyboardInterrupt
        with ctx.publish() as pub:
            (pub.dir / "rows.jsonl").write_text("{}\n")
            if fail == "publish-disk-full":  # what safetensors' save_file raises on a full disk
                from safetensors import SafetensorError

                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return pub.artifact


@pytest.fixture
def fill_stage():
    from camelid.stages import register, unregister

    register("diskfill", FillStage())
    yield
    unregister("diskfill")


def cli(tmp_path, *extra):
    return ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(tmp_path / "reg"),
            f"runs_dir={tmp_path / 'runs'}", *extra]


def one_error_line(capsys, argv, command) -> str:
    capsys.readouterr()
    assert camelid(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"camelid {command}: error: "), err
    return err


def run_folder(tmp_path) -> Path:
    (folder,) = [p for p in (tmp_path / "runs" / "diskfill").iterdir() if p.is_dir()]
    return folder


# ---- a full disk ------------------------------------------------------------------------------------------

def test_disk_full_while_publishing_says_what_stopped_what_was_kept_and_how_to_resume(fill_stage, tmp_path, capsys):
    argv = ["run", *cli(tmp_path, "pipeline=[diskfill]", "stages.diskfill.fail=publish-disk-full")]
    err = one_error_line(capsys, argv, "run")
    folder = run_folder(tmp_path)
    assert "[diskfill] stopped: No space left on device. The registry is untouched" in err
    assert f"its run folder {folder} keeps checkpoint-1, where --resume continues" in err
    assert "removed the half-written checkpoint-2" in err
    assert f"resume: camelid diskfill --profile micro --registry {tmp_path / 'reg'} --resume" in err
    reg = tmp_path / "reg"
    assert not list((reg / ".staging").iterdir())  # the staged publish is gone, lock included
    assert not (reg / "filled").exists() and Registry(reg).names() == []
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["checkpoint-1"]
    # the way out it names works: with room again (fail is a resumable key here) the run resumes and publishes
    assert camelid(["run", *cli(tmp_path, "pipeline=[diskfill]", "--resume")]) == 0
    art = Registry(reg).resolve("filled")
    assert art.manifest["metrics"]["resumed_from"] == "checkpoint-1"


def test_quota_exceeded_while_checkpointing_is_a_full_disk_too(fill_stage, tmp_path, capsys):
    err = one_error_line(capsys, ["diskfill", *cli(tmp_path, "stages.diskfill.fail=checkpoint-quota")], "diskfill")
    assert "[diskfill] stopped: Disk quota exceeded. The registry is untouched" in err
    assert "keeps checkpoint-1" in err and "removed the half-written checkpoint-2" in err


def test_other_failures_keep_their_traceback(fill_stage, tmp_path):
    from camelid.runs.guards import disk_full_reason

    assert camelid(["diskfill", *cli(tmp_path, "stages.diskfill.fail=crash")]) == 130  # interrupted, as before
    assert disk_full_reason(RuntimeError("CUDA out of memory")) is None
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert disk_full_reason(wrapped) == "No space left on device"


# ---- --resume from a checkpoint that cannot be loaded safely ----------------------------------------------

class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("name,content,why", [
    ("optimizer.pt", b"PK\x03\x04 not really a zip", r"PytorchStreamReader failed|failed finding central directory"),
    ("optimizer.pt", pickle.dumps(_Exploit()), r"a pickle that torch\.load\(weights_only=True\) refuses: \w"),
    ("optimizer.pt", "torch.save", r"a pickle that torch\.load\(weights_only=True\) refuses: Trying to load "
                                   r"unsupported GLOBAL posix\.system"),
    ("rng_state.pth", b"", r"\w"),
    ("state.json", b"{not json", r"not JSON"),
], ids=["corrupt-zip", "pickle-that-runs-code", "pickle-in-torch-zip", "empty-rng", "broken-state"])
def test_resume_from_a_checkpoint_that_cannot_be_loaded_safely_names_the_file(fill_stage, tmp_path, capsys,
                                                                              name, content, why):
    import re

    # interrupted after saving checkpoint-1
    assert camelid(["diskfill", *cli(tmp_path, "stages.diskfill.fail=crash")]) == 130
    checkpoint = run_folder(tmp_path) / "checkpoint-1"
    if content == "torch.save":  # the same pickle in torch's zip format
        torch.save({"state": _Exploit()}, checkpoint / name)
    else:
        (checkpoint / name).write_bytes(content)
    err = one_error_line(capsys, ["diskfill", *cli(tmp_path, "--resume")], "diskfill")
    assert f"--resume: {checkpoint / name} cannot be loaded safely (" in err
    assert re.search(why, err), err
    assert f"delete the checkpoint folder {checkpoint} to resume from an earlier checkpoint" in err
    assert err.endswith("or run without --resume")
    assert camelid(["diskfill", *cli(tmp_path)]) == 0  # the second way out works


def test_resume_from_a_sound_checkpoint_loads_it(fill_stage, tmp_path):
    assert camelid(["diskfill", *cli(tmp_path, "stages.diskfill.fail=crash")]) == 130
    assert camelid(["diskfill", *cli(tmp_path, "--resume")]) == 0
    assert Registry(tmp_path / "reg").resolve("filled").manifest["metrics"]["resumed_from"] == "checkpoint-1"
