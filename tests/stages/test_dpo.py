"""`camelid dpo` on the micro profile: it moves every weight and publishes a policy that every stage taking a
policy accepts, resumes after a kill as the uninterrupted run, runs on 2 processes, runs inside a pipeline
before compare, and refuses bad input before the first step without touching the registry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from camelid.errors import CamelidError, ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sft_registry(tmp_path_factory, micro_base_registry):
    """The micro base and its 8-step sft/v1, built once for the module."""
    from camelid.config import load_config
    from camelid.registry import Registry
    from camelid.stage import run_job

    root = tmp_path_factory.mktemp("dpo-src") / "registry"
    shutil.copytree(micro_base_registry, root)
    cfg = load_config(REPO / "pipelines.yaml", "micro", [f"registry={root}", f"runs_dir={root.parent / 'runs'}"])
    run_job(cfg, Registry(root), "sft")
    return root


@pytest.fixture
def micro_sft(tmp_path, sft_registry):
    """Factory: micro_sft(*overrides) -> (PipelineConfig, Registry) on a private copy holding base and sft."""
    from camelid.config import load_config
    from camelid.registry import Registry

    root = tmp_path / "registry"
    shutil.copytree(sft_registry, root)

    def make(*overrides: str):
        cfg = load_config(REPO / "pipelines.yaml", "micro",
                          [f"registry={root}", f"runs_dir={tmp_path / 'runs'}", *overrides])
        return cfg, Registry(root)

    return make


def cli_args(cfg, *overrides: str) -> list[str]:
    return ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(cfg.registry_path()),
            f"runs_dir={cfg.runs_path()}", *overrides]


def weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".staging" not in p.parts)


def test_dpo_moves_every_weight_and_publishes_a_policy(micro_sft, capsys):
    from camelid.cli import main

    cfg, registry = micro_sft()
    assert main(["dpo", *cli_args(cfg)]) == 0
    assert capsys.readouterr().out.strip() == "dpo@v1"
    art = registry.resolve("dpo")
    assert art.kind == "dpo" and art.manifest["inputs"]["policy"]["ref"] == "sft@v1"
    m = art.manifest["metrics"]
    assert m["steps"] == 4 and m["world_size"] == 1
    assert m["train_loss_first"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 1: log 2
    assert m["data"]["train_pairs"] == m["data"]["loaded"] - m["data"]["dropped_unsafe_chosen"] + m["data"]["mix_added"]
    assert {"loss", "reward_accuracy", "reward_margin"} <= set(m["eval"])
    # The sft stage's evaluation, so compare and manifests line up.
    assert {"helpfulness", "harmful_refusal", "over_refusal", "task_accuracy"} <= set(m["oracle"])
    assert len((art.path / "generations.jsonl").read_text().splitlines()) == 8
    assert set(art.manifest["data"]) == {"train", "mix", "eval", "eval_prompts"}
    # TRL-style: every trainable parameter moved away from the starting policy.
    before, after = weights(registry.resolve("sft").model_path), weights(art.model_path)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged}"


def test_own_answers_put_the_models_compliance_in_as_the_rejected_answer(micro_sft, monkeypatch, tmp_path):
    """stages.dpo.own_answers: the named model answers the prompts of the pairs with a refusal on one side (the
    micro models answer with nothing, so generation is stood in for: one compliance, one refusal); a compliance
    becomes the rejected side of a harmful pair, the model is an input of the artifact, and a second run reads the
    answers from the generation cache instead of loading the model."""
    import camelid.models
    from camelid.data.load import load_records
    from camelid.stage import run_job

    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path / "cache"))
    calls = []

    def stand_in(model, tokenizer, conversations, **kw):
        calls.append((len(conversations), kw["max_new_tokens"], kw["temperature"]))
        return ["Sure, here is how." if i % 2 else "I can't help with that." for i in range(len(conversations))]

    monkeypatch.setattr(camelid.models, "generate", stand_in)
    cfg, registry = micro_sft("stages.dpo.own_answers={model: base, max_new_tokens: 12}")
    refusing = [p for p in load_records(cfg.stages.dpo.data, "pairs").records
                if p.chosen_safe and p.rejected_safe is False]
    art = run_job(cfg, registry, "dpo")
    own = art.manifest["metrics"]["data"]["own_answers"]
    assert art.manifest["inputs"]["own_answers"]["ref"] == "base@v1"
    assert own["model"] == "base@v1" and own["from_cache"] is False
    assert calls[0] == (own["answered"], 12, 0.0) and own["answered"] >= len(refusing) > 0
    assert own["rejected_replaced"] > 0 and own["refused"] > 0 and own["chosen_replaced"] == 0  # sides: [rejected]
    assert own["answered"] == own["rejected_replaced"] + own["chosen_replaced"] + own["refused"] + own["unusable"]
    calls.clear()
    again = run_job(cfg, registry, "dpo")
    assert not [c for c in calls if c[1] == 12]  # only the held-out prompts (16 tokens) were answered
    assert again.manifest["metrics"]["data"]["own_answers"]["from_cache"] is True
    assert again.manifest["metrics"]["data"]["own_answers"]["rejected_replaced"] == own["rejected_replaced"]


def test_the_dpo_policy_goes_wherever_a_policy_goes(micro_sft):
    """ppo's and rs's policy, compare's checkpoints, sft's model and a round's sampling take a dpo artifact
    (rounds.policy: dpo): the kinds come from the stage's declaration (policy=True), not from lists."""
    from camelid.data.spec import DataSpec
    from camelid.models import process_state
    from camelid.rounds.pairs import SampleSettings
    from camelid.stage import resolve_inputs, run_job
    from camelid.stages import get_stage, job_for, policy_kinds

    assert "dpo" in policy_kinds()
    cfg, registry = micro_sft("stages.dpo.max_steps=1", "stages.dpo.eval_data=null", "stages.dpo.eval_prompts=null")
    run_job(cfg, registry, "dpo")
    for name in ("rm-helpfulness", "rm-safety"):  # stand-ins: only the kinds are checked here
        with registry.publish(name, "reward", config={"stand-in": name}) as pub:
            (pub.dir / "README").write_text("stand-in\n")
    cfg, _ = micro_sft("stages.ppo.policy=dpo", "stages.rs.policy=dpo", "stages.sft.model=dpo",
                       "stages.compare.checkpoints=[sft, dpo]", "rounds.policy=dpo")
    settings = SampleSettings(round=1, output="answers-r1", prompts=DataSpec(format="toy", split="ppo", n=8),
                              offset=0, temperatures=(0.7, 1.0), top_p=1.0, max_new_tokens=8, seed=0, tries=1)
    jobs = [job_for(cfg, name) for name in ("ppo", "rs-sample", "compare", "sft")]
    jobs.append(get_stage("round").sample_job(cfg, settings, cfg.rounds.policy))
    state = process_state("cpu")
    for job in jobs:
        role = next(r for r, ref in job.inputs.items() if ref == "dpo")
        assert resolve_inputs(cfg, registry, job, state)[role].kind == "dpo", job.name
    rs = job_for(cfg, "rs")  # the fine-tune: its model is the policy (its samples are not published here)
    assert rs.inputs["model"] == "dpo" and "dpo" in rs.input_kinds["model"]


def test_kill_then_resume_continues_the_uninterrupted_run(micro_sft):
    from camelid.stage import run_job

    steps = 120  # ~0.1 s a step: long enough that the kill lands mid-training
    overrides = [f"stages.dpo.max_steps={steps}", "stages.dpo.save_steps=4", "stages.dpo.eval_prompts.n=4",
                 "stages.dpo.logging_steps=1"]
    cfg, registry = micro_sft(*overrides)
    proc = subprocess.Popen([sys.executable, "-m", "camelid.cli", "dpo", *cli_args(cfg, *overrides)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = cfg.runs_path() / "dpo"
    deadline = time.time() + 150
    try:
        while time.time() < deadline and proc.poll() is None:
            if any((p / "trainer_state.json").is_file() for p in runs.glob("*/checkpoint-*")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert registry.versions("dpo") == []  # a killed run publishes nothing

    resumed = run_job(cfg, registry, "dpo", resume=True).manifest["metrics"]
    assert resumed["resumed_from"] and resumed["resumed_from"].startswith("checkpoint-")
    after = int(resumed["resumed_from"].split("-")[1])
    assert 0 < after < steps and resumed["steps"] == steps
    straight = run_job(cfg, registry, "dpo").manifest["metrics"]
    assert straight["resumed_from"] is None
    # The resumed run continues the uninterrupted one: the same losses after the checkpoint, so the reference
    # log-probs computed again on resume are the starting policy's, not the checkpoint's.
    a = [loss for step, loss in resumed["loss_curve"] if step > after]
    b = [loss for step, loss in straight["loss_curve"] if step > after]
    assert len(a) == steps - after
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    assert resumed["eval"]["loss"] == pytest.approx(straight["eval"]["loss"], rel=1e-3)


def test_two_processes_world_size_two(micro_sft):
    cfg, registry = micro_sft()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "dpo", *cli_args(cfg, "stages.dpo.eval_prompts.n=4")]
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["dpo@v1"]  # only rank 0 publishes and prints
    m = registry.resolve("dpo").manifest["metrics"]
    assert m["world_size"] == 2 and m["steps"] == 4


def test_lora_publishes_the_adapter_and_the_merged_policy(micro_sft):
    from peft import PeftConfig

    from camelid.stage import run_job

    cfg, registry = micro_sft("stages.dpo.mode=lora", "stages.dpo.lora.r=4", "stages.dpo.eval_prompts.n=4")
    art = run_job(cfg, registry, "dpo")
    assert PeftConfig.from_pretrained(str(art.path / "adapter")).r == 4
    m = art.manifest["metrics"]
    assert m["trainable_parameters"] < m["parameters"] / 2
    # The reference was the policy with its adapters off: the first step's loss is log 2, as in a full run.
    assert m["train_loss_first"] == pytest.approx(0.6931, abs=1e-3)
    merged, before = weights(art.model_path), weights(registry.resolve("sft").model_path)
    assert merged.keys() == before.keys()  # a plain model: no lora_ weights left
    changed = [k for k in before if not torch.equal(before[k], merged[k])]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # only the adapted linears moved


def test_micro_pipeline_runs_dpo_then_compare_reports_it(micro):
    from camelid.cli import main

    cfg, registry = micro()
    overrides = ["pipeline=[init, sft, reward, dpo, compare]", "stages.compare.checkpoints=[sft, dpo]"]
    assert main(["run", *cli_args(cfg, *overrides)]) == 0
    assert registry.versions("dpo") == ["v1"]
    report = registry.resolve("report")
    assert report.manifest["inputs"]["checkpoint1"]["ref"] == "dpo@v1"
    checkpoints = report.manifest["metrics"]["checkpoints"]
    assert set(checkpoints) == {"sft@v1", "dpo@v1"}
    assert "harmful_refusal_rate" in checkpoints["dpo@v1"]
    pairs = report.manifest["metrics"]["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("sft@v1", "dpo@v1")]
    assert "combined" in pairs[0]["win_rate"]  # judged by the reward models the pipeline trained
    answers = [json.loads(line) for line in (report.path / "answers.jsonl").read_text().splitlines()]
    assert all(set(row["answers"]) == {"sft@v1", "dpo@v1"} for row in answers) and len(answers) == 16
    # A second run finds every stage up to date: nothing is trained or published again.
    assert main(["run", *cli_args(cfg, *overrides)]) == 0
    assert registry.versions("dpo") == ["v1"] and registry.versions("report") == ["v1"]


@pytest.mark.parametrize("case", ["empty", "all_too_long", "policy_is_a_reward_model", "margin_with_ipo",
                                  "mix_without_mix_data", "missing_file", "own_answers_model_missing"])
def test_bad_input_is_refused_before_training_and_leaves_the_registry_untouched(micro_sft, tmp_path, case, capsys):
    from camelid.cli import main
    from camelid.stage import run_job

    data = tmp_path / "pairs.jsonl"
    long = "word " * 300
    rows = {"empty": [],
            "all_too_long": [{"prompt": [{"role": "user", "content": "hi"}], "chosen": long, "rejected": "no"}]}
    data.write_text("".join(json.dumps(r) + "\n" for r in rows.get(case, [])))
    overrides = ["stages.dpo.mix_data=null", "stages.dpo.mix_share=0"]
    if case in rows:
        overrides.append(f"stages.dpo.data={{format: preference, path: {data}}}")
    if case == "missing_file":
        overrides.append(f"stages.dpo.data={{format: preference, path: {tmp_path / 'nowhere.jsonl'}}}")
    if case == "policy_is_a_reward_model":
        overrides.append("stages.dpo.policy=rm-safety")
    if case == "margin_with_ipo":
        overrides += ["stages.dpo.margin=small", "stages.dpo.loss_type=ipo"]
    if case == "mix_without_mix_data":
        overrides = ["stages.dpo.mix_data=null", "stages.dpo.mix_share=0.5"]
    if case == "own_answers_model_missing":
        overrides = ["stages.dpo.own_answers={model: no-such-model}"]
    cfg_overrides = overrides
    expected = {"empty": DataError, "all_too_long": DataError, "policy_is_a_reward_model": ConfigError,
                "margin_with_ipo": ConfigError, "mix_without_mix_data": ConfigError,
                "missing_file": ConfigError, "own_answers_model_missing": CamelidError}[case]
    if case == "margin_with_ipo":  # refused when the config is read
        from camelid.config import load_config

        with pytest.raises(ConfigError, match="margin='small' needs loss_type"):
            load_config(REPO / "pipelines.yaml", "micro", cfg_overrides)
    else:
        cfg, registry = micro_sft(*cfg_overrides)
        if case == "policy_is_a_reward_model":
            with registry.publish("rm-safety", "reward", config={"stand-in": True}) as pub:
                (pub.dir / "README").write_text("stand-in\n")
        before = tree(registry.root)
        with pytest.raises(expected) as err:
            run_job(cfg, registry, "dpo")
        assert isinstance(err.value, CamelidError) and "\n" not in str(err.value)
        if case == "all_too_long":
            assert "max_length" in str(err.value)
        assert tree(registry.root) == before
        assert not list((cfg.runs_path() / "dpo").glob("*/checkpoint-*"))  # no training step was taken
    cfg, registry = micro_sft()
    before = tree(registry.root)
    assert main(["dpo", *cli_args(cfg, *cfg_overrides)]) == 2
    err = capsys.readouterr().err  # one line; a config file's invalid settings are listed one per line under it
    assert "camelid dpo: error: " in err and "Traceback" not in err
    assert tree(registry.root) == before
