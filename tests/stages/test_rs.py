"""`camelid rs` on a 2-layer model: publishes the kept answers and the fine-tuned policy, moves every weight,
resumes sampling after a kill with the same kept set, runs on 2 processes, and refuses bad settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ppo_fixtures  # noqa: E402  (tiny base, two reward models with spread-out heads, prompt files)

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return ppo_fixtures.build(tmp_path_factory.mktemp("rs-src"))


def overrides(built, root: Path, *extra: str) -> list[str]:
    """12 prompts in 3 batches of 4, K=4, from the fixture's base; the micro profile's fine-tune (4 steps)."""
    return [f"registry={root / 'registry'}", f"runs_dir={root / 'runs'}", "stages.rs.policy=base",
            f"stages.rs.prompts={{format: prompts, path: {built['ppo']}, n: 12}}", "stages.rs.k=4",
            "stages.rs.batch_size=4", "stages.rs.max_new_tokens=8", *extra]


def setup(built, root: Path, *extra: str):
    from camelid.config import load_config
    from camelid.registry import Registry

    shutil.copytree(built["registry"], root / "registry")
    cfg = load_config(REPO / "pipelines.yaml", "micro", overrides(built, root, *extra))
    return cfg, Registry(root / "registry")


def kept_rows(art) -> list[dict]:
    return [json.loads(line) for line in (art.path / "kept.jsonl").read_text().splitlines()]


def weights(model_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


@pytest.fixture(scope="module")
def published(built, tmp_path_factory):
    """`camelid rs` through the CLI, once: (registry, rs-sample artifact, rs artifact, stdout)."""
    import io
    from contextlib import redirect_stdout

    from camelid.cli import main

    root = tmp_path_factory.mktemp("rs-cli")
    cfg, registry = setup(built, root)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["rs", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
                     *overrides(built, root)]) == 0
    return registry, registry.resolve("rs-sample"), registry.resolve("rs"), out.getvalue()


def test_publishes_the_kept_answers_then_the_fine_tuned_policy(published):
    registry, samples, rs, stdout = published
    assert stdout.split() == ["rs-sample@v1", "rs@v1"]
    assert samples.kind == "dataset" and rs.kind == "rs"
    assert {r: i["ref"] for r, i in samples.manifest["inputs"].items()} == {
        "policy": "base@v1", "reward_helpfulness": "rm-helpfulness@v1", "reward_safety": "rm-safety@v1"}
    assert {r: i["ref"] for r, i in rs.manifest["inputs"].items()} == {"model": "base@v1", "samples": "rs-sample@v1"}
    assert samples.manifest["config"]["shared"] == {"safety_threshold": 0.15}
    assert "finetune" not in samples.manifest["config"]  # fine-tune settings don't invalidate the samples
    assert rs.manifest["config"]["data"]["path"] == "registry:rs-sample"

    sel = samples.manifest["metrics"]["selection"]
    assert sel["prompts"] == 12 and sel["k"] == 4 and sel["samples"] == 48
    curve = sel["k_curve"]
    assert [k for k, _ in curve] == [1, 2, 4]
    values = [v for _, v in curve]
    assert values == sorted(values)  # best of more samples is never worse
    assert values[0] == pytest.approx(sel["mean_reward"], abs=1e-6)
    assert values[-1] == pytest.approx(sel["mean_best_of_k"], abs=1e-6)
    assert sel["mean_best_of_k"] > sel["mean_reward"]  # the random-head RMs spread the 4 answers apart
    assert samples.manifest["metrics"]["oracle"] is None  # plain prompt files: no oracle to judge the samples

    rows = kept_rows(samples)
    assert len(rows) == sel["kept"] == 12 - sel["dropped_empty"] > 0
    assert all(r["messages"][-1]["role"] == "assistant" and r["messages"][-1]["content"].strip() for r in rows)
    assert sel["mean_kept_reward"] == pytest.approx(sum(r["meta"]["reward"] for r in rows) / len(rows), abs=1e-6)

    m = rs.manifest["metrics"]
    assert m["selection"] == sel  # rs/vN carries the selection statistics
    assert m["steps"] == 4 and m["data"]["train"]["kept"] == len(rows) and m["world_size"] == 1


def test_kept_answers_read_back_as_sft_data_through_a_registry_path(published, monkeypatch):
    import camelid.registry
    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec

    registry, samples, _, _ = published
    monkeypatch.setattr(camelid.registry, "_default_root", registry.root)
    data = load_records(DataSpec(format="messages", path="registry:rs-sample"), "sft")
    assert [r.messages for r in data.records] == [r["messages"] for r in kept_rows(samples)]


def test_fine_tune_moves_every_trainable_parameter(published):
    registry, _, rs, _ = published
    before, after = weights(registry.resolve("base").model_path), weights(rs.model_path)
    assert before.keys() == after.keys()
    assert [k for k in before if torch.equal(before[k], after[k])] == []


def test_sampling_resumed_after_a_kill_keeps_the_same_answers(built, tmp_path, published, monkeypatch):
    from camelid.rs.recipe import RejectionSampler
    from camelid.stage import run_job

    cfg, registry = setup(built, tmp_path)
    real = RejectionSampler._sample_batch
    calls = []

    def dies_at_the_third_batch(self, b, prompts):
        calls.append(b)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(self, b, prompts)

    monkeypatch.setattr(RejectionSampler, "_sample_batch", dies_at_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run_job(cfg, registry, "rs-sample")
    assert registry.versions("rs-sample") == []
    art = run_job(cfg, registry, "rs-sample", resume=True)
    assert calls == [0, 1, 2, 2]  # the resumed run samples only the unfinished batch
    assert art.manifest["metrics"]["resumed_batches"] == 2
    assert art.manifest["metrics"]["resumed_from"] == "checkpoint-2"
    assert kept_rows(art) == kept_rows(published[1])  # the same answers as the uninterrupted run
    assert art.manifest["metrics"]["selection"] == published[1].manifest["metrics"]["selection"]


def test_two_processes_publish_once_and_sample_the_same_answers(built, tmp_path, published):
    cfg, registry = setup(built, tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "rs", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
           *overrides(built, tmp_path, "stages.rs.finetune.eval_prompts=null")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["rs-sample@v1", "rs@v1"]  # only rank 0 publishes and prints
    assert registry.versions("rs-sample") == ["v1"] and registry.versions("rs") == ["v1"]
    samples = registry.resolve("rs-sample")
    assert samples.manifest["metrics"]["world_size"] == 2 and registry.resolve("rs").manifest["metrics"]["world_size"] == 2
    assert kept_rows(samples) == kept_rows(published[1])  # a batch's seed, not the process count, fixes its answers


def test_margin_over_the_greedy_answer_and_nothing_kept_is_a_clear_error(built, tmp_path):
    from camelid.config import load_config
    from camelid.errors import DataError
    from camelid.stage import run_job

    cfg, registry = setup(built, tmp_path, "stages.rs.margin=0.5")
    samples = run_job(cfg, registry, "rs-sample")
    sel = samples.manifest["metrics"]["selection"]
    rows = kept_rows(samples)
    assert 0 < sel["kept"] == len(rows) < 12 and sel["kept"] + sel["dropped_below_margin"] + sel["dropped_empty"] == 12
    assert all(r["meta"]["reward"] - r["meta"]["current_reward"] > 0.5 for r in rows)
    assert "mean_current_reward" in sel

    cfg = load_config(REPO / "pipelines.yaml", "micro", overrides(built, tmp_path, "stages.rs.margin=1000"))
    samples = run_job(cfg, registry, "rs-sample")
    sel = samples.manifest["metrics"]["selection"]
    assert sel["kept"] == 0 and sel["dropped_below_margin"] + sel["dropped_empty"] == 12
    with pytest.raises(DataError, match="kept no answers.*lower stages.rs.margin"):
        run_job(cfg, registry, "rs")
    assert registry.versions("rs") == []


def test_label_filter_keeps_no_answer_on_the_wrong_side_of_a_toy_prompts_label(built, tmp_path):
    """stages.rs.label_filter through the recipe: toy prompts carry meta.kind, so a kept answer to a harmful prompt
    is a refusal and one to a borderline prompt is not (the fixture's base never refuses: its harmful prompts keep
    nothing)."""
    from camelid.data.load import load_records
    from camelid.data.records import labelled_group
    from camelid.eval.refusal import is_refusal
    from camelid.stage import run_job

    cfg, registry = setup(built, tmp_path, "stages.rs.label_filter=true",
                          "stages.rs.prompts={format: toy, split: ppo, n: 12}")
    prompts = load_records(cfg.stages.rs.prompts, "prompts").records
    labels = [labelled_group(p) for p in prompts]
    assert "harmful" in labels and "borderline" in labels
    samples = run_job(cfg, registry, "rs-sample")
    sel, rows = samples.manifest["metrics"]["selection"], kept_rows(samples)
    assert sel["kept"] == len(rows) and sel["kept"] + sel["dropped_empty"] + sel["dropped_off_label"] == 12
    for r in rows:
        label = labels[r["meta"]["prompt_index"]]
        if label in ("harmful", "borderline"):
            assert is_refusal(r["messages"][-1]["content"]) == (label == "harmful"), r
    kept_harmful = sum(1 for r in rows if labels[r["meta"]["prompt_index"]] == "harmful")
    assert sel["dropped_off_label"] == labels.count("harmful") - kept_harmful > 0  # every sample complied


@pytest.mark.parametrize("override,match", [
    ("stages.rs.finetune.model=base", "finetune.model is set by rs.policy"),
    ("stages.rs.temperature=0", "stages.rs.temperature: must be > 0"),
    ("stages.rs.k=0", "stages.rs.k: must be >= 1"),
    ("stages.rs.finetune.lr=1", "stages.rs.finetune.lr: unknown key"),
])
def test_bad_settings_are_config_errors(override, match):
    from camelid.config import load_config
    from camelid.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        load_config(REPO / "pipelines.yaml", "micro", [override])


def test_reward_input_of_the_wrong_kind_is_refused_before_sampling(built, tmp_path):
    from camelid.errors import ConfigError
    from camelid.stage import run_job

    cfg, registry = setup(built, tmp_path, "stages.rs.reward_safety=base")
    with pytest.raises(ConfigError, match="input reward_safety='base' is a base artifact"):
        run_job(cfg, registry, "rs-sample")
    assert not cfg.runs_path().exists()
