"""A stage's declaration is the one source of truth: core imports no stage and builds the config sections, the
registry's kinds and the policy kinds from the declarations; recipes read their job, not the pipeline config."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from camelid.stages import STAGES, all_stages, artifact_kinds, get_stage, policy_kinds

REPO = Path(__file__).resolve().parents[2]


def _package_dirs() -> dict[str, str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def _stage_packages() -> set[str]:
    """The top-level folders' packages (camelid.sft, ...) that hold a registered stage's declaration."""
    modules = [target.partition(":")[0] for target in STAGES.values()]
    return {pkg for pkg in _package_dirs() if pkg != "camelid" and any(m.startswith(pkg + ".") for m in modules)}


def test_importing_core_loads_no_stage():
    code = ("import sys, camelid.config, camelid.registry, camelid.stage, camelid.stages, camelid.cli, camelid.runs; "
            f"stages = {sorted(_stage_packages())!r}; "
            "print([m for m in sys.modules if any(m == s or m.startswith(s + '.') for s in stages)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_core_source_has_no_stage_import():
    stages = _stage_packages()
    assert {"camelid.sft", "camelid.reward", "camelid.ppo", "camelid.rs", "camelid.rounds", "camelid.eval"} <= stages
    found = []
    for path in sorted((REPO / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                      if any(n == s or n.startswith(s + ".") for s in stages)]
    assert found == []


def test_recipes_read_their_job_not_the_pipeline_config():
    """ctx.cfg is the driver's (run folders, keep_checkpoints); a recipe reads ctx.job / ctx.section."""
    found = []
    for pkg in _stage_packages():
        for path in sorted((REPO / _package_dirs()[pkg]).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if "ctx.cfg" in line:
                    found.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert found == []


def test_config_sections_kinds_and_policies_come_from_the_declarations():
    from camelid.config import PipelineConfig

    stages_fields = PipelineConfig.model_fields["stages"].annotation.model_fields
    for stage in all_stages():
        model = stage.section_model()
        if model is None:
            assert stage.name not in stages_fields
        elif stage.config_key:
            assert PipelineConfig.model_fields[stage.config_key].annotation is model
        else:
            assert stages_fields[stage.name].annotation is model
        for spec in stage.job_specs:
            assert spec.kind in artifact_kinds()
            assert (spec.kind in policy_kinds()) >= spec.policy
    assert {"base", "sft", "ppo", "rs"} <= set(policy_kinds()) and "reward" not in policy_kinds()


def test_rs_declares_its_two_jobs_each_with_its_own_kind_and_marker():
    rs = get_stage("rs")
    sample, finetune = (rs.spec(name) for name in ("rs-sample", "rs"))
    assert (sample.kind, finetune.kind) == ("dataset", "rs")
    assert sample.checkpoint_marker != finetune.checkpoint_marker == "trainer_state.json"
    assert finetune.policy and not sample.policy


def test_jobs_are_frozen_and_carry_what_their_recipe_reads():
    import dataclasses

    from camelid.config import load_config
    from camelid.stages import job_for

    cfg = load_config(REPO / "pipelines.yaml", "micro", ["device=cpu"])
    job = job_for(cfg, "reward-safety")
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "other"
    assert job.runtime.device == "cpu" and job.options.objective == "safety"
    assert job.options.other.output == cfg.stages.reward.helpfulness.output  # Table 8's other RM
    assert job.settings == cfg.stages.reward.safety and job.settings is not cfg.stages.reward.safety
