"""`camelid sft` on the micro profile: it learns, publishes, resumes after a kill, runs on 2 processes,
does LoRA, and refuses bad input without touching the registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from camelid.errors import CamelidError, DataError, RegistryError

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".staging" not in p.parts)


def state_dict(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def cli_args(cfg, *overrides: str) -> list[str]:
    return ["--config", str(REPO / "pipelines.yaml"), "--profile", "micro", "--registry", str(cfg.registry_path()),
            f"runs_dir={cfg.runs_path()}", *overrides]


def test_micro_run_learns_and_publishes(micro, capsys):
    from camelid.cli import main
    from camelid.models import load_causal_lm

    cfg, registry = micro("stages.sft.max_steps=10")
    assert main(["sft", *cli_args(cfg, "stages.sft.max_steps=10")]) == 0
    assert capsys.readouterr().out.strip() == "sft@v1"
    art = registry.resolve("sft")
    assert art.ref == "sft@v1" and art.kind == "sft"
    assert art.manifest["inputs"]["model"]["ref"] == "base@v1"
    m = art.manifest["metrics"]
    assert m["steps"] == 10
    assert m["eval_loss"] < m["eval_loss_before"]
    assert m["train_loss_last"] < m["train_loss_first"]
    assert m["tokens_per_second"] > 0 and m["world_size"] == 1
    assert {"helpfulness", "harmful_refusal", "over_refusal", "task_accuracy"} <= set(m["oracle"])
    assert m["data"]["train"]["kept"] == 256
    assert set(art.manifest["data"]) == {"train", "eval", "eval_prompts"}
    assert len((art.path / "generations.jsonl").read_text().splitlines()) == 16
    # `camelid run` sees the stage as up to date: same section, same input hashes.
    from camelid.registry import config_hash
    from camelid.stages import job_for

    job = job_for(cfg, "sft")
    assert registry.find_matching("sft", config_hash(job.config), {"model": registry.resolve("base")}) is not None
    # Every parameter moved (TRL-style check), and the model loads back like any other.
    before, after = state_dict(registry.resolve("base").model_path), state_dict(art.model_path)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged}"
    model, tok = load_causal_lm("sft", registry)
    assert "[/INST]" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_kill_then_resume_gives_a_valid_artifact(micro):
    cfg, registry = micro()
    # Long enough that the kill lands mid-training: a micro step takes ~10 ms, and 40 steps could be over within
    # the half second after the first checkpoint (the kill then hit the final evaluation, or came too late).
    steps = 200
    overrides = [f"stages.sft.max_steps={steps}", "stages.sft.save_steps=4", "stages.sft.eval_prompts.n=4",
                 "stages.sft.logging_steps=1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "camelid.cli", "sft", *cli_args(cfg, *overrides)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = cfg.runs_path() / "sft"
    deadline = time.time() + 150
    try:
        while time.time() < deadline and proc.poll() is None:
            if any((p / "trainer_state.json").is_file() for p in runs.glob("*/checkpoint-*")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.5)  # let the checkpoint finish; resume must cope with whatever the kill left
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert registry.versions("sft") == []  # a killed run publishes nothing

    from camelid.stage import run_job

    cfg2, _ = micro(*overrides)
    art = run_job(cfg2, registry, "sft", resume=True)
    m = art.manifest["metrics"]
    assert m["resumed_from"] and m["resumed_from"].startswith("checkpoint-")
    assert m["steps"] == steps
    assert int(m["resumed_from"].split("-")[1]) < steps
    assert (art.path / "model" / "model.safetensors").is_file()
    # torchtune-style: the resumed run continues the uninterrupted one (same losses after the checkpoint).
    full = run_job(cfg2, registry, "sft").manifest["metrics"]
    assert full["resumed_from"] is None
    after = int(m["resumed_from"].split("-")[1])
    resumed = [loss for step, loss in m["loss_curve"] if step > after]
    straight = [loss for step, loss in full["loss_curve"] if step > after]
    assert len(resumed) == steps - after
    torch.testing.assert_close(resumed, straight, rtol=1e-3, atol=1e-3)
    # The resumed run publishes the whole run's numbers (#17: it published tokens_per_second=-7674.5, tokens and
    # train_loss of the resumed part only, and no eval_loss_before).
    assert m["tokens_per_second"] > 0
    assert m["train_tokens"] == full["train_tokens"]
    assert m["eval_loss_before"] == pytest.approx(full["eval_loss_before"], rel=1e-6)
    assert m["train_loss"] == pytest.approx(full["train_loss"], rel=1e-3)


def test_two_processes_world_size_two(micro):
    cfg, registry = micro()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "sft", *cli_args(cfg, "stages.sft.max_steps=4", "stages.sft.eval_prompts.n=4")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["sft@v1"]  # only rank 0 publishes and prints
    assert registry.versions("sft") == ["v1"]
    m = registry.resolve("sft").manifest["metrics"]
    assert m["world_size"] == 2
    assert m["steps"] == 4


def test_lora_publishes_adapter_and_merged_model(micro):
    from peft import PeftConfig

    from camelid.stage import run_job

    cfg, registry = micro("stages.sft.mode=lora", "stages.sft.lora.r=4", "stages.sft.max_steps=4",
                          "stages.sft.learning_rate=1e-2", "stages.sft.eval_prompts.n=4")
    art = run_job(cfg, registry, "sft")
    assert (art.path / "adapter" / "adapter_model.safetensors").is_file()
    assert PeftConfig.from_pretrained(str(art.path / "adapter")).r == 4
    m = art.manifest["metrics"]
    assert m["trainable_parameters"] < m["parameters"] / 2
    merged, base = state_dict(art.model_path), state_dict(registry.resolve("base").model_path)
    assert merged.keys() == base.keys()  # a plain model: no lora_ weights left
    changed = [k for k in base if not torch.equal(base[k], merged[k])]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # only the adapted linears moved


def test_qlora_without_bitsandbytes_gpu_is_a_clear_error(micro):
    from camelid.stage import run_job

    cfg, registry = micro("stages.sft.mode=lora", "stages.sft.lora.quantize_4bit=true")
    with pytest.raises(CamelidError, match="bitsandbytes"):
        run_job(cfg, registry, "sft")
    assert registry.versions("sft") == []


@pytest.mark.parametrize("case", ["empty", "no_assistant", "all_too_long", "unknown_base", "hub_offline"])
def test_bad_input_raises_and_leaves_registry_untouched(micro, tmp_path, case, capsys):
    from camelid.cli import main

    data = tmp_path / "data.jsonl"
    rows = {"empty": [], "no_assistant": [{"messages": [{"role": "user", "content": "hi"}]}],
            "all_too_long": [{"messages": [{"role": "user", "content": "x " * 400},
                                           {"role": "assistant", "content": "ok"}]}]}
    data.write_text("".join(json.dumps(r) + "\n" for r in rows.get(case, [])))
    overrides = ["stages.sft.eval_data=null", "stages.sft.eval_prompts=null", "stages.sft.too_long=drop"]
    if case in rows:
        overrides.append(f"stages.sft.data={{format: messages, path: {data}}}")
    if case == "unknown_base":
        overrides.append("stages.sft.model=nosuchmodel@v3")
    if case == "hub_offline":
        overrides.append("stages.sft.model=hf:camelid-test/no-such-model")
    cfg, registry = micro(*overrides)
    before = tree(registry.root)
    expected = {"empty": DataError, "no_assistant": DataError, "all_too_long": DataError,
                "unknown_base": RegistryError, "hub_offline": CamelidError}[case]
    from camelid.stage import run_job

    with pytest.raises(expected) as err:
        run_job(cfg, registry, "sft")
    assert "\n" not in str(err.value)
    assert tree(registry.root) == before
    # The CLI turns it into one line on stderr and exit status 2.
    assert main(["sft", *cli_args(cfg, *overrides)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("camelid sft: error: ")
    assert tree(registry.root) == before


def test_attn_implementation_reaches_the_model_and_bad_ones_name_the_key(micro):
    from camelid.models import load_causal_lm

    _, registry = micro()
    model, _ = load_causal_lm("base", registry, device="cpu", attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    with pytest.raises(CamelidError, match="attn_implementation='no-such-kernel'.*top-level attn_implementation"):
        load_causal_lm("base", registry, device="cpu", attn_implementation="no-such-kernel")


def test_packing_on_a_gpu_picks_a_kernel_that_handles_packed_rows(monkeypatch):
    import importlib.util
    from types import SimpleNamespace

    from camelid.sft.recipe import SFTRecipe

    def fake(packing, device, configured=None):
        return SimpleNamespace(runtime=SimpleNamespace(attn_implementation=configured),
                               sc=SimpleNamespace(packing=packing), device=torch.device(device))

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else object())
    assert SFTRecipe._attention(fake(True, "cuda")) == "flex_attention"   # sdpa would get a full mask
    assert SFTRecipe._attention(fake(False, "cuda")) is None             # unpacked: transformers' default
    assert SFTRecipe._attention(fake(True, "cpu")) is None               # flex has no backward on CPU
    assert SFTRecipe._attention(fake(True, "cuda", "sdpa")) == "sdpa"    # what the user set wins
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert SFTRecipe._attention(fake(True, "cuda")) == "flash_attention_2"


def test_gpu_batches_come_in_few_shapes_and_padding_the_packed_row_changes_no_loss(micro):
    from types import SimpleNamespace

    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from camelid.models import load_causal_lm
    from camelid.sft.recipe import SFTRecipe

    def fake(packing, device, configured=None):
        return SimpleNamespace(sc=SimpleNamespace(packing=packing, pad_to_multiple_of=configured, batch_size=8,
                                                  max_length=128), device=torch.device(device))

    assert SFTRecipe._pad_multiple(fake(False, "cuda")) == 64
    assert SFTRecipe._pad_multiple(fake(True, "cuda")) == 8 * 128   # one shape for every packed step
    assert SFTRecipe._pad_multiple(fake(True, "cpu")) is None
    assert SFTRecipe._pad_multiple(fake(True, "cuda", 16)) == 16

    # The packed row padded to its full size: same loss as the unpadded row (sdpa's packed mask, on CPU).
    _, registry = micro()
    model, _ = load_causal_lm("base", registry, device="cpu")
    rows = [{"input_ids": list(range(5, 5 + n)), "seq_lengths": [n]} for n in (7, 11, 4)]

    def loss(pad):
        batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True, pad_to_multiple_of=pad)(rows)
        assert batch["input_ids"].shape[1] == (pad or 22)
        keep = {k: batch[k] for k in ("input_ids", "labels", "position_ids")}
        return model(**keep, use_cache=False).loss

    torch.testing.assert_close(loss(None), loss(64), rtol=1e-5, atol=1e-6)
