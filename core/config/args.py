"""Arguments every stage command shares: --config, --profile, --registry, --resume, key=value."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from camelid.config import DEFAULT_CONFIG, PipelineConfig, load_config
from camelid.registry import Registry, set_default_root


def is_first_process() -> bool:
    """Rank 0 of an `accelerate launch` / torchrun (or no launch at all): the one process that prints results."""
    return os.environ.get("RANK", "0") == "0"


def stage_parser(prog: str, description: str, *, resume: bool = False) -> argparse.ArgumentParser:
    """The shared arguments; parse with ``parse_intermixed_args`` so options may follow key=value."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                epilog="Overrides: dotted key=value pairs, e.g. stages.sft.max_steps=10")
    p.add_argument("--config", default=os.environ.get("CAMELID_CONFIG", DEFAULT_CONFIG),
                   help="pipelines.yaml to read (default: ./pipelines.yaml or $CAMELID_CONFIG)")
    p.add_argument("--profile", default=None, help="profile in the config (default: its default_profile)")
    p.add_argument("--registry", default=None, help="registry folder (default: the config's `registry`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    if resume:
        p.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint of this run (after a crash or kill); only the "
                            "stage's resumable keys may change (iterations, max_steps, epochs, eval/save/logging "
                            "cadence): changing another is an error naming it")
    return p


def resolve(args: argparse.Namespace) -> tuple[PipelineConfig, Registry]:
    """Load the config named by the shared arguments and open its registry."""
    overrides = list(args.overrides)
    if args.registry:
        overrides.append(f"registry={Path(args.registry).resolve()}")
    cfg = load_config(args.config, args.profile, overrides)
    set_default_root(cfg.registry_path())  # for `path: registry:<ref>` in data specs
    return cfg, Registry(cfg.registry_path())


def open_registry(path: str | None, config: str, profile: str | None) -> Registry:
    """For commands that only need the registry: --registry wins, then the config's, then ./registry."""
    if path:
        return Registry(path)
    from camelid.config.packaged import find_config

    if find_config(config)[0].is_file():  # ./pipelines.yaml, else the packaged one (its registry: here)
        return Registry(load_config(config, profile).registry_path())
    return Registry("./registry")
