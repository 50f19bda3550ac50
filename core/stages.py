"""The stage registry: every stage of the pipeline, declared in one place.

A stage is a ``camelid.stage.Stage`` living in its own folder; registering it is one line below. From this
table and the declarations it names, the CLI gets a command per stage (`camelid <name>`), `camelid run` gets
its jobs, the config gets its section (``camelid.config.pipeline_model``), the registry gets the artifact
kinds its jobs publish, and every stage that takes a policy accepts the kinds its jobs declare as policies.
"""

from __future__ import annotations

import importlib

from camelid.errors import ConfigError

# name -> "module:attribute" of the Stage instance. Imported lazily (a declaration imports no torch), so that
# importing core loads no stage and `camelid --help` loads no torch.
STAGES: dict[str, str] = {
    "init": "camelid.init_cmd:STAGE",
    "sft": "camelid.sft.stage:STAGE",
    "reward": "camelid.reward.stage:STAGE",
    "ppo": "camelid.ppo.stage:STAGE",
    "compare": "camelid.eval.compare_stage:STAGE",
    "rs": "camelid.rs.stage:STAGE",
    "dpo": "camelid.dpo.stage:STAGE",
    "round": "camelid.rounds.stage:STAGE",
}

# Artifact kinds that commands other than stages publish: `camelid import` (base), `camelid eval` (eval),
# `camelid annotate export --publish` (dataset).
COMMAND_KINDS = ("base", "eval", "dataset")

_loaded: dict = {}


def get_stage(name: str):
    """The registered Stage called ``name``."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    if name not in _loaded:
        module, _, attr = STAGES[name].partition(":")
        _loaded[name] = getattr(importlib.import_module(module), attr)
    return _loaded[name]


def register(name: str, target) -> None:
    """Add a stage at run time (plugins, tests): ``target`` is "module:attribute" of its Stage, or the Stage."""
    if isinstance(target, str):
        STAGES[name] = target
        _loaded.pop(name, None)
    else:
        STAGES[name] = f"{type(target).__module__}:{type(target).__name__}"
        _loaded[name] = target


def unregister(name: str) -> None:
    STAGES.pop(name, None)
    _loaded.pop(name, None)


def all_stages() -> list:
    """Every registered Stage, in registration order."""
    return [get_stage(name) for name in STAGES]


def artifact_kinds() -> tuple[str, ...]:
    """The kinds the registry accepts: those every stage's jobs declare, and those other commands publish."""
    kinds = [spec.kind for stage in all_stages() for spec in stage.job_specs] + list(COMMAND_KINDS)
    return tuple(dict.fromkeys(kinds))


def policy_kinds() -> tuple[str, ...]:
    """The kinds of chat policies (what sft, ppo, rs, compare, rounds, export and eval accept as a model)."""
    return tuple(dict.fromkeys(spec.kind for stage in all_stages() for spec in stage.job_specs if spec.policy))


def jobs(cfg) -> list:
    """The jobs of cfg.pipeline, in order."""
    out = []
    for name in cfg.pipeline:
        out += get_stage(name).jobs(cfg)
    return out


def job_for(cfg, name: str):
    """The job called ``name`` (sft, reward-helpfulness, ...) even if cfg.pipeline leaves it out."""
    for stage in STAGES:
        for job in get_stage(stage).jobs(cfg):
            if job.name == name:
                return job
    raise ConfigError(f"no job named {name!r}")
