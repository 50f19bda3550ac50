"""Issue #29: --resume of a finished run returns its artifact instead of training past the end; a resume
pinned to the same content (`sft` vs `sft@v1`) finds its run; `run --only` refuses unknown jobs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from camelid.cli import main
from camelid.config import load_config
from camelid.errors import ConfigError
from camelid.registry import Artifact
from camelid.stage import Stage

REPO = Path(__file__).resolve().parents[2]


class CountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field("count", description="Registry name.")
    model: str = Field("base", description="The input model (a registry ref).")
    text: str = Field("hello", description="What to write.")
    iterations: int = Field(1, description="May change on resume.")


class CountStage(Stage):
    """Publishes a new version every time it runs: a resume that trains again shows as a second version."""

    name = "count"
    kind = "dataset"
    help = "Write a text file (a toy stage with an input)"
    config_model = CountConfig
    resume_keys = frozenset({"iterations"})
    checkpoint_marker = "state.json"

    def jobs(self, cfg):
        section = cfg.stages.count
        return [self.make_job(cfg, section, inputs={"model": section.model})]

    def run(self, ctx):
        with ctx.publish() as pub:
            (pub.dir / "out.txt").write_text(f"{ctx.section.text} x{ctx.section.iterations}")
        return pub.artifact


@pytest.fixture
def count_stage():
    from camelid.stages import register, unregister

    register("count", CountStage())
    yield
    unregister("count")


def _cli(tmp_path, *extra):
    return ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(tmp_path / "reg"),
            f"runs_dir={tmp_path / 'runs'}", *extra]


# ---- item 1: --resume of a finished run ------------------------------------------------------------------

def test_resume_of_a_finished_run_returns_its_artifact(count_stage, micro, tmp_path, capsys, caplog):
    _, reg = micro()  # a registry holding base@v1
    args = ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(reg.root),
            f"runs_dir={tmp_path / 'runs'}"]
    assert main(["count", *args]) == 0
    assert capsys.readouterr().out.strip() == "count@v1"
    with caplog.at_level(logging.INFO, logger="camelid"):
        assert main(["count", *args, "--resume"]) == 0
    assert capsys.readouterr().out.strip() == "count@v1"
    assert reg.versions("count") == ["v1"]  # nothing trained or published again
    assert "already complete: count@v1" in caplog.text
    # a resumable key raised: the run continues and publishes
    assert main(["count", *args, "stages.count.iterations=2", "--resume"]) == 0
    assert capsys.readouterr().out.strip() == "count@v2"
    # other settings: not that run, so --resume has nothing finished to return (it starts, and says so)
    assert main(["count", *args, "stages.count.text=bye", "--resume"]) == 0
    assert capsys.readouterr().out.strip() == "count@v3"


# ---- item 2: a pin to the same content is the same run --------------------------------------------------

class _State:
    is_main_process, num_processes = True, 1

    def wait_for_everyone(self):
        pass


def _choose(tmp_path, resume, base: Artifact, **section):
    from camelid.runs import choose_run
    from camelid.stages import get_stage

    cfg = load_config(REPO / "pipelines.yaml", "micro",
                      [f"runs_dir={tmp_path / 'runs'}", *(f"stages.count.{k}={v}" for k, v in section.items())])
    stage = get_stage("count")
    return choose_run(cfg, stage.jobs(cfg)[0], {"model": base}, resume=resume, state=_State())


def _checkpoint(folder: Path, n: int) -> Path:
    ck = folder / f"checkpoint-{n}"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text("{}")
    return ck


BASE_V1 = Artifact(name="base", version="v1", path=None, manifest={"artifact_hash": "1111111111111111"})
BASE_V2 = Artifact(name="base", version="v2", path=None, manifest={"artifact_hash": "2222222222222222"})


def test_resume_pinned_to_the_same_content_finds_the_run(count_stage, tmp_path):
    folder, _ = _choose(tmp_path, False, BASE_V1, model="base")
    made = _checkpoint(folder, 3)
    assert _choose(tmp_path, True, BASE_V1, model="base@v1") == (folder, made)
    assert _choose(tmp_path, True, BASE_V1, model="base@latest") == (folder, made)
    # another model's content under the pin is another run: an error naming the input
    with pytest.raises(ConfigError, match=r"input model .*\(a different model\)"):
        _choose(tmp_path, True, BASE_V2, model="base@v2")
    assert made.is_dir()


def test_resume_finds_a_run_whose_folder_an_older_key_named(count_stage, tmp_path):
    """Run folders made before the key left input references out (job.json still holds `model: base`)."""
    folder, _ = _choose(tmp_path, False, BASE_V1, model="base")
    settings = json.loads((folder / "job.json").read_text())
    old = folder.parent / "0123456789abcdef"
    old.mkdir()
    (old / "job.json").write_text(json.dumps({**settings, "section": {**settings["section"], "model": "base"}}))
    made = _checkpoint(old, 5)
    assert _choose(tmp_path, True, BASE_V1, model="base@v1") == (old, made)
    with pytest.raises(ConfigError, match=r"stages.count.text \('hello' -> 'other'\)"):
        _choose(tmp_path, True, BASE_V1, model="base", text="other")


# ---- item 4: run --only names a job of the pipeline ----------------------------------------------------

@pytest.mark.parametrize("only, says", [
    ("sfft", "--only sfft: no such job (did you mean 'sft'?); the pipeline's jobs: init, sft, reward-helpfulness"),
    ("rs", "--only rs: not in the pipeline of profile micro (init, sft, reward, ppo, compare); run `camelid rs`"),
    ("rs-sample", "--only rs-sample: not in the pipeline of profile micro"),
])
def test_run_only_an_unknown_or_unscheduled_job_is_an_error(tmp_path, capsys, only, says):
    assert main(["run", *_cli(tmp_path, "--only", "sft", "--only", only)]) == 2
    err = capsys.readouterr().err
    assert says in err and "pipeline done" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "reg").exists() and not (tmp_path / "runs").exists()


def test_run_only_a_scheduled_job_or_stage_is_accepted(micro, tmp_path, caplog):
    _, reg = micro()
    with caplog.at_level(logging.INFO, logger="camelid"):
        assert main(["run", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry",
                     str(reg.root), "--only", "reward", "--only", "sft", "--dry-run"]) == 0
    assert "sft -> reward-helpfulness -> reward-safety" in caplog.text and "[sft] would run" in caplog.text
    assert reg.names() == ["base"]


def test_sft_resume_after_the_run_finished_publishes_nothing_new(micro, one_torch_thread):
    """The issue's case: `camelid sft --resume` after a finished run trained step 9 of 8 and published sft@v2."""
    from camelid.stage import run_job

    cfg, registry = micro()
    art = run_job(cfg, registry, "sft")
    assert run_job(cfg, registry, "sft", resume=True).ref == art.ref == "sft@v1"
    assert registry.versions("sft") == ["v1"]
