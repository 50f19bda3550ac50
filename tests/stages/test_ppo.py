"""`camelid ppo` on a 2-layer model: publishes, changes the policy, resumes exactly, stops on NaN, runs on 2 processes."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ppo_fixtures  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("CAMELID_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return ppo_fixtures.build(tmp_path_factory.mktemp("ppo-src"))


def _setup(built, tmp_path, *extra):
    from camelid.config import load_config
    from camelid.registry import Registry

    reg = tmp_path / "registry"
    shutil.copytree(built["registry"], reg)
    paths = {**built, "registry": reg}
    cfg = load_config(REPO / "pipelines.yaml", "micro", ppo_fixtures.overrides(paths, tmp_path / "runs", *extra))
    return cfg, Registry(reg)


def _run(cfg, registry, *, resume: bool = False, callbacks: list | None = None):
    """`camelid ppo` through the stage driver; ``callbacks`` reach the trainer as the job's options."""
    from camelid.ppo.stage import PPOOptions
    from camelid.stage import execute
    from camelid.stages import job_for

    job = job_for(cfg, "ppo")
    if callbacks:
        job = job.replace(options=PPOOptions(callbacks=tuple(callbacks)))
    return execute(cfg, registry, job, resume=resume)


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(built, tmp_path_factory):
    """One full micro run (3 iterations, checkpoints every 2): its artifact and registry."""
    cfg, registry = _setup(built, tmp_path_factory.mktemp("ppo-full"))
    return _run(cfg, registry), registry


def test_micro_run_publishes_and_changes_the_policy(uninterrupted):
    art, registry = uninterrupted
    assert art.ref == "ppo@v1" and art.kind == "ppo"
    assert set(art.manifest["inputs"]) == {"policy", "reward_helpfulness", "reward_safety", "value_init"}
    from camelid.stages import job_for

    assert art.manifest["config"] == published_job_config(registry, job_for)
    before, after = _weights(registry.resolve("base").model_path), _weights(art.model_path)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged: {sorted(set(before) - set(changed))}"
    assert (Path(art.model_path) / "tokenizer.json").is_file()
    m = art.manifest["metrics"]
    assert m["iterations"] == 3 and len(m["evals"]) == 2  # before (iteration 0) and at iteration 2
    last = m["train_last"]
    for key in ("reward/helpfulness", "reward/safety", "reward/combined", "kl", "entropy", "clip_fraction",
                "loss/value", "approx_kl", "response_length", "safety_share", "time/generation",
                "time/scoring", "time/training"):
        assert key in last and last[key] == last[key], key
    assert "kl" in m["eval"] and "reward/combined" in m["eval_before"]


def published_job_config(registry, job_for):
    """The config the published section re-derives as a job (section + shared settings: what `camelid run` hashes)."""
    from camelid.config import load_config

    published = dict(registry.resolve("ppo").manifest["config"])
    assert published.pop("shared") == {"safety_threshold": 0.15}
    cfg = load_config(REPO / "pipelines.yaml", "micro")
    cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(
        update={"ppo": cfg.stages.ppo.model_validate(published)})})
    return job_for(cfg, "ppo").config


def test_resume_matches_the_uninterrupted_run(uninterrupted, built, tmp_path):
    from camelid.ppo.trainer import StopTraining

    full, full_registry = uninterrupted
    cfg, registry = _setup(built, tmp_path)

    def kill_after_3(trainer, metrics):  # dies after iteration 3, before its checkpoint: checkpoint-2 survives
        if trainer.iteration == 3:
            raise StopTraining

    with pytest.raises(StopTraining):
        _run(cfg, registry, callbacks=[kill_after_3])
    assert registry.versions("ppo") == []
    runs = [p for p in (tmp_path / "runs" / "ppo").iterdir() if p.is_dir()]  # not the run's <key>.lock beside it
    assert [p.name for p in runs[0].glob("checkpoint-*")] == ["checkpoint-2"]

    resumed = _run(cfg, registry, resume=True)
    want, got = full.manifest["metrics"], resumed.manifest["metrics"]
    assert got["iterations"] == 3
    for key in ("reward/combined", "reward/helpfulness", "kl", "loss/policy", "loss/value", "approx_kl",
                "entropy", "reward/whitened"):
        assert got["train_last"][key] == pytest.approx(want["train_last"][key], rel=1e-4, abs=1e-6), key
    assert got["eval"]["reward/combined"] == pytest.approx(want["eval"]["reward/combined"], rel=1e-4, abs=1e-6)
    a, b = _weights(full.model_path), _weights(resumed.model_path)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_the_last_iterations_evaluation_is_the_final_one(built, tmp_path, monkeypatch):
    """eval_every dividing iterations: the policy is evaluated twice (before, after), not three times; the final
    evaluation's greedy scores are recorded as the last iteration's `evals` row (the same policy and answers)."""
    from camelid.ppo.trainer import PPOTrainer

    calls = []
    evaluate = PPOTrainer.evaluate

    def counting(self, **kw):
        calls.append((self.iteration, kw.get("sampled_kl", False)))
        return evaluate(self, **kw)

    monkeypatch.setattr(PPOTrainer, "evaluate", counting)
    cfg, registry = _setup(built, tmp_path, "stages.ppo.iterations=2")
    m = _run(cfg, registry).manifest["metrics"]
    assert calls == [(0, False), (2, True)]
    assert [e["iteration"] for e in m["evals"]] == [0, 2]
    assert m["evals"][1] == {"iteration": 2, **{k: v for k, v in m["eval"].items() if k != "kl"}}
    assert "kl" in m["eval"]


def test_nan_stops_with_a_message_and_publishes_nothing(built, tmp_path):
    from camelid.ppo.trainer import TrainingDiverged

    cfg, registry = _setup(built, tmp_path, "stages.ppo.save_every=1")

    class NaNScorer:
        def score(self, conversations, responses):
            return torch.full((len(responses),), float("nan"))

    def poison_after_1(trainer, metrics):
        if trainer.iteration == 1:
            trainer.experience.rewards.safety = NaNScorer()  # the safety RM the experience maker scores with

    with pytest.raises(TrainingDiverged, match=r"iteration 2: a reward model score is NaN or inf.*checkpoint-1"):
        _run(cfg, registry, callbacks=[poison_after_1])
    assert registry.versions("ppo") == []
    run_dir = next(p for p in (tmp_path / "runs" / "ppo").iterdir() if p.is_dir())  # not <key>.lock
    assert [p.name for p in run_dir.glob("checkpoint-*")] == ["checkpoint-1"]


def test_cli_runs_on_two_processes_under_accelerate(built, tmp_path):
    cfg, registry = _setup(built, tmp_path)
    ppo_fixtures.run_on_two_processes({**built, "registry": tmp_path / "registry"}, tmp_path, "stages.ppo.iterations=2")
    art = registry.resolve("ppo@v1")
    assert art.manifest["metrics"]["iterations"] == 2


def test_lora_mode_publishes_merged_weights_and_adapter(built, tmp_path):
    cfg, registry = _setup(built, tmp_path, "stages.ppo.mode=lora", "stages.ppo.lora.r=4",
                           "stages.ppo.iterations=2", "stages.ppo.eval_prompts=null")
    art = _run(cfg, registry)
    before, after = _weights(registry.resolve("base").model_path), _weights(art.model_path)
    assert set(after) == set(before)  # a plain merged model, loadable without peft
    assert any(not torch.equal(before[k], after[k]) for k in before if "proj" in k)
    assert (art.path / "adapter" / "adapter_config.json").is_file()


def test_activation_checkpointing_trains_the_same_policy(uninterrupted, built, tmp_path):
    art, registry = uninterrupted
    cfg, reg2 = _setup(built, tmp_path, "stages.ppo.activation_checkpointing=true")
    seen = []

    def check(trainer, metrics):
        seen.append((trainer.unwrapped_policy.is_gradient_checkpointing,
                     trainer.unwrapped_value.model.is_gradient_checkpointing))

    art2 = _run(cfg, reg2, callbacks=[check])
    assert seen and all(s == (True, True) for s in seen)
    a, b = _weights(art.model_path), _weights(art2.model_path)
    assert set(a) == set(b)
    for k in a:  # recomputed activations: the same gradients, so the same weights
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_resume_for_more_iterations_continues_and_other_changes_are_refused(built, tmp_path):
    """#15: `camelid ppo --resume stages.ppo.iterations=N` finds its run (it used to start over silently)."""
    from camelid.errors import ConfigError

    common = ("stages.ppo.eval_prompts=null", "stages.ppo.save_every=1")
    cfg, registry = _setup(built, tmp_path, "stages.ppo.iterations=2", *common)
    first = _run(cfg, registry)
    assert first.manifest["metrics"]["iterations"] == 2
    more = cfg.model_copy(deep=True)
    more.stages.ppo.iterations = 3
    art = _run(more, registry, resume=True)
    m = art.manifest["metrics"]
    assert m["resumed_from"] == "checkpoint-2" and m["iterations"] == 3 and len(m["evals"]) == 0
    other = cfg.model_copy(deep=True)
    other.stages.ppo.iterations, other.stages.ppo.kl_coef = 4, 0.5
    with pytest.raises(ConfigError, match=r"stages.ppo.kl_coef \(0.1 -> 0.5\)"):
        _run(other, registry, resume=True)
    assert registry.versions("ppo") == ["v1", "v2"]  # the refused resume published nothing


def test_resume_pinned_to_the_same_policy_continues(built, tmp_path):
    """#29: `--resume stages.ppo.policy=base@v1` after a run from `base` (the same model) was refused as a
    changed setting ('base' -> 'base@v1'); the run key holds the inputs' content hashes, not their spelling."""
    cfg, registry = _setup(built, tmp_path, "stages.ppo.iterations=2", "stages.ppo.eval_prompts=null",
                           "stages.ppo.save_every=1")
    _run(cfg, registry)
    pinned = cfg.model_copy(deep=True)
    pinned.stages.ppo.iterations, pinned.stages.ppo.policy = 3, "base@v1"
    art = _run(pinned, registry, resume=True)
    assert art.manifest["metrics"]["resumed_from"] == "checkpoint-2" and art.manifest["metrics"]["iterations"] == 3


def test_value_warmup_trains_the_value_model_alone_first(built, tmp_path):
    cfg, registry = _setup(built, tmp_path, "stages.ppo.value_warmup=2", "stages.ppo.eval_prompts=null")
    seen = []

    def record(trainer, metrics):
        policy = {k: v.detach().clone() for k, v in trainer.unwrapped_policy.state_dict().items()}
        value = {k: v.detach().clone() for k, v in trainer.unwrapped_value.state_dict().items()}
        seen.append((trainer.iteration, "loss/policy" in metrics, policy, value))

    art = _run(cfg, registry, callbacks=[record])
    assert [(i, trained) for i, trained, _, _ in seen] == [(1, False), (2, False), (3, True)]
    start = _weights(registry.resolve("base").model_path)
    after_warmup, after_all = seen[1][2], seen[2][2]
    assert all(torch.equal(after_warmup[k], start[k]) for k in start)  # the policy waited for the value model
    assert any(not torch.equal(after_all[k], start[k]) for k in start)
    assert any(not torch.equal(seen[0][3][k], seen[1][3][k]) for k in seen[0][3])  # the value model trained
    assert art.manifest["metrics"]["iterations"] == 3
