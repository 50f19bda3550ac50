"""`camelid export`: a plain Hugging Face folder (same logits in plain transformers), readable files, every
end-of-turn token in generation_config, a model card the Hub's parser reads, LoRA adapter + merged."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import torch

from camelid.errors import CamelidError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lora_sft(tmp_path_factory, micro_base_registry):
    """A micro registry with a LoRA sft (2 steps) on top of base, built once for this module."""
    import shutil

    from camelid.config import load_config
    from camelid.registry import Registry
    from camelid.stage import run_job

    tmp = tmp_path_factory.mktemp("export")
    root = tmp / "registry"
    shutil.copytree(micro_base_registry, root)
    cfg = load_config(REPO / "pipelines.yaml", "micro",
                      [f"registry={root}", f"runs_dir={tmp / 'runs'}", "stages.sft.mode=lora", "stages.sft.lora.r=4",
                       "stages.sft.max_steps=2", "stages.sft.learning_rate=1e-2", "stages.sft.eval_prompts.n=2"])
    torch.set_num_threads(1)
    registry = Registry(root)
    return registry, run_job(cfg, registry, "sft")


def _logits(model, tok) -> torch.Tensor:
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 plus 3?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**ids).logits  # (1, T, V)


def test_export_round_trip_same_logits_readable_files(lora_sft, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from camelid.hf.export import export
    from camelid.models import load_causal_lm

    registry, art = lora_sft
    out = export(art.ref, tmp_path / "hf", registry)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json", "README.md",
                 "adapter/adapter_model.safetensors", "adapter/adapter_config.json"):
        assert (out / name).is_file(), name
    assert stat.S_IMODE((art.path / "model" / "model.safetensors").stat().st_mode) == 0o600  # the registry's
    for p in [out, *out.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and "[/INST]" in tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                                                      tokenize=False, add_generation_prompt=True)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ref_model, ref_tok = load_causal_lm(art.ref, registry, device="cpu", precision="fp32")
    torch.testing.assert_close(_logits(model, tok), _logits(ref_model, ref_tok), rtol=0, atol=0)

    # the adapter on the base gives the merged model's logits (up to the merge's rounding)
    from peft import PeftModel

    base, _ = load_causal_lm("base", registry, device="cpu", precision="fp32")
    adapted = PeftModel.from_pretrained(base, str(out / "adapter"))
    torch.testing.assert_close(_logits(adapted, tok), _logits(model, tok), rtol=1e-4, atol=1e-4)


def test_model_card_parses_and_tells_the_lineage(lora_sft, tmp_path):
    from huggingface_hub import ModelCard

    from camelid.hf.export import export

    registry, art = lora_sft
    out = export(art.ref, tmp_path / "hf", registry)
    card = ModelCard((out / "README.md").read_text())
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"  # the toy base is camelid's own
    assert "sft" in data["tags"] and data["library_name"] == "transformers"
    assert "base_model" not in data  # built from scratch: no Hub model to name
    text = card.text
    assert f"`{art.ref}` — sft" in text and "`base@v1` — base (as model)" in text
    assert "data `data`: toy, split train, n=256" in text
    assert 'mode="lora"' in text and "eval_loss" in text
    assert "## Intended use" in text and "## Safety evaluation" in text
    assert "No `camelid compare` report" in text  # said plainly, not left out
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4


def test_generation_config_lists_every_end_of_turn_token(micro_base_registry):
    """A template that closes a turn with another special token than eos: both stop plain transformers."""
    from camelid.hf.export import generation_config
    from camelid.models import load_tokenizer
    from camelid.registry import Registry

    registry = Registry(micro_base_registry)
    tok = load_tokenizer("base", registry)
    tok.chat_template = ("{% for m in messages %}<s>{{ m['content'] }}[/INST]{% endfor %}"
                         "{% if add_generation_prompt %}<s>{% endif %}")
    gen = generation_config(registry.resolve("base").path / "model", tok)
    assert gen["eos_token_id"] == [tok.eos_token_id, tok.convert_tokens_to_ids("[/INST]")]
    assert gen["pad_token_id"] == tok.pad_token_id
    assert "_from_model_config" not in gen  # else generate() may rebuild it from config.json's single eos


def test_export_refuses_a_non_empty_folder_unless_forced(micro_base_registry, tmp_path):
    from camelid.hf.export import export
    from camelid.registry import Registry

    registry = Registry(micro_base_registry)
    out = tmp_path / "hf"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(CamelidError, match="not empty.*--force"):
        export("base", out, registry)
    assert (out / "mine.txt").read_text() == "keep me"
    export("base", out, registry, force=True)
    assert not (out / "mine.txt").exists() and (out / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hf.export-")]  # no staging left behind


def test_export_cli_refuses_a_reward_model_and_a_hub_id(micro_base_registry, tmp_path, capsys):
    from camelid.cli import main

    assert main(["export", "hf:gpt2", str(tmp_path / "x"), "--registry", str(micro_base_registry)]) == 2
    assert "not a registry artifact" in capsys.readouterr().err
    assert main(["export", "base", str(tmp_path / "x"), "--registry", str(micro_base_registry)]) == 0
    assert (tmp_path / "x" / "README.md").is_file()
