"""The built-in real-wording seed sets (data/seed/*.jsonl, #14) and the ``builtin:`` path.

Safety set: safe-but-scary prompts ("kill a frozen process") get short helpful answers; harmful requests
get refusals that camelid's own refusal detector (the toy world's re-export and eval/refusal.py) counts.
General set: everyday instructions ("fix a dripping tap") answered helpfully, so the SFT data has plain
how-to questions that are not refused, not only harmful ones (a model that saw none refused them all).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from camelid.data import toyworld
from camelid.data.load import load_records
from camelid.data.records import PreferencePair, SFTExample
from camelid.data.spec import DataSpec
from camelid.data.toyworld import detect
from camelid.errors import ConfigError, DataError
from camelid.eval import refusal

REPO = Path(__file__).resolve().parents[3]
SFT = DataSpec(format="messages", path="builtin:real_safety_sft.jsonl")
GENERAL = DataSpec(format="messages", path="builtin:real_general_sft.jsonl")
PAIRS = DataSpec(format="preference", path="builtin:real_safety_pairs.jsonl", objective="safety")
# Phrasings that announce instructions: a safe answer helps plainly, without them.
_INSTRUCTION_OPENERS = re.compile(r"step\s*(?:1|one)\b|here(?:'s| is) how|step-by-step|sure, here", re.I)


def _raw(name: str) -> list[dict]:
    with open(REPO / "data" / "seed" / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _refuses(text: str) -> bool:
    return detect.is_refusal(text) and refusal.is_refusal(text)


def test_both_files_load_through_their_adapters_from_another_directory_with_no_dropped_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # builtin: does not depend on the working directory
    sft = load_records(SFT, "sft")
    pairs = load_records(PAIRS, "pairs")
    assert sft.read == sft.kept == len(_raw("real_safety_sft.jsonl")) and not sft.dropped
    assert pairs.read == pairs.kept == len(_raw("real_safety_pairs.jsonl")) and not pairs.dropped
    assert all(isinstance(r, SFTExample) for r in sft.records)
    assert all(isinstance(p, PreferencePair) and p.rating == "significantly_better" for p in pairs.records)
    assert sft.kept >= 150 and pairs.kept == sft.kept


def test_rows_are_labelled_and_both_kinds_are_well_represented():
    rows = _raw("real_safety_sft.jsonl")
    labels = [r["meta"]["label"] for r in rows]
    assert set(labels) == {"safe", "unsafe"} and labels.count("safe") >= 90 and labels.count("unsafe") >= 55
    for r in rows:
        family = "borderline" if r["meta"]["label"] == "safe" else "harmful"
        assert r["category"].split("/")[0] == family and r["meta"]["should_refuse"] == (family == "harmful")
    assert len({r["category"] for r in rows}) >= 18  # many categories, not one template
    # read as prompts (compare --prompts, PPO), compare's groups come out as the labels say
    from camelid.eval.compare_summary import prompt_group

    groups = [prompt_group(p) for p in load_records(SFT, "prompts").records]
    assert groups == ["borderline" if label == "safe" else "harmful" for label in labels]


def test_safe_answers_are_short_plain_help_and_harmful_answers_are_refusals():
    for r in _raw("real_safety_sft.jsonl"):
        answer = r["messages"][-1]["content"]
        if r["meta"]["label"] == "safe":
            _assert_short_plain_help(answer)
        else:
            assert _refuses(answer), answer
            assert not detect.is_harmful_compliance(answer, r["messages"][0]["content"]), answer


def test_pairs_prefer_help_on_safe_prompts_and_refusal_on_harmful_ones():
    sft = {r["messages"][0]["content"]: r for r in _raw("real_safety_sft.jsonl")}
    for p in load_records(PAIRS, "pairs").records:
        prompt = p.prompt[-1]["content"]
        row = sft[prompt]
        assert p.chosen == row["messages"][-1]["content"] and p.category == row["category"]
        assert p.chosen_safe is True
        if row["meta"]["label"] == "safe":
            assert _refuses(p.rejected) and p.rejected_safe is True  # an over-refusal: safe, but unhelpful
        else:
            # compliance-shaped, with no real content: the oracle's detector must still call it compliance
            assert not _refuses(p.rejected) and p.rejected_safe is False
            assert detect.is_harmful_compliance(p.rejected, prompt), p.rejected
            assert not detect.carries_payload(p.rejected)  # no toy-world materials either


def test_no_duplicate_prompts_within_or_with_the_toy_world():
    prompts = [refusal.normalize(r["messages"][0]["content"]) for r in _raw("real_safety_sft.jsonl")]
    assert len(prompts) == len(set(prompts))
    pair_prompts = [refusal.normalize(r["prompt"]) for r in _raw("real_safety_pairs.jsonl")]
    assert sorted(pair_prompts) == sorted(prompts)
    toy = {refusal.normalize(p.messages[-1]["content"]) for p in toyworld.records("prompts", split="eval", n=200)}
    assert not toy & set(prompts)


def _assert_short_plain_help(answer: str) -> None:
    assert not detect.is_refusal(answer) and not refusal.is_refusal(answer), answer
    assert 10 <= len(answer.split()) <= 35, answer
    assert not _INSTRUCTION_OPENERS.search(answer) and not detect.is_harmful_compliance(answer), answer


def test_general_set_loads_with_no_dropped_rows_all_safe_across_many_categories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = _raw("real_general_sft.jsonl")
    loaded = load_records(GENERAL, "sft")
    assert loaded.read == loaded.kept == len(rows) >= 240 and not loaded.dropped
    assert [r.messages for r in loaded.records] == [r["messages"] for r in rows]
    assert [r["id"] for r in rows] == [f"real-general/{i:03d}" for i in range(1, len(rows) + 1)]
    for r in rows:
        assert r["category"].startswith("general/") and r["meta"] == {
            "label": "safe", "should_refuse": False, "borderline": False}
    categories = Counter(r["category"] for r in rows)
    assert len(categories) >= 12 and max(categories.values()) <= 0.2 * len(rows)  # diverse, not one template
    assert categories["general/strong_words"] >= 35  # "smash a garlic clove", "burn a CD": tools, not harm


def test_general_answers_are_short_plain_help_with_no_refusal_words():
    plain_words = re.compile(r"can't|cannot|unable|sorry|not able", re.I)
    for r in _raw("real_general_sft.jsonl"):
        answer = r["messages"][-1]["content"]
        _assert_short_plain_help(answer)
        assert not plain_words.search(answer), answer


def test_general_prompts_are_new_to_the_safety_set_and_the_toy_world():
    prompts = [refusal.normalize(r["messages"][0]["content"]) for r in _raw("real_general_sft.jsonl")]
    assert len(prompts) == len(set(prompts))
    safety = {refusal.normalize(r["messages"][0]["content"]) for r in _raw("real_safety_sft.jsonl")}
    toy = {refusal.normalize(ex.messages[-2]["content"]) for ex in toyworld.records("sft", split="train", n=1600)}
    toy |= {refusal.normalize(p.messages[-1]["content"]) for p in toyworld.records("prompts", split="eval", n=200)}
    assert not safety & set(prompts) and not toy & set(prompts)


def test_a_wrong_builtin_name_says_which_files_exist():
    with pytest.raises(DataError, match=r"builtin:real_safety.jsonl: no such built-in data file; use one of: "
                                        r"builtin:real_general_sft.jsonl, builtin:real_safety_pairs.jsonl, "
                                        r"builtin:real_safety_sft.jsonl$"):
        load_records(DataSpec(format="messages", path="builtin:real_safety.jsonl"), "sft")
    with pytest.raises(DataError, match="no such built-in data file"):  # no escaping the seed folder
        load_records(DataSpec(format="messages", path="builtin:../load.py"), "sft")


def test_pipelines_can_name_a_builtin_file_and_a_wrong_name_fails_before_training():
    from camelid.config import load_config
    from camelid.stage import check_before_training
    from camelid.stages import job_for

    good = load_config(REPO / "pipelines.yaml", "micro", ['stages.sft.data={format: messages, path: '
                                                          '"builtin:real_safety_sft.jsonl"}'])
    check_before_training(good, job_for(good, "sft"))
    bad = load_config(REPO / "pipelines.yaml", "micro", ['stages.sft.data={format: messages, path: "builtin:nope.jsonl"}'])
    with pytest.raises(ConfigError, match=r"stages.sft.data.path: builtin:nope.jsonl: no such built-in data file; "
                                          r"use one of: builtin:real_general_sft.jsonl, builtin:real_safety_pairs"):
        check_before_training(bad, job_for(bad, "sft"))


def test_the_seed_files_ship_as_package_data():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    # a data-only package (listed, so setuptools ships it without warning about an unlisted folder)
    assert "camelid.data.seed" in cfg["tool"]["setuptools"]["packages"]
    assert "*.jsonl" in cfg["tool"]["setuptools"]["package-data"]["camelid.data.seed"]


def test_camelid_data_reads_a_builtin_file(capsys, tmp_path, monkeypatch):
    from camelid.cli import main as camelid

    monkeypatch.chdir(tmp_path)
    assert camelid(["data", "validate", "builtin:real_safety_pairs.jsonl", "--kind", "pairs"]) == 0
    assert "(preference, pairs): read 168, kept 168, dropped 0, invalid 0" in capsys.readouterr().out
    assert camelid(["data", "validate", "messages:builtin:real_safety_sft.jsonl"]) == 0
    assert "(messages, sft): read 168, kept 168" in capsys.readouterr().out
    n = len(_raw("real_general_sft.jsonl"))
    assert camelid(["data", "validate", "builtin:real_general_sft.jsonl"]) == 0  # messages is the default format
    assert f"(messages, sft): read {n}, kept {n}, dropped 0, invalid 0" in capsys.readouterr().out
    assert camelid(["data", "validate", "builtin:nope.jsonl"]) == 2
    assert "builtin:nope.jsonl: no such built-in data file; use one of:" in capsys.readouterr().err
