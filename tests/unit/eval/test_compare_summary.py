"""Compare's summary numbers on hand-made CheckpointResults: prompt groups, refusal rates, lengths, families."""

from __future__ import annotations

import numpy as np
import pytest

from camelid.data.load import LoadResult
from camelid.data.records import Prompt
from camelid.eval import compare_summary, stats
from camelid.eval.compare_judge import CheckpointResult
from camelid.eval.compare_summary import prompt_group
from camelid.eval.config import CompareConfig


def _prompt(category=None, is_safety=False, **meta) -> Prompt:
    return Prompt(messages=[{"role": "user", "content": "q"}], is_safety=is_safety, category=category, meta=meta)


@pytest.mark.parametrize(("prompt", "group"), [
    # the XSTest adapter's records: safe prompts are the over-refusal trap, unsafe ones should be refused
    (_prompt("xstest-safe/homonyms", borderline=True, should_refuse=False), "borderline"),
    (_prompt("xstest-unsafe/contrast_homonyms", True, borderline=False, should_refuse=True), "harmful"),
    # the same records after a round trip through a file that kept only the category
    (_prompt("xstest-safe/figurative_language"), "borderline"),
    (_prompt("xstest-unsafe/contrast_figurative_language"), "harmful"),
    (_prompt("xstest-safe"), "borderline"),
    # the labels win over the category and over is_safety
    (_prompt("custom", should_refuse=True), "harmful"),
    (_prompt("xstest-safe/homonyms", borderline=False, should_refuse=True), "harmful"),
    (_prompt("custom", True, borderline=True), "borderline"),
    # the toy world says it outright
    (_prompt("harmful/weapons", True, kind="harmful"), "harmful"),
    (_prompt("borderline/kill", kind="borderline"), "borderline"),
    (_prompt("arith/add", kind="task"), "benign"),
    # everything else: is_safety
    (_prompt("beavertails/violence", True), "harmful"),
    (_prompt("gsm8k"), "benign"),
    (_prompt("xstest/contrast_homonyms"), "benign"),  # the old category form is no XSTest label
])
def test_prompt_group_reads_xstest_labels_and_categories(prompt, group):
    assert prompt_group(prompt) == group


# ---- per-checkpoint and pairwise numbers on hand-made results -----------------------------------------

# (kind, family/subfamily): 3 arith tasks, 1 string task, 2 harmful, 2 borderline
TOY = [("task", "arith/add"), ("task", "arith/add"), ("task", "arith/mul"), ("task", "string/upper"),
       ("harmful", "harmful/weapons"), ("harmful", "harmful/fraud"), ("borderline", "borderline/kill"),
       ("borderline", "borderline/shoot")]


def toy_prompts() -> LoadResult:
    records = [_prompt(cat, kind == "harmful", kind=kind) for kind, cat in TOY]
    return LoadResult(kind="prompts", records=records, read=len(records), name="toy", format="toy")


def toy_result(ref: str, refused: list[int], correct: list[int], words: list[int], tokens: list[int] | None,
               ) -> CheckpointResult:
    """The oracle's per-prompt verdicts as compare_judge stores them (OracleScore.to_dict())."""
    oracle = [{"kind": kind, "category": cat, "correct": bool(c), "refused": bool(x), "safe": True,
               "quality": float(c), "verdict": "correct" if c else "wrong"}
              for (kind, cat), c, x in zip(TOY, correct, refused)]
    r = CheckpointResult(ref=ref, hash=ref, responses=[f"answer {i}" for i in range(len(TOY))], cached=False,
                         lengths=np.array(words, dtype=float), refused=np.array(refused, dtype=bool),
                         tokens=None if tokens is None else np.array(tokens, dtype=float))
    r.oracle, r.unsafe = oracle, np.zeros(len(TOY), dtype=bool)
    r.scores["oracle"] = np.array([o["quality"] for o in oracle])
    return r


def toy_numbers() -> dict:
    sft = toy_result("sft@v1", refused=[0, 0, 0, 1, 1, 1, 1, 1], correct=[1, 0, 1, 0, 1, 1, 0, 0],
                     words=[2, 4, 6, 8, 1, 1, 1, 1], tokens=[3, 5, 7, 9, 2, 2, 2, 2])
    ppo = toy_result("ppo@v1", refused=[0, 0, 0, 0, 1, 0, 0, 1], correct=[1, 1, 1, 1, 1, 0, 1, 0],
                     words=[1, 1, 1, 1, 1, 1, 1, 1], tokens=None)
    return compare_summary.summarize(CompareConfig(bootstrap=200), toy_prompts(), [sft, ppo], reference=None)


def test_refusal_rates_split_harmful_from_benign_but_scary():
    sft, ppo = toy_numbers()["checkpoints"]
    assert sft["harmful_refusal_rate"] == 1.0 and ppo["harmful_refusal_rate"] == 0.5
    assert sft["over_refusal_rate"] == 1.0 and ppo["over_refusal_rate"] == 0.5
    assert sft["refusal_rate"] == 5 / 8  # unchanged: over every prompt


def test_lengths_in_words_and_tokens():
    sft, ppo = toy_numbers()["checkpoints"]
    assert sft["mean_length_words"] == 3.0 and sft["mean_length_tokens"] == 4.0
    assert ppo["mean_length_words"] == 1.0 and ppo["mean_length_tokens"] is None  # no token counts given


def test_task_accuracy_per_family_counts_only_task_prompts():
    sft, ppo = toy_numbers()["checkpoints"]
    assert sft["task_accuracy_per_family"] == {"arith": pytest.approx(2 / 3), "string": 0.0}
    assert ppo["task_accuracy_per_family"] == {"arith": 1.0, "string": 1.0}


def test_pairwise_family_difference_is_a_minus_b_with_a_paired_interval():
    (pair,) = toy_numbers()["pairs"]
    fams = pair["task_accuracy_per_family"]
    assert set(fams) == {"arith", "string"}
    arith = fams["arith"]
    assert (arith["a"], arith["b"], arith["n"]) == (pytest.approx(2 / 3), 1.0, 3)
    assert arith["diff"]["value"] == pytest.approx(-1 / 3)
    assert -1.0 <= arith["diff"]["lo"] <= -1 / 3 <= arith["diff"]["hi"] <= 0.0
    assert fams["string"]["diff"] == {"value": -1.0, "lo": -1.0, "hi": -1.0}  # one prompt: no spread
    assert pair["judges"]["oracle"]["win_rate"]["value"] is not None  # the existing numbers are still there


def test_the_report_names_its_refusal_detector():
    assert toy_numbers()["refusal_detector"]["name"] == "toy-world oracle"
    assert "camelid.eval.refusal.is_refusal" in toy_numbers()["refusal_detector"]["detector"]


def xstest_numbers() -> dict:
    """No oracle (real prompts): XSTest safe/unsafe by the adapter's labels and a BeaverTails-style one."""
    records = [_prompt("xstest-safe/homonyms", borderline=True, should_refuse=False),
               _prompt("xstest-safe/figurative_language", borderline=True, should_refuse=False),
               _prompt("xstest-unsafe/contrast_homonyms", True, borderline=False, should_refuse=True),
               _prompt("beavertails/violence", True), _prompt("gsm8k")]
    lr = LoadResult(kind="prompts", records=records, read=5, name="xstest", format="xstest")
    out = []
    for ref, refused in (("a", [1, 0, 1, 0, 1]), ("b", [0, 0, 1, 1, 0])):
        out.append(CheckpointResult(ref=ref, hash=ref, responses=["x"] * 5, cached=True, lengths=np.ones(5),
                                    refused=np.array(refused, dtype=bool), tokens=np.full(5, 2.0)))
    return compare_summary.summarize(CompareConfig(bootstrap=50), lr, out, reference=None)


def test_string_match_rates_on_xstest_style_prompts():
    numbers = xstest_numbers()
    assert numbers["prompts"]["groups"] == {"harmful": 2, "borderline": 2, "benign": 1}
    assert numbers["refusal_detector"]["name"] == "string match"
    a, b = numbers["checkpoints"]
    assert (a["harmful_refusal_rate"], a["over_refusal_rate"]) == (0.5, 0.5)
    assert (b["harmful_refusal_rate"], b["over_refusal_rate"]) == (1.0, 0.0)
    assert a["task_accuracy_per_family"] is None and a["mean_length_tokens"] == 2.0
    assert numbers["pairs"][0]["task_accuracy_per_family"] == {}


def test_headline_carries_the_new_numbers():
    numbers = toy_numbers()
    h = compare_summary.headline(numbers)
    assert h["refusal_detector"] == "toy-world oracle"
    sft = h["checkpoints"]["sft@v1"]
    for key in ("harmful_refusal_rate", "over_refusal_rate", "mean_length_words", "mean_length_tokens",
                "task_accuracy_per_family", "refusal_rate", "safety_violation_rate", "mean_score"):
        assert sft[key] == numbers["checkpoints"][0][key], key
    (pair,) = h["pairs"]
    assert (pair["a"], pair["b"]) == ("sft@v1", "ppo@v1")
    assert pair["win_rate"]["oracle"] == numbers["pairs"][0]["judges"]["oracle"]["win_rate"]
    assert pair["task_accuracy_diff_per_family"] == {"arith": pytest.approx(-1 / 3), "string": -1.0}


def test_mean_difference_is_paired():
    x, y = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 0.0])
    d = stats.mean_difference(x, y, n_boot=300, seed=0)
    assert d.value == 0.5 and 0.0 <= d.lo <= 0.5 <= d.hi <= 1.0
    same = stats.mean_difference(x, x + 0.25, n_boot=50)
    assert (same.value, same.lo, same.hi) == (-0.25, -0.25, -0.25)  # a paired shift has no spread
