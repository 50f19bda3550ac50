"""Llama 2's data rules on hand-made pairs: the safety filter and mixing shares."""

from __future__ import annotations

from camelid.data.records import PreferencePair
from camelid.reward.rules import drop_unsafe_chosen, mix_count, mix_in

P = [{"role": "user", "content": "q"}]


def pair(i, chosen_safe=None, rejected_safe=None, source="s"):
    return PreferencePair(prompt=P, chosen=f"c{i}", rejected=f"r{i}", chosen_safe=chosen_safe,
                          rejected_safe=rejected_safe, source=source, id=str(i))


def test_drop_unsafe_chosen_only_drops_unsafe_over_safe():
    pairs = [pair(0, False, True),   # dropped: unsafe chosen over safe rejected
             pair(1, True, False),   # kept: the point of safety data
             pair(2, False, False),  # kept: both unsafe, chosen is less bad
             pair(3, True, True),
             pair(4, None, True),    # unknown label: kept
             pair(5, False, None),
             pair(6, False, True)]   # dropped
    kept, dropped = drop_unsafe_chosen(pairs)
    assert dropped == 2
    assert [p.id for p in kept] == ["1", "2", "3", "4", "5"]


def test_mix_count_gives_the_share_of_the_final_set():
    assert mix_count(90, 0.1) == 10      # 10 / 100
    assert mix_count(900, 0.25) == 300   # 300 / 1200
    assert mix_count(90, 0.0) == 0
    assert mix_count(0, 0.5) == 0


def test_mix_in_adds_a_seeded_share_and_keeps_all_primary():
    primary = [pair(i, source="safety") for i in range(90)]
    other = [pair(100 + i, source="help") for i in range(50)]
    mixed, added = mix_in(primary, other, 0.1, seed=3)
    assert added == 10 and len(mixed) == 100
    assert sum(p.source == "help" for p in mixed) == 10
    assert {p.id for p in primary} <= {p.id for p in mixed}
    assert [p.id for p in mix_in(primary, other, 0.1, seed=3)[0]] == [p.id for p in mixed]  # deterministic
    assert [p.id for p in mixed[:10]] != [p.id for p in primary[:10]]  # shuffled, not appended


def test_mix_in_is_capped_by_the_other_set():
    mixed, added = mix_in([pair(i) for i in range(90)], [pair(100), pair(101)], 0.5)
    assert added == 2 and len(mixed) == 92
