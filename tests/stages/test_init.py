"""`camelid init`: the toy tokenizer, the chat template on it, and the tiny base model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from camelid.chat import render
from camelid.models import generate, load_causal_lm, load_tokenizer
from camelid.registry import Registry

REPO = Path(__file__).resolve().parents[2]
CONV = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 17 + 25?"},
        {"role": "assistant", "content": "42"}, {"role": "user", "content": "Reverse the word camel."},
        {"role": "assistant", "content": "lemac"}]


@pytest.fixture(scope="module")
def base(micro_base_registry):
    return Registry(micro_base_registry).resolve("base")


def test_base_manifest(base):
    assert base.ref == "base@v1" and base.kind == "base"
    m = base.manifest
    assert m["metrics"]["parameters"] > 10_000 and m["metrics"]["vocab_size"] == 512
    assert m["metrics"]["world_size"] == 1
    assert m["config"]["hidden_size"] == 64 and m["inputs"] == {}
    assert (base.path / "model" / "model.safetensors").is_file()
    assert not list(base.path.rglob("*.bin")), "weights must be safetensors only"


def test_tokenizer_round_trip_and_digits(base):
    from camelid.data.toyworld import ToyWorld

    tok = load_tokenizer(base)
    for line in list(ToyWorld(seed=3).corpus(n_lines=200))[:200]:
        assert tok.decode(tok(line, add_special_tokens=False)["input_ids"]) == line
    pieces = tok.convert_ids_to_tokens(tok("12345", add_special_tokens=False)["input_ids"])
    assert pieces == ["1", "2", "3", "4", "5"], "digits must be single tokens so arithmetic is learnable"
    assert tok.pad_token == "<pad>" and tok.pad_token_id != tok.eos_token_id


def test_chat_template_matches_reference_rendering(base):
    tok = load_tokenizer(base)
    assert tok.apply_chat_template(CONV, tokenize=False) == render(CONV)
    ids = tok.apply_chat_template(CONV, tokenize=True, return_dict=True)["input_ids"]
    assert tok.decode(ids) == render(CONV)
    for marker in ("[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>"):
        assert marker in tok.convert_ids_to_tokens(ids)


def test_assistant_mask_covers_first_answer_token(base):
    """The chat-template trap (docs/design.md): the space that starts an answer must be trained."""
    tok = load_tokenizer(base)
    out = tok.apply_chat_template(CONV, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    toks = tok.convert_ids_to_tokens(ids)
    # exactly the assistant blocks are trained: leading space, answer, trailing space, eos
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == " 42 </s> lemac </s>"
    for i, t in enumerate(toks):
        if t == "[/INST]":
            assert mask[i] == 0 and mask[i + 1] == 1, f"token after [/INST] ({toks[i + 1]!r}) is not trained"


def test_base_loads_and_generates(base):
    model, tok = load_causal_lm(base)
    outs = generate(model, tok, [CONV[:2], CONV[:4]], max_new_tokens=8)
    assert len(outs) == 2 and all(isinstance(o, str) for o in outs)
    # batched (left-padded) generation equals one-at-a-time generation
    assert generate(model, tok, [CONV[:4]], max_new_tokens=8) == [outs[1]]


def test_init_is_idempotent_and_cli(micro, capsys):
    from camelid.cli import main

    cfg, reg = micro()
    # the fixture built base@v1 with toy_base.eval_prompts=0: the same config must not build again
    assert main(["init", "--config", str(cfg.config_path), "--profile", "micro", "--registry", str(reg.root),
                 "toy_base.eval_prompts=0"]) == 0
    assert reg.versions("base") == ["v1"], "same config: init must not publish a new version"
    assert main(["registry", "--registry", str(reg.root), "show", "base"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("base@v1\n")
    assert json.loads(out.split("\n", 2)[2])["kind"] == "base"


def test_two_processes_main_builds_and_publishes_once(micro_base_registry, tmp_path):
    """Under `accelerate launch` with 2 CPU processes one process builds base/v1; both exit 0."""
    root = tmp_path / "registry"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "camelid.cli", "init", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
           "--registry", str(root), "toy_base.eval_prompts=0"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["base@v1"]  # one process prints
    registry = Registry(root)
    assert registry.versions("base") == ["v1"], "every process published its own base"
    assert out.stderr.count("camelid.init: tokenizer: ") == 1, "the tokenizer was trained more than once"
    assert not list((root / ".staging").iterdir())
    art = registry.resolve("base")
    assert art.kind == "base" and art.manifest["metrics"]["world_size"] == 2  # accelerate did not fall back
    # the same artifact as the one-process build of the same config (the session fixture's base@v1)
    one = Registry(micro_base_registry).resolve("base@v1")
    assert art.manifest["config_hash"] == one.manifest["config_hash"]
    assert art.hash == one.hash
