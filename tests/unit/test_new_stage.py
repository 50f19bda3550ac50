"""Adding a stage is its folder plus one registration line: a throwaway stage in a module of its own, registered
with one line, gets its command, its config section, its artifact kind in the registry and, as a policy, is
accepted where a policy goes (here: as the model sft fine-tunes), through `camelid run` on the micro profile."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from camelid.registry import Registry

REPO = Path(__file__).resolve().parents[2]

# A complete stage: a config model, one job publishing a new kind that is a policy, and its run (a copy of
# its input model: a policy made without training, so the test stays fast).
MODULE = '''
from __future__ import annotations

import shutil

from pydantic import BaseModel, ConfigDict, Field

from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds


class CopycatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("base", description="The policy to copy.")
    output: str = Field("copycat", description="Registry name.")


class CopycatStage(Stage):
    name = "copycat"
    help = "Copy a policy under a new name (a throwaway stage)"
    config_model = CopycatConfig
    job_specs = (JobSpec("copycat", kind="copycat", policy=True),)

    def jobs(self, cfg):
        c = cfg.stages.copycat
        return [self.make_job(cfg, c, inputs={"model": c.model}, input_kinds={"model": policy_kinds()})]

    def run(self, ctx):
        if not ctx.is_main:
            return None
        with ctx.publish(metrics={"copied": ctx.inputs["model"].ref}) as pub:
            shutil.copytree(ctx.inputs["model"].model_path, pub.dir / "model")
        return pub.artifact


STAGE = CopycatStage()
'''


@pytest.fixture
def copycat(tmp_path, monkeypatch):
    from camelid.stages import register, unregister

    (tmp_path / "copycat_stage.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    register("copycat", "copycat_stage:STAGE")  # the one line a new stage adds (camelid.stages.STAGES)
    yield
    unregister("copycat")
    sys.modules.pop("copycat_stage", None)


def test_a_stage_in_its_own_module_needs_one_registration_line(copycat, tmp_path, capsys):
    from camelid.cli import main
    from camelid.stages import artifact_kinds, policy_kinds

    assert "copycat" in artifact_kinds() and "copycat" in policy_kinds()
    assert main(["--help"]) == 0
    assert "Copy a policy under a new name (a throwaway stage)" in capsys.readouterr().out
    common = ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(tmp_path / "reg"),
              f"runs_dir={tmp_path / 'runs'}"]
    assert main(["config", *common, "--explain", "stages.copycat"]) == 0
    assert "stages.copycat.model = \"base\"" in capsys.readouterr().out
    # camelid run: init (the new stage reads the toy base), its job, then sft from its artifact (sft accepts it:
    # a declared policy kind)
    assert main(["run", *common, "pipeline=[init, copycat, sft]", "stages.copycat.model=base", "stages.sft.model=copycat",
                 "stages.sft.max_steps=2", "stages.sft.eval_prompts.n=2"]) == 0
    registry = Registry(tmp_path / "reg")
    copy, sft = registry.resolve("copycat"), registry.resolve("sft")
    assert copy.kind == "copycat" and copy.manifest["metrics"]["copied"] == "base@v1"
    assert sft.manifest["inputs"]["model"]["ref"] == "copycat@v1"
    # `camelid run` again: both up to date; the stage's own command runs it again
    capsys.readouterr()
    assert main(["run", *common, "pipeline=[copycat]", "stages.copycat.model=base"]) == 0
    assert registry.versions("copycat") == ["v1"]
    assert main(["copycat", *common, "stages.copycat.model=base"]) == 0
    assert capsys.readouterr().out.strip() == "copycat@v2"
