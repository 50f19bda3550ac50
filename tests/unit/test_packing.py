"""Packed rows: the width search and the layout (camelid.training.packing; used by reward training and PPO, #18)."""

from __future__ import annotations

import torch

from camelid.training.packing import first_fit_decreasing, pack, row_width


def _slots(lengths: list[int], width: int) -> int:
    return len(first_fit_decreasing(lengths, width)[2]) * width


def test_lengths_within_2x_of_the_longest_pack_into_wider_rows_with_fewer_slots():
    lengths = [94, 96, 72, 86, 102, 101, 95, 89, 100, 92, 107, 83, 102, 78, 88, 78]  # a SmolLM2-like RM batch
    width = row_width(lengths)
    assert _slots(lengths, max(lengths)) == len(lengths) * max(lengths)  # rows of the longest: no two fit
    assert width > max(lengths)
    assert _slots(lengths, width) < 0.9 * len(lengths) * max(lengths)
    assert _slots(lengths, width) <= min(_slots(lengths, w) for w in range(max(lengths), 4 * max(lengths) + 1))


def test_the_narrowest_width_wins_a_tie_and_one_sequence_keeps_its_length():
    assert row_width([10, 10]) == 10  # 2 rows of 10 or 1 row of 20: same slots, narrower rows
    assert row_width([7]) == 7


def test_pack_keeps_every_real_token_in_order_with_positions_restarting():
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 0, 0, 0], [1, 2, 3, 4, 0]])
    mask = (ids != 0).long()  # left, right and both-sides padding
    packed = pack(ids, mask, width=5)
    for b in range(3):
        got = packed.input_ids[packed.row[b], packed.offset[b]:packed.offset[b] + packed.length[b]]
        assert got.tolist() == ids[b][mask[b].bool()].tolist()
        assert packed.position_ids[packed.row[b], packed.offset[b]:packed.last[b] + 1].tolist() == list(
            range(int(packed.length[b])))
    assert int(packed.real.sum()) == int(mask.sum())
    assert pack(ids, mask, width=2).input_ids.shape[1] == 4  # never narrower than the longest sequence
