"""The report across rounds, without models: stage times, last-vs-first win rate, labels and RMs against the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camelid.data.records import PreferencePair
from camelid.data.toyworld import world
from camelid.registry import Artifact
from camelid.rounds.report import (
    accuracy_vs_oracle,
    head_to_head,
    label_agreement,
    oracle_truth,
    round_artifacts,
    round_seconds,
    score_difference,
)


def _art(name: str, r: int | None, seconds: float | None, inputs: tuple[str, ...] = ()) -> Artifact:
    config = {"round": r} if r is not None else {}
    metrics = {"seconds": seconds} if seconds is not None else {}
    return Artifact(name=name, version="v1", path=None, manifest={
        "config": config, "metrics": metrics, "inputs": {f"in{i}": {"ref": ref} for i, ref in enumerate(inputs)}})


class FakeRegistry:
    def __init__(self, arts: list[Artifact]):
        self.arts = {a.ref: a for a in arts}

    def resolve(self, ref: str, verify: bool = True) -> Artifact:
        return self.arts[ref]


def test_a_rounds_jobs_are_found_from_its_comparison_and_timed_from_their_manifests():
    arts = [_art("sft", None, 176.0), _art("answers-r1", 1, 9.0, ("sft@v1",)),
            _art("pairs-r1", 1, 1.5, ("answers-r1@v1",)), _art("rm-helpfulness-r1", 1, 80.0, ("sft@v1", "pairs-r1@v1")),
            _art("rs-r1", 1, 30.0, ("sft@v1",)),
            _art("answers-r2", 2, 8.0, ("rs-r1@v1",)), _art("pairs-r2", 2, 1.0, ("answers-r2@v1",)),
            _art("rm-helpfulness-r2", 2, 90.0, ("sft@v1", "pairs-r1@v1", "pairs-r2@v1")),
            _art("rs-sample-r2", 2, 20.0, ("rs-r1@v1", "rm-helpfulness-r2@v1")),
            _art("rs-r2", 2, 31.0, ("rs-r1@v1", "rs-sample-r2@v1")),
            _art("compare-r2", 2, 40.0, ("sft@v1", "rs-r1@v1", "rs-r2@v1", "rm-helpfulness-r2@v1"))]
    registry = FakeRegistry(arts)
    found = round_artifacts(registry, registry.resolve("compare-r2@v1"), 2)
    assert sorted(a.name for a in found) == ["answers-r2", "compare-r2", "pairs-r2", "rm-helpfulness-r2", "rs-r2",
                                            "rs-sample-r2"]  # nothing of round 1 nor the start
    assert round_seconds(found, 2) == {"answers": 8.0, "pairs": 1.0, "rm-helpfulness": 90.0, "rs-sample": 20.0,
                                       "rs": 31.0, "compare": 40.0, "total": 190.0}


def _wtl(win, tie, loss, rate, lo, hi) -> dict:
    iv = lambda v: {"value": v, "lo": v, "hi": v}  # noqa: E731
    return {"n": 100, "win": iv(win), "tie": iv(tie), "loss": iv(loss), "win_rate": {"value": rate, "lo": lo, "hi": hi}}


def test_head_to_head_is_told_from_the_later_policys_side():
    numbers = {"pairs": [{"a": "sft@v1", "b": "rs-r3@v1", "judges": {"combined": _wtl(0.2, 0.1, 0.7, 0.25, 0.18, 0.33)}},
                         {"a": "rs-r1@v1", "b": "rs-r3@v1", "judges": {"combined": _wtl(0.3, 0.3, 0.4, 0.45, 0.38, 0.52)}},
                         {"a": "rs-r3@v1", "b": "rs-r2@v1", "judges": {"combined": _wtl(0.6, 0.0, 0.4, 0.6, 0.53, 0.67)}}]}
    got = head_to_head(numbers, "rs-r3@v1", "sft@v1", "combined")
    assert got["a"] == "rs-r3@v1" and got["b"] == "sft@v1" and got["n"] == 100
    assert (got["win"], got["tie"], got["loss"]) == (0.7, 0.1, 0.2)  # A's wins are the stored B's
    assert got["win_rate"] == {"value": 0.75, "lo": 0.67, "hi": 0.82} and got["excludes_half"] is True
    unclear = head_to_head(numbers, "rs-r3@v1", "rs-r1@v1", "combined")
    assert unclear["win_rate"] == {"value": 0.55, "lo": 0.48, "hi": 0.62} and unclear["excludes_half"] is False
    as_stored = head_to_head(numbers, "rs-r3@v1", "rs-r2@v1", "combined")
    assert as_stored["win_rate"] == {"value": 0.6, "lo": 0.53, "hi": 0.67} and as_stored["win"] == 0.6
    assert head_to_head(numbers, "rs-r3@v1", "rs-r2@v1", "oracle") is None  # no such judge


def _answer_row(category: str, v1: float, v3: float) -> dict:
    """One prompt of a comparison's answers.jsonl: the two policies' combined scores."""
    return {"category": category, "answers": {"rs-r1@v1": {"scores": {"combined": v1}},
                                              "ppo-r3@v1": {"scores": {"combined": v3}}}}


def test_score_difference_is_the_later_policys_mean_gain_with_a_paired_interval_and_per_family():
    # V3 gains a lot on two borderline prompts, loses a little on a list task, ties on a string task: by the win
    # rate (ties half) it is 0.625, but by the mean combined reward it is ahead by (2 + 2 - 1 + 0) / 4 = 0.75.
    rows = [_answer_row("borderline/b1", 0.0, 2.0), _answer_row("borderline/b2", 1.0, 3.0),
            _answer_row("list/reverse", 1.0, 0.0), _answer_row("string/upper", 0.5, 0.5)]
    got = score_difference(rows, "ppo-r3@v1", "rs-r1@v1", "combined", n_boot=500, seed=3)
    diff = got["mean_difference"]
    assert diff["value"] == pytest.approx(0.75) and diff["lo"] <= 0.75 <= diff["hi"]
    assert got["excludes_zero"] == (diff["lo"] > 0 or diff["hi"] < 0)
    assert got["per_family"] == {
        "borderline": {"n": 2, "win": 1.0, "tie": 0.0, "loss": 0.0, "mean_difference": {"value": 2.0, "lo": 2.0, "hi": 2.0}},
        "list": {"n": 1, "win": 0.0, "tie": 0.0, "loss": 1.0, "mean_difference": {"value": -1.0, "lo": -1.0, "hi": -1.0}},
        "string": {"n": 1, "win": 0.0, "tie": 1.0, "loss": 0.0, "mean_difference": {"value": 0.0, "lo": 0.0, "hi": 0.0}}}
    back = score_difference(rows, "rs-r1@v1", "ppo-r3@v1", "combined", n_boot=500, seed=3)["mean_difference"]
    assert (back["value"], back["lo"], back["hi"]) == pytest.approx((-0.75, -diff["hi"], -diff["lo"]))
    gains = [_answer_row("borderline/b", 0.0, float(g)) for g in np.linspace(0.5, 1.5, 20)]
    assert score_difference(gains, "ppo-r3@v1", "rs-r1@v1", "combined")["excludes_zero"] is True
    assert score_difference(gains, "ppo-r3@v1", "rs-r1@v1", "oracle") is None  # no such judge in the rows


def _toy_pairs():
    """Three task prompts: a correct answer over a wrong one, the same pair flipped, and two equal answers."""
    prompts = [p for p in world(0).prompts("eval", n=60) if p.meta.get("kind") == "task"][:3]
    good = [world(0).reference_answer(p) for p in prompts]
    records = [PreferencePair(prompt=prompts[0].messages, chosen=good[0], rejected="I can't help with that.",
                              rating="better", id=str(prompts[0].id)),
               PreferencePair(prompt=prompts[1].messages, chosen="I can't help with that.", rejected=good[1],
                              rating="significantly_better", id=str(prompts[1].id)),
               PreferencePair(prompt=prompts[2].messages, chosen=good[2], rejected=good[2] + " ",
                              rating="negligibly_better", id=str(prompts[2].id))]
    return records, {str(p.id): p for p in prompts}


def test_labels_are_checked_against_the_oracle_and_pairs_without_a_gap_left_out():
    records, prompts = _toy_pairs()
    truth = oracle_truth(records, prompts)
    assert truth[0][0] is True and truth[1][0] is False and truth[2] is None
    assert truth[0][1] == truth[1][1] == "significantly_better"  # a right answer against a refusal of a task
    assert label_agreement(truth) == {"n": 2, "no_gap": 1, "agreement": 0.5}
    missing = PreferencePair(prompt=[{"role": "user", "content": "hi"}], chosen="a", rejected="b", id="nope")
    assert oracle_truth([missing], prompts) == [None]  # not a toy prompt of the round: no truth
    assert label_agreement([None]) == {"n": 0, "no_gap": 1, "agreement": None}


def test_rm_accuracy_against_the_oracle_reads_the_truth_not_the_label():
    records, prompts = _toy_pairs()
    truth = oracle_truth(records, prompts)
    # The RM prefers the right answer both times: right on the oracle's side, whatever the (wrong) second label says.
    rc, rr = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([-1.0, 2.0, 5.0])
    got = accuracy_vs_oracle(rc, rr, truth)
    assert got == {"overall": 1.0, "n": 2, "levels": {"significantly_better": {"accuracy": 1.0, "n": 2}}}
    assert accuracy_vs_oracle(rr, rc, truth)["overall"] == 0.0
    by_family = accuracy_vs_oracle(torch.tensor([2.0, 2.0, 0.0]), rr, truth, ["arith", "lookup", "arith"])
    assert by_family["families"] == {"arith": {"accuracy": 1.0, "n": 1}, "lookup": {"accuracy": 0.0, "n": 1}}
    assert accuracy_vs_oracle(rc, rr, [None, None, None]) == {"overall": None, "n": 0, "levels": {}}
