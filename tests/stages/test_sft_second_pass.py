"""`stages.sft.second_pass`: a second SFT job from the first pass's model, on other data, with its own artifact.

The first pass keeps its name and its config hash (a second pass added or changed reruns only the second); the
second reads the first's model, its own data and settings, and the first's for the rest; a bad second pass is
refused before the first pass trains."""

from __future__ import annotations

import pytest

from camelid.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PASS = "stages.sft.second_pass={output: sft-real, data: {format: real, split: train, n: 24}, max_steps: 3, " \
       "learning_rate: 1.0e-4, opening_weight: 4}"


def test_the_second_pass_is_a_second_job_from_the_first_ones_model(micro):
    from camelid.stages import jobs

    cfg, _ = micro()
    one = [j for j in jobs(cfg) if j.stage == "sft"]
    cfg2, _ = micro(PASS)
    first, second = [j for j in jobs(cfg2) if j.stage == "sft"]
    assert [j.name for j in one] == ["sft"]
    assert first.config == one[0].config  # the first pass's hash is the same with or without a second pass
    assert "second_pass" not in first.config
    assert (second.name, second.output, second.inputs) == ("sft-second-pass", "sft-real", {"model": "sft"})
    s = second.settings
    assert (s.data.format, s.data.n, s.max_steps, s.learning_rate, s.opening_weight) == ("real", 24, 3, 1e-4, 4)
    first_s = cfg2.stages.sft
    assert (s.chat_template, s.max_length, s.batch_size, s.epochs, s.opening_tokens) == (
        first_s.chat_template, first_s.max_length, first_s.batch_size, first_s.epochs, first_s.opening_tokens)
    assert s.self_distill is None and second.where == "stages.sft.second_pass"
    # Another second pass: the first job's config (and so its artifact) stays what it was.
    cfg3, _ = micro(PASS, "stages.sft.second_pass.learning_rate=3e-5")
    assert [j for j in jobs(cfg3) if j.stage == "sft"][0].config == first.config


@pytest.mark.parametrize("override, message", [
    ("stages.sft.second_pass.output=sft", "give the second pass its own registry name"),
    ("stages.sft.second_pass.output=Bad/Name", "stages.sft.second_pass.output"),
    ("stages.sft.second_pass.epochs=0", "stages.sft.second_pass.epochs"),
    ("stages.sft.second_pass.model=base", "stages.sft.second_pass.model"),  # not a setting of the pass
])
def test_a_bad_second_pass_is_one_line_naming_its_key(micro, override, message):
    from camelid.errors import RegistryError
    from camelid.stages import jobs

    with pytest.raises((ConfigError, RegistryError)) as e:
        cfg, _ = micro(PASS, override)
        jobs(cfg)
    assert message in str(e.value)


def test_a_missing_second_pass_file_stops_the_run_before_the_first_pass_trains(micro, tmp_path):
    from camelid.runs.cli import main as run_main

    cfg, registry = micro()
    with pytest.raises(ConfigError, match=r"stages\.sft\.second_pass\.data\.path: .*none\.jsonl does not exist"):
        run_main(["--config", str(cfg.config_path), "--profile", "micro", "--registry", str(cfg.registry_path()),
                  f"runs_dir={cfg.runs_path()}", PASS, f"stages.sft.second_pass.data.path={tmp_path}/none.jsonl",
                  "stages.sft.second_pass.data.format=messages", "--only", "sft"])
    assert registry.names() == ["base"]  # nothing trained, nothing published


def test_camelid_sft_publishes_both_passes_and_a_changed_second_pass_reruns_only_it(micro, capsys):
    from camelid.cli import main
    from camelid.registry import config_hash
    from camelid.stages import jobs

    cfg, registry = micro(PASS, "stages.sft.max_steps=4")
    args = ["--config", str(cfg.config_path), "--profile", "micro", "--registry", str(cfg.registry_path()),
            f"runs_dir={cfg.runs_path()}", PASS, "stages.sft.max_steps=4"]
    assert main(["sft", *args]) == 0
    assert capsys.readouterr().out.split() == ["sft@v1", "sft-real@v1"]
    first, second = registry.resolve("sft"), registry.resolve("sft-real")
    assert second.kind == "sft" and second.manifest["inputs"]["model"]["ref"] == "sft@v1"
    assert first.manifest["metrics"]["steps"] == 4 and second.manifest["metrics"]["steps"] == 3
    assert second.manifest["metrics"]["data"]["train"]["kept"] == 24
    assert second.manifest["config"]["opening_weight"] == 4 and second.manifest["config"]["model"] == "sft"
    # The second pass's eval loss starts where the first pass's ended: it trained from that model.
    assert second.manifest["metrics"]["eval_loss_before"] == pytest.approx(first.manifest["metrics"]["eval_loss"],
                                                                           rel=1e-4)
    # `camelid run` with another second pass: the first pass is up to date, the second would run.
    cfg2, _ = micro(PASS, "stages.sft.max_steps=4", "stages.sft.second_pass.learning_rate=3e-5")
    j1, j2 = [j for j in jobs(cfg2) if j.stage == "sft"]
    assert registry.find_matching("sft", config_hash(j1.config), {"model": registry.resolve("base")}) is not None
    assert registry.find_matching("sft-real", config_hash(j2.config), {"model": first}) is None


def test_the_second_pass_self_distils_from_the_first_passs_starting_model(micro, tmp_path, monkeypatch):
    """Its self-distillation keeps the behaviour from before any fine-tuning: the base answers, not the first pass's
    model; the base is an input of the job (its version in the hash and the manifest), loaded on a cache miss only."""
    from camelid.cli import main
    from camelid.stages import jobs

    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path / "cache"))  # a private generation cache: the base answers here
    distill = "stages.sft.second_pass.self_distill={format: toy, split: eval, n: 4}"
    cfg, registry = micro(PASS, distill, "stages.sft.max_steps=2", "stages.sft.second_pass.self_distill_max_new_tokens=8")
    first, second = [j for j in jobs(cfg) if j.stage == "sft"]
    assert first.inputs == {"model": "base"} and "self_distill_model" not in first.config
    assert second.inputs == {"model": "sft", "self_distill_model": "base"}
    assert second.settings.self_distill_model == "base" and second.settings.self_distill_max_new_tokens == 8
    args = ["--config", str(cfg.config_path), "--profile", "micro", "--registry", str(cfg.registry_path()),
            f"runs_dir={cfg.runs_path()}", PASS, distill, "stages.sft.max_steps=2",
            "stages.sft.second_pass.self_distill_max_new_tokens=8"]
    assert main(["sft", *args]) == 0
    made = registry.resolve("sft-real").manifest
    assert made["inputs"]["self_distill_model"]["ref"] == "base@v1" and made["inputs"]["model"]["ref"] == "sft@v1"
    stats = made["metrics"]["self_distill"]
    assert stats["prompts"] == 4 and sum(stats["outcomes"].values()) == 4 and not stats["from_cache"]
    assert made["metrics"]["data"]["train"]["kept"] == 24 + stats["kept"]


def test_a_teacher_without_prompts_is_refused(micro):
    with pytest.raises(ConfigError, match="self_distill_model is 'base' but self_distill is null"):
        micro("stages.sft.self_distill_model=base")
