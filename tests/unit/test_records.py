from __future__ import annotations

import re

import pytest

from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}


def test_sft_needs_assistant_turn():
    assert SFTExample.from_dict({"messages": [U, A]}).messages == [U, A]
    with pytest.raises(DataError, match="f.jsonl:3: field 'messages': has no assistant turn"):
        SFTExample.from_dict({"messages": [U]}, "f.jsonl:3")


@pytest.mark.parametrize("msgs,field", [
    ([{"role": "bot", "content": "x"}], "messages[0].role"),
    ([U, {"role": "assistant", "content": 3}], "messages[1].content"),
    ([U, {"role": "system", "content": "late"}, A], "messages[1].role"),
    ("hello", "messages"),
])
def test_bad_messages_name_the_field(msgs, field):
    with pytest.raises(DataError, match="x:1: field '" + re.escape(field) + "'"):
        SFTExample.from_dict({"messages": msgs}, "x:1")


def test_pair_validation():
    d = {"prompt": [U], "chosen": "a", "rejected": "b", "rating": "slightly_better", "chosen_safe": True}
    assert PreferencePair.from_dict(d).rating == "slightly_better"
    with pytest.raises(DataError, match="field 'rating': must be one of"):
        PreferencePair.from_dict({**d, "rating": "much_better"}, "p:2")
    with pytest.raises(DataError, match="field 'rejected': is missing"):
        PreferencePair.from_dict({"prompt": [U], "chosen": "a"}, "p:2")
    with pytest.raises(DataError, match="field 'chosen': is empty"):
        PreferencePair.from_dict({**d, "chosen": "  "}, "p:2")
    with pytest.raises(DataError, match="field 'chosen_safe'"):
        PreferencePair.from_dict({**d, "chosen_safe": "yes"}, "p:2")
    with pytest.raises(DataError, match="must end with a user message"):
        PreferencePair.from_dict({**d, "prompt": [U, A]}, "p:2")


def test_prompt_validation():
    p = Prompt.from_dict({"messages": [U], "is_safety": True, "meta": {"answer": "4"}})
    assert p.is_safety and p.meta == {"answer": "4"}
    with pytest.raises(DataError, match="field 'is_safety'"):
        Prompt.from_dict({"messages": [U], "is_safety": "yes"})
    assert Prompt.from_dict(p.to_dict()) == p
