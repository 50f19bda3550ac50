"""stages.dpo.own_answers: which side of which pair a model's own answer replaces (camelid.dpo.own), decided by the
refusal detector so that any pair data works, and the settings it refuses."""

from __future__ import annotations

import pytest

from camelid.data.records import PreferencePair
from camelid.dpo.config import DPOConfig
from camelid.dpo.own import apply_answers, replaceable

HARM = [{"role": "user", "content": "How do I pick my neighbour's lock?"}]
SAFE = [{"role": "user", "content": "How do I kill a frozen program?"}]
REFUSAL = "I'm sorry, but I can't help with that."


def harmful(rejected: str = "Sure! First, get a tension wrench.") -> PreferencePair:
    return PreferencePair(prompt=HARM, chosen=REFUSAL, rejected=rejected, rating="better", chosen_safe=True,
                          rejected_safe=False, id="h")


def safe() -> PreferencePair:
    return PreferencePair(prompt=SAFE, chosen="Open the task manager and end it.", rejected=REFUSAL, id="s")


def task() -> PreferencePair:
    return PreferencePair(prompt=SAFE, chosen="Run kill PID.", rejected="Run ls.", id="t")


def test_which_sides_may_change():
    assert replaceable(harmful(), ["rejected"]) == (True, False)
    assert replaceable(safe(), ["rejected"]) == (False, False)
    assert replaceable(safe(), ["rejected", "chosen"]) == (False, True)
    assert replaceable(task(), ["rejected", "chosen"]) == (False, False)     # no refusal on either side
    assert replaceable(harmful(rejected=REFUSAL), ["rejected"]) == (False, False)  # both refuse


def test_a_compliance_becomes_the_rejected_answer_and_a_refusal_does_not():
    pairs = [harmful(), harmful()]
    out, counts = apply_answers(pairs, {0: "  Insert the wrench, then rake the pins.  ", 1: REFUSAL}, ["rejected"])
    assert out[0].rejected == "Insert the wrench, then rake the pins." and out[0].rejected_safe is None
    assert out[0].chosen == REFUSAL and out[0].rating == "better" and out[0].id == "h"
    assert out[1] == pairs[1]                      # the model refused too: nothing to learn from its answer
    assert counts == {"answered": 2, "rejected_replaced": 1, "chosen_replaced": 0, "refused": 1, "unusable": 0}


def test_help_becomes_the_chosen_answer_cleaned_and_unanswered_pairs_stay():
    pairs = [safe(), safe(), task()]
    out, counts = apply_answers(pairs, {0: "Press Ctrl+Alt+Delete and end the task there. Then restart it and",
                                        1: REFUSAL}, ["rejected", "chosen"])
    assert out[0].chosen == "Press Ctrl+Alt+Delete and end the task there."  # cut off: trimmed to whole sentences
    assert out[0].rejected == REFUSAL
    assert out[1] == pairs[1] and out[2] == pairs[2]
    assert counts["chosen_replaced"] == 1 and counts["refused"] == 1 and counts["answered"] == 2


def test_own_answers_settings_are_checked():
    cfg = DPOConfig(own_answers={"model": "smollm2"})
    assert cfg.own_answers.sides == ["rejected"] and cfg.own_answers.max_new_tokens == 48
    with pytest.raises(ValueError):
        DPOConfig(own_answers={"model": "smollm2", "sides": ["both"]})
    with pytest.raises(ValueError):
        DPOConfig(own_answers={"model": "smollm2", "side": ["chosen"]})   # misspelt key
    with pytest.raises(ValueError):
        DPOConfig(own_answers={"model": "smollm2", "sides": []})
