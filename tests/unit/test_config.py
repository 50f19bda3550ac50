from __future__ import annotations

import pytest

from camelid.config import load_config, parse_override
from camelid.errors import ConfigError


def test_every_profile_validates_without_downloading(repo, monkeypatch):
    # HF_HUB_OFFLINE is set by conftest: validation must not touch the Hub (GPU profiles name Hub ids).
    for profile in ("micro", "tiny", "gpu-7b-lora", "gpu-7b-full"):
        cfg = load_config(repo / "pipelines.yaml", profile)
        assert cfg.profile == profile
    lora = load_config(repo / "pipelines.yaml", "gpu-7b-lora")
    assert lora.stages.sft.mode == "lora" and lora.stages.sft.packing and lora.stages.sft.model.count("/") == 1
    full = load_config(repo / "pipelines.yaml", "gpu-7b-full")
    assert (full.stages.sft.learning_rate, full.stages.sft.weight_decay, full.stages.sft.epochs) == (2e-5, 0.1, 2)
    assert full.stages.sft.lr_scheduler == "cosine" and full.stages.ppo.kl_coef == 0.01


def test_profile_merges_over_top_level(repo):
    micro = load_config(repo / "pipelines.yaml", "micro")
    tiny = load_config(repo / "pipelines.yaml", "tiny")
    assert micro.toy_base.hidden_size < tiny.toy_base.hidden_size
    # keys the profile does not touch keep the top-level value
    assert micro.stages.sft.learning_rate == tiny.stages.sft.learning_rate
    assert micro.registry_path() != tiny.registry_path()


def test_overrides_are_typed(repo):
    cfg = load_config(repo / "pipelines.yaml", "micro",
                      ["stages.sft.learning_rate=1e-4", "stages.sft.packing=true", "stages.ppo.iterations=7",
                       "stages.compare.checkpoints=[sft, sft@v1]"])
    assert cfg.stages.sft.learning_rate == pytest.approx(1e-4)
    assert cfg.stages.sft.packing is True
    assert cfg.stages.ppo.iterations == 7
    assert cfg.stages.compare.checkpoints == ["sft", "sft@v1"]


def test_an_override_can_reach_into_a_mixture_by_index(repo):
    # The smol profile's SFT data is a list (toy world + camelid's real-wording set + the built-in everyday rows).
    cfg = load_config(repo / "pipelines.yaml", "smol", ["stages.sft.data.0.n=16", "stages.sft.data.1.weight=4"])
    toy, real = cfg.stages.sft.data[:2]
    assert (toy.format, toy.n, real.format, real.weight) == ("toy", 16, "real", 4)


@pytest.mark.parametrize("bad, match", [
    ("stages.sft.data.3.n=16", r"stages.sft.data.3.*no item 3.*3 item"),
    ("stages.sft.data.n=16", r"stages.sft.data.*is a list.*stages.sft.data.0.n"),
])
def test_a_bad_index_into_a_list_says_what_the_list_holds(repo, bad, match):
    with pytest.raises(ConfigError, match=match):
        load_config(repo / "pipelines.yaml", "smol", [bad])


def test_every_error_reported_with_key_path(repo):
    with pytest.raises(ConfigError) as e:
        load_config(repo / "pipelines.yaml", "micro",
                    ["stages.ppo.kl_coef=-1", "stages.sft.learning_rat=1", "stages.reward.safety.margin=huge"])
    msg = str(e.value)
    assert "3 invalid setting(s)" in msg
    assert "stages.ppo.kl_coef: must be > 0" in msg and "got -1" in msg
    assert "stages.sft.learning_rat: unknown key (did you mean 'learning_rate'?)" in msg
    assert "stages.reward.safety.margin:" in msg and "'huge'" in msg


def test_bad_yaml_names_line(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("registry: ./r\nstages:\n  sft: {model: base\n")
    with pytest.raises(ConfigError, match=r"p.yaml:\d+:\d+: invalid YAML"):
        load_config(f)


def test_unknown_profile_lists_profiles(repo):
    with pytest.raises(ConfigError, match="unknown profile 'huge'.*micro.*tiny"):
        load_config(repo / "pipelines.yaml", "huge")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1"])
def test_bad_override_syntax(bad):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_override(bad)


def test_every_field_has_help():
    from pydantic import BaseModel

    from camelid.config import PipelineConfig

    def walk(model: type[BaseModel], path: str) -> list[str]:
        missing = []
        for name, f in model.model_fields.items():
            if not f.description:
                missing.append(f"{path}{name}")
            for arg in (f.annotation, *getattr(f.annotation, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    missing += walk(arg, f"{path}{name}.")
        return missing

    assert walk(PipelineConfig, "") == []
