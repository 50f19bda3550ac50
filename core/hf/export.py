"""`camelid export REF DIR`: a registry checkpoint as a plain Hugging Face folder anyone can load, push or serve.

    DIR/model.safetensors, config.json       the registry's weights, byte for byte
    DIR/tokenizer*, chat_template.jinja       the tokenizer with the chat template the model was trained with
    DIR/generation_config.json                eos_token_id lists every end-of-turn token (camelid.models.stop_token_ids)
    DIR/README.md                             the model card (camelid.hf.card)
    DIR/adapter/                              LoRA runs: the PEFT adapter (DIR itself is the merged model)

Files are 0644 and folders 0755 (the registry writes 0600 files). The folder is written beside DIR and
renamed into place, so a failed export leaves no half folder; a non-empty DIR is refused unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import uuid
from pathlib import Path

from camelid.config import DEFAULT_CONFIG
from camelid.config.args import open_registry
from camelid.errors import CamelidError
from camelid.log import get_logger
from camelid.registry import Registry

log = get_logger("export")



def check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CamelidError(f"{out} exists and is not a folder; pick another DIR")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CamelidError(f"{out} is not empty; pick an empty or new folder, or pass --force to replace its contents")


def generation_config(model_dir: Path, tokenizer) -> dict:
    """The model's generation_config with eos_token_id = every token that ends an answer."""
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from camelid.models import stop_token_ids

    try:
        gen = GenerationConfig.from_pretrained(model_dir)
    except OSError:
        gen = GenerationConfig()
    stops = stop_token_ids(tokenizer, SimpleNamespace(generation_config=gen))
    out = gen.to_diff_dict()
    out.pop("transformers_version", None)
    # _from_model_config lets generate() rebuild the config from config.json, dropping the eos list
    out.pop("_from_model_config", None)
    out["eos_token_id"] = stops if len(stops) > 1 else stops[0]
    if tokenizer.pad_token_id is not None:
        out["pad_token_id"] = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        out.setdefault("bos_token_id", tokenizer.bos_token_id)
    return out


def write_model_folder(src: Path, dest: Path, tokenizer) -> None:
    """Weights and config copied from ``src``; the tokenizer (with its chat template) saved; generation config."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copyfile(f, dest / f.name)  # copyfile: contents only, not the registry's 0600 mode
    tokenizer.save_pretrained(dest)
    (dest / "generation_config.json").write_text(json.dumps(generation_config(src, tokenizer), indent=2) + "\n")


def fix_adapter_config(adapter_dir: Path, base_model: str | None) -> None:
    """Point the adapter at the base model's Hub id when known (the registry path means nothing elsewhere)."""
    cfg_path = adapter_dir / "adapter_config.json"
    if base_model and cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        cfg["base_model_name_or_path"] = base_model
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def make_readable(root: Path) -> None:
    """0755 folders, 0644 files: what a Hub upload, a model server or another user expects."""
    os.chmod(root, 0o755)
    for d, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(d) / name, 0o755)
        for name in files:
            os.chmod(Path(d) / name, 0o644)


def export(ref: str, out: str | Path, registry: Registry, *, force: bool = False) -> Path:
    """Write ``ref`` as a Hugging Face folder at ``out``; returns it."""
    from camelid.hf.card import base_origin, render_card
    from camelid.models import load_tokenizer

    out = Path(out)
    check_target(out, force)
    art = registry.resolve(ref)
    if art.external:
        raise CamelidError(f"{ref!r} is not a registry artifact ({art.external}); export takes a registry ref "
                           "such as ppo or sft@v2")
    from camelid.stages import policy_kinds

    if art.kind not in (kinds := policy_kinds()):
        raise CamelidError(f"{art.ref} is a {art.kind} artifact; export writes chat models ({', '.join(kinds)})")
    model_dir = art.path / "model"
    if not model_dir.is_dir():
        raise CamelidError(f"{art.ref} has no model/ folder ({art.path}); it cannot be exported")
    tokenizer = load_tokenizer(art)  # the published tokenizer: its chat template, a pad token
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    try:
        write_model_folder(model_dir, staging, tokenizer)
        adapter = (art.path / "adapter").is_dir()
        if adapter:
            shutil.copytree(art.path / "adapter", staging / "adapter", copy_function=shutil.copyfile)
            fix_adapter_config(staging / "adapter", base_origin(registry.lineage(art.ref))["base_model"])
        (staging / "README.md").write_text(render_card(registry, art, adapter=adapter), encoding="utf-8")
        make_readable(staging)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.rename(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s%s", art.ref, out, " (merged model + adapter/)" if adapter else "")
    return out


def add_registry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", default=None, help="registry folder (default: the config's, else ./registry)")
    p.add_argument("--config", default=os.environ.get("CAMELID_CONFIG", DEFAULT_CONFIG))
    p.add_argument("--profile", default=None, help="profile whose registry to read (micro: ./registry-micro)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="camelid export", description="Write a registry checkpoint as a plain Hugging Face folder: safetensors, "
        "config, tokenizer with its chat template, a generation config that stops at every end-of-turn token, "
        "and a model card (README.md) with its lineage and evaluation.")
    p.add_argument("ref", help="registry ref, e.g. ppo, sft@v2")
    p.add_argument("dir", help="folder to write (new or empty)")
    p.add_argument("--force", action="store_true", help="replace the contents of a non-empty DIR")
    add_registry_args(p)
    args = p.parse_args(argv)
    registry = open_registry(args.registry, args.config, args.profile)
    print(export(args.ref, args.dir, registry, force=args.force))
    return 0
