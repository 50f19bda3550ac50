"""Two checkpoints that give the same answer to a prompt tie on every RM judge (#14).

A real RM scores the same (prompt, answer) a few 1e-6 apart in different batches (padding changes the float
sums); compare counted those as wins and losses. On SmolLM2 71 of 118 identical answers of sft and rs did so,
which moved the combined win rate from ~0.52 to 0.49. Compare now scores each distinct answer to a prompt once.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from camelid.eval.compare_judge import CheckpointResult, judge_all
from camelid.reward import scoring


class BatchSensitiveScorer:
    """Length-based score plus a tiny batch-dependent offset, as padding gives a real RM; counts answers scored."""

    def __init__(self):
        self.scored = []

    def score(self, conversations, responses):
        self.scored += list(responses)
        pad = max(len(x) for x in responses)  # the batch's longest answer sets the padding
        return torch.tensor([len(r) / 10 + 1e-6 * pad for r in responses])


def result(ref: str, responses: list[str]) -> CheckpointResult:
    return CheckpointResult(ref=ref, hash=ref, responses=responses, cached=False,
                            lengths=np.array([len(r.split()) for r in responses]), refused=np.zeros(len(responses)))


def test_an_answer_two_checkpoints_share_is_scored_once_and_ties(monkeypatch):
    scorers = {}

    def load(art, registry, **_):
        return scorers.setdefault(art.ref, BatchSensitiveScorer())

    monkeypatch.setattr(scoring, "load_reward_model", load)
    prompts = SimpleNamespace(format="messages", records=[
        SimpleNamespace(messages=[{"role": "user", "content": f"q{i}"}], is_safety=False) for i in range(3)])
    a = result("a", ["same answer", "a's own", "x"])
    b = result("b", ["same answer", "b's own answer", "x"])  # prompts 0 and 2: the same answer as a's
    rms = {"reward_helpfulness": SimpleNamespace(ref="h"), "reward_safety": SimpleNamespace(ref="s")}
    judge_all(SimpleNamespace(), rms, prompts, [a, b], registry=None)
    for judge in ("helpfulness", "safety", "combined"):
        assert a.scores[judge][0] == b.scores[judge][0] and a.scores[judge][2] == b.scores[judge][2], judge
        assert a.scores[judge][1] != b.scores[judge][1]
    # each RM saw a's three answers and only b's one answer that differs
    assert scorers["h"].scored == ["same answer", "a's own", "x", "b's own answer"] == scorers["s"].scored
