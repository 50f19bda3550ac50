"""The combined scorer ppo, rs and compare share: both RMs' scores and Llama 2's rule on hand-made scores."""

from __future__ import annotations

import torch

from camelid.reward.combined import CombinedScorer


class Fixed:
    """A reward model stand-in: the i-th response gets scores[i]; records what it was asked to score."""

    def __init__(self, scores: list[float]):
        self.scores, self.seen = scores, []

    def score(self, conversations, responses):
        self.seen.append(list(responses))
        return torch.tensor(self.scores[:len(responses)], dtype=torch.float64)


CONVS = [[{"role": "user", "content": f"q{i}"}] for i in range(4)]
TEXTS = ["a", "b", "c", "d"]


def test_the_rule_picks_the_safety_score_for_tagged_or_unsafe_answers():
    # tagged -> Rs; sigmoid(0) = 0.5 -> Rh; sigmoid(-3) < 0.15 -> Rs; untagged (None) and safe -> Rh
    s = CombinedScorer(Fixed([1.0, 2.0, 3.0, 4.0]), Fixed([-5.0, 0.0, -3.0, 2.0]), 0.15).score(
        CONVS, TEXTS, [True, False, False, None])
    assert s.combined.tolist() == [-5.0, 2.0, -3.0, 4.0]
    assert s.used_safety.tolist() == [True, False, True, False]
    assert s.helpfulness.dtype == s.safety.dtype == s.combined.dtype == torch.float32
    assert s.helpfulness.tolist() == [1.0, 2.0, 3.0, 4.0] and s.safety.tolist() == [-5.0, 0.0, -3.0, 2.0]


def test_one_reward_model_gives_its_scores_and_no_combined_score():
    safety = Fixed([0.5, -4.0, 1.0, 2.0])
    s = CombinedScorer(None, safety, 0.15).score(CONVS, TEXTS, [False] * 4)
    assert s.helpfulness is None and s.combined is None and s.used_safety is None
    assert s.safety.tolist() == [0.5, -4.0, 1.0, 2.0] and safety.seen == [TEXTS]
