"""The stage skeleton: a new stage is one registration, shared settings are hashed, resume never silently
starts over, and what a run needs is checked before its first step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from camelid.config import load_config
from camelid.errors import ConfigError, RegistryError
from camelid.registry import Registry, config_hash
from camelid.stage import Stage

REPO = Path(__file__).resolve().parents[2]


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field("echo", description="Registry name.")
    text: str = Field("hello", description="What to write.")
    iterations: int = Field(1, description="May change on resume.")


class EchoStage(Stage):
    """A toy stage: everything it needs is here plus one `register` call (no core file touched)."""

    name = "echo"
    kind = "dataset"
    help = "Write a text file (a toy stage)"
    config_model = EchoConfig
    shared = ("safety_threshold",)
    resume_keys = frozenset({"iterations"})
    checkpoint_marker = "state.json"

    def jobs(self, cfg):
        return [self.make_job(cfg, cfg.stages.echo, inputs={})]

    def run(self, ctx):
        if not ctx.is_main:
            return None
        with ctx.publish(metrics={"chars": len(ctx.section.text)}) as pub:
            (pub.dir / "echo.txt").write_text(ctx.section.text)
        return pub.artifact


@pytest.fixture
def echo_stage():
    from camelid.stages import register, unregister

    register("echo", EchoStage())
    yield
    unregister("echo")


def cli(tmp_path, *extra):
    return ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(tmp_path / "reg"),
            f"runs_dir={tmp_path / 'runs'}", *extra]


def test_a_new_stage_is_one_registration(echo_stage, tmp_path, capsys):
    from camelid.cli import main

    assert main(["--help"]) == 0
    assert "Write a text file (a toy stage)" in capsys.readouterr().out
    # its own CLI command, from the stage registry
    assert main(["echo", *cli(tmp_path, "stages.echo.text=hi")]) == 0
    assert capsys.readouterr().out.strip() == "echo@v1"
    art = Registry(tmp_path / "reg").resolve("echo")
    assert (art.path / "echo.txt").read_text() == "hi"
    m = art.manifest["metrics"]
    assert m["chars"] == 2 and m["world_size"] == 1 and m["seconds"] >= 0 and m["resumed_from"] is None
    assert art.manifest["config"]["shared"] == {"safety_threshold": 0.15}
    # `camelid run` asks the registry for its jobs and skips it when up to date
    run = ["run", *cli(tmp_path, "pipeline=[echo]", "stages.echo.text=hi")]
    assert main(run) == 0
    assert Registry(tmp_path / "reg").versions("echo") == ["v1"]
    assert main(["run", *cli(tmp_path, "pipeline=[echo]", "stages.echo.text=bye")]) == 0
    assert Registry(tmp_path / "reg").versions("echo") == ["v1", "v2"]


def test_a_section_of_an_unregistered_stage_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown stage section 'echo'"):
        load_config(REPO / "pipelines.yaml", "micro", ["stages.echo.text=hi"])


def test_unknown_pipeline_stage_names_the_nearest(tmp_path):
    with pytest.raises(ConfigError, match="unknown stage 'rewrad' \\(did you mean 'reward'\\?\\)"):
        load_config(REPO / "pipelines.yaml", "micro", ["pipeline=[sft, rewrad]"])


def test_moved_threshold_says_where_it_went():
    with pytest.raises(ConfigError, match="stages.ppo.safety_threshold moved to shared.safety_threshold"):
        load_config(REPO / "pipelines.yaml", "micro", ["stages.ppo.safety_threshold=0.2"])


def test_shared_threshold_is_hashed_into_every_job_that_reads_it():
    from camelid.stages import jobs

    def hashes(*over):
        cfg = load_config(REPO / "pipelines.yaml", "micro", list(over))
        return {j.name: config_hash(j.config) for j in jobs(cfg)}

    a, b = hashes(), hashes("shared.safety_threshold=0.2")
    changed = {name for name in a if a[name] != b[name]}
    assert changed == {"reward-helpfulness", "reward-safety", "ppo", "compare"}  # init and sft don't read it


# ---- resume policy ---------------------------------------------------------------------------------------

class _State:
    is_main_process, num_processes = True, 1

    def wait_for_everyone(self):
        pass


def _choose(tmp_path, echo, resume, **section):
    from camelid.runs import choose_run
    from camelid.stages import get_stage

    cfg = load_config(REPO / "pipelines.yaml", "micro",
                      [f"runs_dir={tmp_path / 'runs'}", *(f"stages.echo.{k}={v}" for k, v in section.items())])
    stage = get_stage("echo")
    return choose_run(cfg, stage.jobs(cfg)[0], {}, resume=resume, state=_State())


def _checkpoint(folder: Path, n: int) -> Path:
    ck = folder / f"checkpoint-{n}"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text("{}")
    return ck


def test_resume_finds_the_run_when_only_resumable_keys_changed(echo_stage, tmp_path):
    folder, ck = _choose(tmp_path, echo_stage, False, iterations=150)
    assert ck is None and json.loads((folder / "job.json").read_text())["section"]["text"] == "hello"
    made = _checkpoint(folder, 150)
    folder2, ck2 = _choose(tmp_path, echo_stage, True, iterations=300)
    assert folder2 == folder and ck2 == made


def test_resume_with_another_setting_changed_is_an_error_naming_it(echo_stage, tmp_path):
    folder, _ = _choose(tmp_path, echo_stage, False)
    _checkpoint(folder, 2)
    with pytest.raises(ConfigError, match=r"stages.echo.text \('hello' -> 'other'\).*Only iterations may change"):
        _choose(tmp_path, echo_stage, True, text="other")
    assert (folder / "checkpoint-2").is_dir()  # nothing was cleared


def test_fresh_run_clears_old_checkpoints_and_resume_without_any_starts_fresh(echo_stage, tmp_path):
    folder, _ = _choose(tmp_path, echo_stage, False)
    _checkpoint(folder, 2)
    again, ck = _choose(tmp_path, echo_stage, False)
    assert again == folder and ck is None and not (folder / "checkpoint-2").exists()
    other, ck = _choose(tmp_path / "elsewhere", echo_stage, True)
    assert ck is None and (other / "job.json").is_file()


# ---- checked before training ------------------------------------------------------------------------------

def test_input_of_the_wrong_kind_is_refused_before_training(micro):
    from camelid.stage import run_job

    cfg, registry = micro("stages.ppo.policy=base", "stages.ppo.reward_helpfulness=base")
    with pytest.raises(ConfigError, match="input reward_helpfulness='base' is a base artifact.*must be one of: reward"):
        run_job(cfg, registry, "ppo")
    assert not cfg.runs_path().exists()  # no run folder: nothing started


@pytest.mark.parametrize("override,match", [
    ("stages.sft.output=../evil", "invalid .*name"),
    ("stages.sft.eval_prompts={format: xstest, path: /no/such/prompts.csv}",
     "stages.sft.eval_prompts.path: /no/such/prompts.csv does not exist"),
])
def test_bad_output_name_or_missing_file_fails_before_training(micro, override, match):
    from camelid.stage import run_job

    cfg, registry = micro(override)
    with pytest.raises((ConfigError, RegistryError), match=match):
        run_job(cfg, registry, "sft")
    assert not cfg.runs_path().exists()
