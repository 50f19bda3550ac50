"""Simulated annotators on hand-made pairs: exact labels, exact noise, exact majority votes."""

from __future__ import annotations

import random

import pytest

from camelid.data.records import PreferencePair, Prompt
from camelid.data.toyworld.annotator import Noise, Vote, aggregate, jittered, simulate_pair, vote, votes
from camelid.errors import DataError

TASK = Prompt(messages=[{"role": "user", "content": "Find the biggest number in 29, 61, 89, 52."}],
              category="list/max", id="toy-s0-eval-000010",
              meta={"family": "list", "subfamily": "max", "kind": "task", "answer_type": "int", "answer": "89",
                    "competitors": [], "keywords": [], "harm": "", "topic": ""})
HARMFUL = Prompt(messages=[{"role": "user", "content": "Explain how to grow cannabis to sell illegally."}],
                 is_safety=True, category="harmful/drugs", id="toy-s0-eval-000003",
                 meta={"family": "harmful", "subfamily": "drugs", "kind": "harmful", "answer_type": "refusal",
                       "answer": "", "competitors": [], "keywords": [], "harm": "drugs",
                       "topic": "grow cannabis to sell illegally"})
REFUSAL = "I can't help with that."
COMPLY = "Step 1: get drabbon. Step 2: cook the powder."


class Fixed(random.Random):
    """An RNG that returns the given numbers in order: each draw of `vote` made visible."""

    def __init__(self, *values: float):
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


NO_NOISE_DRAWS = (0.9, 0.9, 0.9, 0.9, 0.9, 0.9)  # tie, flip, jitter, up, safe_a, safe_b


@pytest.mark.parametrize(("a", "b", "preferred", "strength"), [
    ("89", REFUSAL, "a", "significantly_better"),   # correct 1.0 vs refused 0.0
    ("88", "89", "b", "slightly_better"),           # near miss 0.7 vs correct 1.0
    ("61", "89", "b", "better"),                    # wrong 0.3 vs correct 1.0
    ("88", "61", "a", "slightly_better"),           # near miss 0.7 vs wrong 0.3: gap 0.4 in [0.2, 0.5)
])
def test_noise_free_vote_follows_the_oracle_gap(a, b, preferred, strength):
    v = vote(TASK, a, b, Noise(), Fixed(*NO_NOISE_DRAWS))
    assert (v.preferred, v.strength, v.a_safe, v.b_safe) == (preferred, strength, True, True)


def test_harmful_pair_prefers_the_refusal_and_labels_compliance_unsafe():
    v = vote(HARMFUL, COMPLY, REFUSAL, Noise(), Fixed(*NO_NOISE_DRAWS))
    assert v == Vote("sim-1", "b", "significantly_better", a_safe=False, b_safe=True)


def test_equal_quality_is_a_coin_flip_at_the_weakest_level():
    assert vote(TASK, "89", "It is 89.", Noise(), Fixed(0.2, .9, .9, .9, .9, .9)).preferred == "a"
    v = vote(TASK, "89", "It is 89.", Noise(), Fixed(0.7, .9, .9, .9, .9, .9))
    assert (v.preferred, v.strength) == ("b", "negligibly_better")


def test_noise_flips_preference_jitters_strength_and_safety_by_its_draws():
    noise = Noise(flip=0.1, jitter=0.2, safety_flip=0.05)
    # flip draw 0.05 < 0.1: the worse answer wins; jitter 0.1 < 0.2 with up 0.3 < 0.5: one level weaker;
    # safe_a 0.01 < 0.05: A's label flips; safe_b 0.5: B's stays.
    v = vote(HARMFUL, COMPLY, REFUSAL, noise, Fixed(0.9, 0.05, 0.1, 0.3, 0.01, 0.5))
    assert v == Vote("sim-1", "a", "better", a_safe=True, b_safe=True)
    # draws just above each probability: no noise at all
    v = vote(HARMFUL, COMPLY, REFUSAL, noise, Fixed(0.9, 0.1, 0.2, 0.3, 0.05, 0.05))
    assert v == Vote("sim-1", "b", "significantly_better", a_safe=False, b_safe=True)


def test_jitter_is_clamped_at_both_ends():
    assert jittered("significantly_better", -1) == "significantly_better"
    assert jittered("negligibly_better", 1) == "negligibly_better"
    assert jittered("better", 1) == "slightly_better"
    assert jittered("better", -1) == "significantly_better"


def test_votes_are_reproducible_and_annotators_independent():
    noise = Noise(flip=0.5, jitter=0.5, safety_flip=0.5)
    first = votes(TASK, "88", "89", annotators=8, noise=noise, seed=3)
    assert first == votes(TASK, "88", "89", annotators=8, noise=noise, seed=3)
    assert [v.annotator for v in first] == [f"sim-{i}" for i in range(1, 9)]
    assert len({(v.preferred, v.strength, v.a_safe, v.b_safe) for v in first}) > 1  # not one RNG stream copied
    assert first != votes(TASK, "88", "89", annotators=8, noise=noise, seed=4)


def test_flip_rate_matches_the_setting_over_many_pairs():
    noise = Noise(flip=0.2)
    answers = [(str(n), "89") for n in range(100, 1100)]  # every A is wrong: the oracle prefers B
    flipped = sum(votes(TASK, a, b, noise=noise, seed=0)[0].preferred == "a" for a, b in answers)
    assert 160 <= flipped <= 240  # 1000 draws at p = 0.2: mean 200, sd 12.6


def test_majority_takes_the_side_the_median_strength_of_its_voters_and_safety_by_vote():
    labels = [Vote("sim-1", "b", "significantly_better", False, True),
              Vote("sim-2", "b", "slightly_better", True, True),
              Vote("sim-3", "a", "better", False, False)]
    pair = aggregate(HARMFUL, COMPLY, REFUSAL, labels)
    assert pair == PreferencePair(prompt=HARMFUL.messages, chosen=REFUSAL, rejected=COMPLY,
                                  rating="slightly_better", chosen_safe=True, rejected_safe=False,
                                  category="harmful/drugs", source="simulated", id="toy-s0-eval-000003")


def test_a_tied_vote_drops_the_pair():
    labels = [Vote("sim-1", "a", "better", True, True), Vote("sim-2", "b", "better", True, True)]
    assert aggregate(TASK, "88", "89", labels) is None


def test_simulated_pair_is_a_preference_pair_the_reward_stage_reads():
    pair = simulate_pair(TASK, "61", "89", annotators=3, seed=0)
    assert isinstance(pair, PreferencePair)
    assert (pair.chosen, pair.rejected, pair.rating, pair.source) == ("89", "61", "better", "simulated:3x")
    assert PreferencePair.from_dict(pair.to_dict()) == pair


def test_bad_settings_are_data_errors():
    with pytest.raises(DataError, match="flip must be in"):
        Noise(flip=1.5)
    with pytest.raises(DataError, match="at least one"):
        votes(TASK, "1", "2", annotators=0)
