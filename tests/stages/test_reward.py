"""The reward stage on the micro profile: learns above chance, publishes, scores, resumes, fails cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from camelid.errors import CamelidError

# The micro profile has no SFT artifact: start both RMs from the toy base.
REPO = Path(__file__).resolve().parents[2]
FROM_BASE = ("stages.reward.helpfulness.init=base", "stages.reward.safety.init=base")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, micro_base_registry):
    """One safety RM run (with mixing, aux loss) shared by the tests below; ~40 s on 2 shared cores."""
    import shutil

    from camelid.config import load_config
    from camelid.registry import Registry
    from camelid.stage import run_job

    root = tmp_path_factory.mktemp("rm") / "registry"
    shutil.copytree(micro_base_registry, root)
    cfg = load_config(REPO / "pipelines.yaml", "micro", [
        f"registry={root}", f"runs_dir={root.parent / 'runs'}", *FROM_BASE,
        "stages.reward.safety.max_steps=24", "stages.reward.safety.learning_rate=1e-3",
        "stages.reward.safety.batch_size=8", "stages.reward.safety.save_steps=12",
        "stages.reward.safety.logging_steps=4",
        "stages.reward.safety.aux_safety_loss=0.5",
        "stages.reward.safety.data.n=256", "stages.reward.safety.eval_data.n=128",
        "stages.reward.helpfulness.eval_data.n=64"])
    registry = Registry(root)
    art = run_job(cfg, registry, "reward-safety")
    return cfg, registry, art


def test_safety_rm_learns_and_publishes(trained):
    cfg, registry, art = trained
    assert art.ref == "rm-safety@v1" and art.kind == "reward"
    m = art.manifest["metrics"]
    acc = m["eval"]["accuracy"]
    assert set(acc) == {"safety", "helpfulness"}  # own test set and the other objective's
    assert acc["safety"]["overall"] > 0.6, acc["safety"]  # chance is 0.5
    assert m["train"]["loss_last"] < m["train"]["loss_first"]
    # data rules were applied and counted
    d = m["data"]
    assert d["mix_added"] > 0
    assert "dropped_unsafe_chosen" in d and "dropped_too_long" in d
    assert d["train_pairs"] == d["loaded"] - d["dropped_unsafe_chosen"] + d["mix_added"] - d["dropped_too_long"]
    # calibration and PPO-threshold metrics
    cal = json.loads((art.path / "calibration.json").read_text())
    assert cal["method"] == "threshold" and cal["temperature"] > 0
    u = m["eval"]["unsafe_detection"]
    assert u["n_unsafe"] > 0 and 0 <= u["recall"] <= 1
    assert m["table8"] and (art.path / "scores.png").stat().st_size > 5000
    assert art.manifest["inputs"]["init"]["name"] == "base"
    assert art.manifest["config"] == {**cfg.stages.reward.safety.model_dump(mode="json"),
                                      "shared": {"safety_threshold": cfg.shared.safety_threshold}}


def test_scoring_api_shapes_calibration_and_padding(trained):
    _, registry, _ = trained
    from camelid.reward.scoring import load_reward_model

    rm = load_reward_model("rm-safety", registry)
    assert rm.model.config.num_labels == 1 and rm.model.config.pad_token_id == rm.tokenizer.pad_token_id
    convs = [[{"role": "user", "content": "What is 2 + 2?"}],
             [{"role": "user", "content": "How do I build a weapon at home?"}],
             [{"role": "user", "content": "Sort: c a b"}]]
    resp = ["4", "I can't help with that.", "a b c, which is the sorted list of the three letters you gave"]
    rm.tokenizer.padding_side = "right"
    right = rm.score(convs, resp)
    rm.tokenizer.padding_side = "left"
    left = rm.score(convs, resp)
    assert right.shape == (3,)
    torch.testing.assert_close(left, right, atol=1e-4, rtol=1e-4)
    one = rm.score(convs[2:], resp[2:])  # no padding at all
    torch.testing.assert_close(one, right[2:], atol=1e-4, rtol=1e-4)
    raw = rm.score(convs, resp, raw=True)
    torch.testing.assert_close(right, (raw - rm.calibration["offset"]) / rm.calibration["temperature"])


def test_resume_continues_from_the_checkpoint(trained, caplog):
    cfg, registry, _ = trained
    from camelid.stage import run_job

    # The run finished (checkpoint-24 of 24) and published: --resume returns that artifact, trains nothing (#29).
    assert run_job(cfg, registry, "reward-safety", resume=True).ref == "rm-safety@v1"
    assert registry.versions("rm-safety") == ["v1"]
    more = cfg.model_copy(deep=True)
    more.stages.reward.safety.max_steps = 28  # a resumable key raised: continue from checkpoint-24
    art = run_job(more, registry, "reward-safety", resume=True)
    assert art.ref == "rm-safety@v2"
    assert art.manifest["metrics"]["resumed_from"] == "checkpoint-24"


def test_unknown_init_ref_is_one_error_and_publishes_nothing(micro):
    from camelid.stage import run_job

    cfg, registry = micro("stages.reward.helpfulness.init=nosuchmodel")
    with pytest.raises(CamelidError, match="unknown reference 'nosuchmodel'"):
        run_job(cfg, registry, "reward-helpfulness")
    assert registry.versions("rm-helpfulness") == []


def test_empty_data_is_one_error_and_publishes_nothing(micro, tmp_path, capsys):
    from camelid.cli import main

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg, registry = micro()
    code = main(["reward", "--profile", "micro", "--registry", str(registry.root), f"runs_dir={tmp_path / 'runs'}",
                 "--objective", "helpfulness", *FROM_BASE,
                 f"stages.reward.helpfulness.data={{format: preference, path: {empty}}}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("camelid reward: error: ") and "empty" in err, err
    assert registry.versions("rm-helpfulness") == []


def test_two_processes_train_and_one_publishes(micro):
    """Under `accelerate launch` with 2 CPU processes both ranks train; rank 0 alone publishes and prints."""
    import os
    import subprocess
    import sys

    cfg, registry = micro("stages.reward.helpfulness.init=base")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "reward", "--objective", "helpfulness",
           "--config", str(Path(cfg.config_path)), "--profile", "micro", "--registry", str(cfg.registry_path()),
           f"runs_dir={cfg.runs_path()}", "stages.reward.helpfulness.init=base",
           "stages.reward.helpfulness.max_steps=4"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 process(es)" in out.stderr, "accelerate fell back to one process per launch"
    lines = out.stdout.splitlines()
    assert lines[-1] == "rm-helpfulness@v1" and lines.count("rm-helpfulness@v1") == 1  # rank 0 prints
    assert registry.versions("rm-helpfulness") == ["v1"]


def test_bf16_reward_model_scores_through_an_fp32_head(trained):
    _, registry, _ = trained
    from camelid.reward.scoring import _fp32_head, load_reward_model

    convs = [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(6)]
    resp = [str(2 * i) for i in range(6)]
    rm = load_reward_model("rm-safety", registry, device="cpu", precision="fp32")
    fp32 = rm.score(convs, resp, raw=True)
    rm.model.to(torch.bfloat16)  # what precision=bf16 loads on a GPU (bf16 is refused on CPU)
    _fp32_head(rm.model)
    assert rm.model.score.weight.dtype == torch.float32 and rm.model.model.embed_tokens.weight.dtype == torch.bfloat16
    raw = rm.score(convs, resp, raw=True)
    assert raw.dtype == torch.float32
    torch.testing.assert_close(raw, fp32, atol=0.05 * fp32.abs().max().item() + 0.05, rtol=0.05)
