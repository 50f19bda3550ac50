"""`camelid ppo` with each advantage estimator (#26) on a 2-layer model: publishes and moves every weight, builds
no value model without a critic, resumes step for step, runs on 2 processes, ignores value_warmup with a log line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ppo_fixtures  # noqa: E402
from test_ppo import REPO, _run, _setup, _weights  # noqa: E402

os.environ.setdefault("CAMELID_NO_PROGRESS", "1")
SAMPLES = {"gae": 1, "grpo": 2, "rloo": 2, "reinforce++": 1, "reinforce++-baseline": 4}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return ppo_fixtures.build(tmp_path_factory.mktemp("ppo-est-src"))


def _args(name: str, *extra: str) -> tuple[str, ...]:
    return (f"stages.ppo.advantage={name}", f"stages.ppo.samples_per_prompt={SAMPLES[name]}", *extra)


@pytest.mark.parametrize("name", ["grpo", "rloo", "reinforce++", "reinforce++-baseline"])
def test_a_micro_run_per_critic_free_estimator_publishes_and_moves_every_weight(built, tmp_path, name):
    cfg, registry = _setup(built, tmp_path, *_args(name))
    seen = []

    def check(trainer, metrics):
        seen.append((trainer.value, trainer.opt_v, trainer.experience.value, sorted(metrics)))

    art = _run(cfg, registry, callbacks=[check])
    assert art.ref == "ppo@v1"
    assert set(art.manifest["inputs"]) == {"policy", "reward_helpfulness", "reward_safety"}  # value_init unresolved
    assert art.manifest["config"]["advantage"] == name
    before, after = _weights(registry.resolve("base").model_path), _weights(art.model_path)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged
    assert all(v is None and o is None and e is None for v, o, e, _ in seen)
    keys = set(seen[-1][3])
    assert not keys & {"loss/value", "grad_norm/value", "value_clip_fraction"}
    assert ("loss/kl" in keys) == (name == "grpo")
    m = art.manifest["metrics"]
    assert m["iterations"] == 3 and m["train_last"]["loss/policy"] == m["train_last"]["loss/policy"]
    assert "reward/combined" in m["eval"]
    [ckpt] = (tmp_path / "runs" / "ppo").glob("*/checkpoint-*")  # the last one, kept after the publish
    files = sorted(p.name for p in ckpt.iterdir())
    assert "value" not in files and "optimizer_value.pt" not in files and "policy" in files


def test_gae_through_the_estimator_switch_is_unchanged(built, tmp_path):
    """advantage: gae (the default) with samples_per_prompt 1 is the run test_ppo pins: value model and all."""
    cfg, registry = _setup(built, tmp_path, "stages.ppo.iterations=1", "stages.ppo.eval_prompts=null")
    assert cfg.stages.ppo.advantage == "gae" and cfg.stages.ppo.samples_per_prompt == 1
    art = _run(cfg, registry)
    assert set(art.manifest["inputs"]) == {"policy", "reward_helpfulness", "reward_safety", "value_init"}
    assert "loss/value" in art.manifest["metrics"]["train_last"]


def test_a_critic_free_run_resumes_step_for_step(built, tmp_path_factory):
    from camelid.ppo.trainer import StopTraining

    args = _args("rloo", "stages.ppo.eval_prompts=null")
    cfg, registry = _setup(built, tmp_path_factory.mktemp("full"), *args)
    full = _run(cfg, registry)
    tmp = tmp_path_factory.mktemp("killed")
    cfg, registry = _setup(built, tmp, *args)

    def kill_after_3(trainer, metrics):  # dies after iteration 3, before its checkpoint: checkpoint-2 survives
        if trainer.iteration == 3:
            raise StopTraining

    with pytest.raises(StopTraining):
        _run(cfg, registry, callbacks=[kill_after_3])
    resumed = _run(cfg, registry, resume=True)
    want, got = full.manifest["metrics"], resumed.manifest["metrics"]
    assert got["resumed_from"] == "checkpoint-2" and got["iterations"] == 3
    for key in ("reward/combined", "kl", "loss/policy", "approx_kl", "entropy", "reward/whitened"):
        assert got["train_last"][key] == pytest.approx(want["train_last"][key], rel=1e-4, abs=1e-6), key
    a, b = _weights(full.model_path), _weights(resumed.model_path)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_value_warmup_is_ignored_with_a_log_line_and_lora_trains(built, tmp_path, caplog):
    cfg, registry = _setup(built, tmp_path, *_args("grpo", "stages.ppo.value_warmup=5", "stages.ppo.iterations=2",
                                                   "stages.ppo.eval_prompts=null", "stages.ppo.mode=lora",
                                                   "stages.ppo.lora.r=4"))
    trained = []
    with caplog.at_level(logging.INFO, logger="camelid"):
        art = _run(cfg, registry, callbacks=[lambda trainer, metrics: trained.append("loss/policy" in metrics)])
    assert trained == [True, True]  # the policy trains from the first iteration
    assert any("value_warmup=5 is ignored" in r.getMessage() for r in caplog.records)
    before, after = _weights(registry.resolve("base").model_path), _weights(art.model_path)
    assert any(not torch.equal(before[k], after[k]) for k in before if "proj" in k)


def test_grpo_runs_on_two_processes_under_accelerate(built, tmp_path):
    _setup(built, tmp_path)  # copies the registry into tmp_path
    out = ppo_fixtures.run_on_two_processes({**built, "registry": tmp_path / "registry"}, tmp_path,
                                            "stages.ppo.iterations=2", *_args("grpo"))
    assert "advantage grpo (no value model)" in out.stderr


def test_the_refusal_drift_command_prints_a_table_per_prompt_type(built, tmp_path, capsys):
    """`python -m camelid.ppo.refusal_drift` (the #26 measurement) on the fixtures: GAE with 2 samples per prompt
    records the run's and the per-prompt baseline's advantages of every rollout; no run folder is left behind."""
    import json

    from camelid.ppo import refusal_drift

    _setup(built, tmp_path)  # copies the registry into tmp_path
    args = ppo_fixtures.overrides({**built, "registry": tmp_path / "registry"}, tmp_path / "runs",
                                  "stages.ppo.iterations=2", "stages.ppo.samples_per_prompt=2",
                                  "stages.ppo.eval_prompts=null")
    out = tmp_path / "drift.json"
    assert refusal_drift.main(["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--out", str(out),
                               *args]) == 0
    assert "| prompt type | answers | n |" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert len(saved["rows"]) == 2 * 8 and all(r["baseline"] is not None for r in saved["rows"])
    assert {r["prompt_type"] for r in saved["rows"]} <= {"safety", "other"}  # the fixtures' prompts have no kind
    assert not (tmp_path / "runs").exists()
