"""pipelines.yaml -> a typed, validated PipelineConfig.

The settings core owns (registry, runs, device, shared, toy base) are ``PipelineSettings``; each registered stage
adds its own section, typed by its declaration's config model (``pipeline_model``): core names no stage.

Resolution order: the file's top level, then the chosen profile merged on top (dicts merge, other
values replace), then `key=value` overrides from the command line (dotted paths, YAML values).
Every validation error is reported with its key path, all at once.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from camelid.config.yaml_load import load_yaml
from camelid.errors import ConfigError

DEFAULT_CONFIG = "pipelines.yaml"


class ToyBaseConfig(BaseModel):
    """The tiny Llama and its tokenizer that `camelid init` builds for the toy world."""

    model_config = ConfigDict(extra="forbid")
    output: str = Field("base", description="Registry name of the base model.")
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary size (trained on toy-world text).")
    hidden_size: int = Field(128, gt=0, description="Model width.")
    intermediate_size: int = Field(344, gt=0, description="MLP width.")
    num_layers: int = Field(4, gt=0, description="Decoder layers.")
    num_heads: int = Field(4, gt=0, description="Attention heads.")
    max_position_embeddings: int = Field(512, gt=0, description="Context length.")
    tokenizer_lines: int = Field(20000, gt=0, description="Toy-world lines to train the tokenizer on.")
    eval_prompts: int = Field(100, ge=0, description="Held-out prompts to score the untrained model on (the floor).")
    seed: int = Field(0, description="Seed for the toy world and weight init.")


class SharedSettings(BaseModel):
    """Settings several stages read: each stage declares which, and they are hashed into its artifacts."""

    model_config = ConfigDict(extra="forbid")
    safety_threshold: float = Field(
        0.15, gt=0, lt=1, description="Llama 2's combined reward uses the safety score when sigmoid(Rs) is below "
        "this (read by reward for calibration, by ppo and compare for the combined reward).")


class StagesBase(BaseModel):
    """`stages:`: one section per registered stage; ``pipeline_model`` adds them as fields."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, data):
        for name in data if isinstance(data, dict) else ():
            if name not in cls.model_fields:
                hint = difflib.get_close_matches(str(name), list(cls.model_fields), n=1)
                raise ValueError(f"unknown stage section {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                 + f"; sections: {', '.join(cls.model_fields)}")
        return data


class PipelineSettings(BaseModel):
    """The settings core owns; ``pipeline_model`` adds the stages' sections."""

    model_config = ConfigDict(extra="forbid")
    registry: str = Field("./registry", description="Registry folder (relative to the config file).")
    runs_dir: str = Field("./runs", description="Where stages keep checkpoints for --resume and logs.")
    keep_checkpoints: Literal["all", "last", "none"] = Field(
        "last", description="After a stage publishes, which of its run's checkpoints (weights and optimizer "
        "states) stay in runs_dir: last (what --resume continues from), all, or none.")
    profile: str | None = Field(None, description="Profile applied (set by the loader).")
    description: str = Field("", description="What this profile is for.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA if available, else CPU.")
    trust_remote_code: bool = Field(False, description="Allow custom model code from the Hub (off: safer).")
    attn_implementation: str | None = Field(
        None, description="Attention kernel for training (SFT): null = transformers' default (sdpa); "
        "flash_attention_2 (needs flash-attn), flex_attention, sdpa or eager.")
    pipeline: list[str] = Field(
        default_factory=lambda: ["init", "sft", "reward", "ppo", "compare"],
        description="Stages `camelid run` runs, in order.")
    toy_base: ToyBaseConfig = Field(default_factory=ToyBaseConfig, description="Tiny base model for the toy world.")
    shared: SharedSettings = Field(default_factory=SharedSettings, description="Settings several stages read.")

    @model_validator(mode="before")
    @classmethod
    def _moved_settings(cls, data):
        """A setting that moved to `shared` gets told where it went instead of "unknown key"."""
        stages = data.get("stages") if isinstance(data, dict) else None
        for stage, section in (stages or {}).items() if isinstance(stages, dict) else ():
            if isinstance(section, dict) and "safety_threshold" in section:
                raise ValueError(f"stages.{stage}.safety_threshold moved to shared.safety_threshold (one value read "
                                 "by reward, ppo and compare, hashed into each of their artifacts)")
        return data

    @field_validator("pipeline")
    @classmethod
    def _known_stages(cls, names: list[str]) -> list[str]:
        from camelid.stages import STAGES

        for name in names:
            if name not in STAGES:
                hint = difflib.get_close_matches(name, list(STAGES), n=1)
                raise ValueError(f"unknown stage {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                 + f"; stages: {', '.join(STAGES)}")
        return names

    # Set by the loader, not part of the file.
    config_path: Path | None = Field(None, exclude=True, description="The file this came from.")

    def registry_path(self) -> Path:
        p = Path(self.registry).expanduser()
        if not p.is_absolute() and self.config_path is not None:
            p = self.config_path.parent / p
        return p

    def runs_path(self) -> Path:
        p = Path(self.runs_dir).expanduser()
        if not p.is_absolute() and self.config_path is not None:
            p = self.config_path.parent / p
        return p


_built: tuple = ((), None)   # (the declarations it was built from, PipelineConfig)
_building = False


def pipeline_model() -> type[BaseModel]:
    """PipelineConfig: PipelineSettings plus each registered stage's section (``stages.<name>``, or its top-level
    ``config_key``), typed by its config model. Rebuilt when a stage is registered or removed."""
    global _built, _building
    from pydantic import create_model

    from camelid.stages import STAGES, get_stage

    if _building:
        raise RuntimeError("a stage declaration imported camelid.config.PipelineConfig while the stages were being "
                           "loaded to build it: import it under TYPE_CHECKING only")
    _building = True
    try:
        stages = [get_stage(name) for name in STAGES]
    finally:
        _building = False
    models = {s.name: s.section_model() for s in stages}
    key = tuple((s, models[s.name], s.config_key) for s in stages)
    if _built[0] == key:
        return _built[1]
    with_section = [s for s in stages if models[s.name] is not None]

    def section(stage) -> tuple:
        return models[stage.name], Field(default_factory=models[stage.name], description=stage.help)

    stages_config = create_model("StagesConfig", __base__=StagesBase, __doc__=StagesBase.__doc__,
                                 **{s.name: section(s) for s in with_section if not s.config_key})
    model = create_model(
        "PipelineConfig", __base__=PipelineSettings, __doc__="The resolved pipelines.yaml: core settings and "
        "every registered stage's section.",
        stages=(stages_config, Field(default_factory=stages_config, description="Per-stage settings.")),
        **{s.config_key: section(s) for s in with_section if s.config_key})
    _built = (key, model)
    return model


def __getattr__(name: str):
    """``PipelineConfig`` and ``StagesConfig`` are built from the registered stages when first asked for."""
    if name == "PipelineConfig":
        return pipeline_model()
    if name == "StagesConfig":
        return pipeline_model().model_fields["stages"].annotation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """'stages.sft.learning_rate=1e-4' -> (['stages','sft','learning_rate'], 0.0001)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected dotted.key=value, e.g. stages.sft.max_steps=10")
    value = load_yaml(raw, f"override {text!r}", lines=False) if raw.strip() else ""
    if isinstance(value, float) is False and isinstance(raw, str) and _looks_like_float(raw):
        value = float(raw)  # YAML 1.1 reads '1e-4' as a string
    return key.split("."), value


def _looks_like_float(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return any(c in raw.lower() for c in ".e") and raw.strip().lower() not in ("nan", "inf", "-inf")


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set each dotted key; a number after a list indexes it (``stages.sft.data.0.n=16`` in a mixture)."""
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(path):
            key: str | int = _list_index(node, path[:i], part, text) if isinstance(node, list) else part
            if i == len(path) - 1:
                node[key] = value
                break
            nxt = node[key] if isinstance(node, list) else node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            elif not isinstance(nxt, dict | list):
                raise ConfigError(f"override {text!r}: {'.'.join(path[:i + 1])} is not a section (it is {nxt!r})")
            node = nxt
    return out


def _list_index(items: list, where: list[str], part: str, text: str) -> int:
    """The index an override names inside a list; anything else is a ConfigError saying what the list holds."""
    name = ".".join(where)
    if not part.isdigit():
        raise ConfigError(f"override {text!r}: {name} is a list of {len(items)} item(s); name one by its "
                          f"index, e.g. {name}.0.{part}")
    if int(part) >= len(items):
        raise ConfigError(f"override {text!r}: {name} has no item {part}; it has {len(items)} item(s) "
                          f"(0-{len(items) - 1})")
    return int(part)


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
}


def _model_fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at the parent of ``loc`` (for 'did you mean' hints)."""
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return []
        f = cur.model_fields.get(part)
        if f is None:
            return []
        ann = f.annotation
        cur = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                   ann)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return list(cur.model_fields)
    return []


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    lines = []
    seen = set()
    # Drop pydantic's union-branch markers (e.g. 'DataSpec', 'list[DataSpec]') from the paths, and an
    # error on a union as a whole when a branch reported something more specific below it.
    errors = [(tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p[:1].isupper()))), e)
              for e in err.errors()]
    locs = [loc for loc, _ in errors]
    for loc, e in errors:
        if any(len(o) > len(loc) and o[:len(loc)] == loc for o in locs):
            continue
        path = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(loc[-1]), _model_fields_at(model, loc), n=1)
            msg = "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        elif e["type"] in _MESSAGES:
            msg = _MESSAGES[e["type"]].format(**e.get("ctx", {})) + f", got {e.get('input')!r}"
        elif e["type"] == "missing":
            msg = "is required"
        else:
            msg = e["msg"][0].lower() + e["msg"][1:] + (f", got {e['input']!r}" if "input" in e and not isinstance(
                e["input"], dict) else "")
        line = f"  {path}: {msg}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return f"{source}: {len(lines)} invalid setting(s):\n" + "\n".join(lines)


def _read_config_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (run from the project folder or pass --config FILE)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a config file; pass --config FILE") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                          "save the file as UTF-8") from None


def read_yaml(path: Path) -> dict:
    """The file's top-level mapping; duplicate keys, alias bombs and unreadable files are ConfigErrors."""
    data = load_yaml(_read_config_text(path), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def load_config(path: str | Path = DEFAULT_CONFIG, profile: str | None = None,
                overrides: list[str] | None = None) -> PipelineSettings:
    """Read, merge profile and overrides, validate. Raises ConfigError listing every problem."""
    from camelid.config.packaged import find_config

    path, packaged = find_config(path)  # outside a clone: the pipelines.yaml shipped with camelid
    raw = read_yaml(path)
    profiles = _profiles(raw, path)
    raw.pop("profiles", None)
    profile = profile or raw.pop("default_profile", None)
    raw.pop("default_profile", None)
    if profile is not None:
        if profile not in profiles:
            raise ConfigError(f"{path}: unknown profile {profile!r}; profiles: {', '.join(profiles) or '(none)'}")
        raw = deep_merge(raw, _profile_body(profiles, profile, path))
        raw["profile"] = profile
    raw = apply_overrides(raw, list(overrides or []))
    model = pipeline_model()
    try:
        cfg = model.model_validate(raw)
    except ValidationError as e:
        src = f"{path}" + (f" (profile {profile})" if profile else "")
        raise ConfigError(format_validation_error(e, model, src)) from None
    # The packaged file's relative paths (registry, runs, data) mean the current folder, as a copy there would.
    cfg.config_path = (Path.cwd() / DEFAULT_CONFIG).resolve() if packaged else path.resolve()
    return cfg


def _profiles(raw: dict, path: Path) -> dict:
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a mapping of profile name -> settings")
    return profiles


def _profile_body(profiles: dict, name: str, path: Path) -> dict:
    body = profiles[name] or {}
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: profiles.{name} must be a mapping of settings")
    return body


def list_profiles(path: str | Path = DEFAULT_CONFIG) -> dict[str, str]:
    """Profile name -> its `description` (empty when it has none)."""
    from camelid.config.packaged import find_config

    path, _ = find_config(path)
    profiles = _profiles(read_yaml(path), path)
    return {name: _profile_body(profiles, name, path).get("description", "") for name in profiles}
