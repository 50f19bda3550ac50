"""Mixtures: weights as shares, cross-source dedup, held-out split by prompt."""

import json

import pytest

from camelid.data.load import load_records
from camelid.data.mixture import heldout_split, normalise, prompt_key, shares
from camelid.data.records import PreferencePair, SFTExample
from camelid.data.spec import DataSpec


def write_sft(path, n, prefix, offset=0):
    with open(path, "w") as f:
        for i in range(offset, offset + n):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"{prefix} question {i}"},
                                             {"role": "assistant", "content": f"answer {i}"}]}) + "\n")
    return str(path)


def test_shares_follow_weights_without_repeating():
    assert shares([1.0, 1.0], [100, 10]) == [10, 10]
    assert shares([3.0, 1.0], [100, 100]) == [100, 33]
    assert shares([1.0, 3.0], [100, 30]) == [10, 30]
    assert shares([1.0, 1.0], [50, 0]) == [50, 0]  # an empty source takes no share


def test_mixture_samples_by_weight_with_the_seed(tmp_path):
    a, b = write_sft(tmp_path / "a.jsonl", 40, "A"), write_sft(tmp_path / "b.jsonl", 10, "B")
    specs = [DataSpec(format="messages", path=a, weight=2.0, seed=7), DataSpec(format="messages", path=b)]
    res = load_records(specs, "sft")
    assert res.read == 50 and res.kept == 30
    assert sum(r.source == "messages/a" for r in res.records) == 20
    assert res.dropped == {"not sampled (mixture weights)": 20}
    assert res.mixture == [("messages/a", 2.0, 40, 20), ("messages/b", 1.0, 10, 10)]
    assert res.notes == ["messages/b set the mixture's size: 10 rows for weight 1, so 20 rows of the other sources "
                         "were not sampled, to keep the weights' proportions"]
    again = load_records(specs, "sft")
    assert again.fingerprint == res.fingerprint
    other_seed = load_records([specs[0].model_copy(update={"seed": 8}), specs[1]], "sft")
    assert other_seed.fingerprint != res.fingerprint


def test_mixture_dedups_across_sources_by_normalised_text(tmp_path):
    a = write_sft(tmp_path / "a.jsonl", 5, "Q")
    b = tmp_path / "b.jsonl"
    rows = [{"messages": [{"role": "user", "content": "  q   QUESTION 1 "}, {"role": "assistant", "content": "Answer 1"}]},
            {"messages": [{"role": "user", "content": "new one"}, {"role": "assistant", "content": "x"}]}]
    b.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = load_records([DataSpec(format="messages", path=a, weight=5), DataSpec(format="messages", path=str(b))],
                       "sft")
    assert res.dropped["duplicate of a record in an earlier source"] == 1
    assert res.kept == 6 and res.records[-1].messages[0]["content"] == "new one"


def test_heldout_split_by_prompt_never_shares_a_prompt():
    records = [SFTExample(messages=[{"role": "user", "content": f"Prompt {i % 50}"},
                                    {"role": "assistant", "content": f"reply {i}"}]) for i in range(200)]
    records += [PreferencePair(prompt=[{"role": "user", "content": f"prompt  {i}"}], chosen="a", rejected="b")
                for i in range(50)]
    train, held = heldout_split(records, 0.2, seed=3)
    assert len(train) + len(held) == 250
    assert {prompt_key(r) for r in train}.isdisjoint({prompt_key(r) for r in held})
    assert 0.05 < len(held) / 250 < 0.4
    assert heldout_split(records, 0.2, seed=3) == (train, held)
    assert heldout_split(records, 0.2, seed=4)[1] != held
    # stable: adding data does not move existing prompts
    _, held_more = heldout_split(records + [SFTExample(messages=[{"role": "user", "content": "new"},
                                                                 {"role": "assistant", "content": "x"}])], 0.2, 3)
    assert set(map(id, held)) <= set(map(id, held_more)) and len(held_more) - len(held) <= 1
    with pytest.raises(ValueError):
        heldout_split(records, 1.5)


def test_normalise():
    assert normalise("  Ｈello\n\tWORLD ") == "hello world"


def test_a_source_that_duplicates_cut_below_its_weight_is_named(tmp_path):
    """Weight = n, but rows an earlier source holds are dropped: the others shrink, and the note says why."""
    a = write_sft(tmp_path / "a.jsonl", 10, "Q")
    b = write_sft(tmp_path / "b.jsonl", 10, "Q", offset=6)  # 4 of its 10 repeat a's
    res = load_records([DataSpec(format="messages", path=a, weight=10), DataSpec(format="messages", path=b, weight=10)],
                       "sft")
    assert res.kept == 12 and res.dropped["not sampled (mixture weights)"] == 4
    assert res.notes == ["messages/b set the mixture's size: 6 rows (4 dropped as duplicates of an earlier source) "
                         "for weight 10, so 4 rows of the other sources were not sampled, to keep the weights' "
                         "proportions"]
    assert load_records([DataSpec(format="messages", path=a, weight=10), DataSpec(format="messages", path=b, weight=6)],
                        "sft").notes == []
