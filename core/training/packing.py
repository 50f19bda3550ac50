"""Packed rows: a batch's real tokens, several sequences per row, no padding between them.

Position ids restart at 0 at every sequence; with no attention mask, transformers reads that as packing and
builds a block-diagonal causal mask (masking_utils' packed-sequence detection), so every real token sees the
same tokens at the same positions as in the padded layout: same outputs up to float summation order, fewer
slots. Used by PPO's forwards after sampling (`camelid.ppo.rollout.pack_rows`) and by reward-model training
(`camelid.reward.trainer`), where a random batch of chosen + rejected answers is 20-50% padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Packed:
    """Sequences b = 0..B-1 of a padded batch, packed into R <= B rows of width W (`row_width`, >= the longest)."""

    input_ids: torch.Tensor     # (R, W)
    position_ids: torch.Tensor  # (R, W) 0, 1, ... within each sequence; the slots after a row's last one count on
    real: torch.Tensor          # (R, W) bool: a real token (for counting; the model reads the position ids)
    row: torch.Tensor           # (B,) the row holding sequence b
    offset: torch.Tensor        # (B,) the column where sequence b starts
    length: torch.Tensor        # (B,) real tokens of sequence b

    @property
    def padding_share(self) -> float:
        return 1.0 - float(self.real.sum()) / self.real.numel()

    @property
    def last(self) -> torch.Tensor:
        """(B,) the column of each sequence's last real token (in row ``row[b]``)."""
        return self.offset + self.length - 1


def first_fit_decreasing(lengths: list[int], width: int) -> tuple[list[int], list[int], list[int]]:
    """(row, offset) of each length packed into rows of ``width``, longest first; and each row's fill."""
    row, offset, fill = [0] * len(lengths), [0] * len(lengths), []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        k = next((k for k, f in enumerate(fill) if f + lengths[i] <= width), len(fill))
        if k == len(fill):
            fill.append(0)
        row[i], offset[i] = k, fill[k]
        fill[k] += lengths[i]
    return row, offset, fill


# Rows as wide as the longest sequence cannot pair sequences longer than half of it: SmolLM2's ChatML system
# prompt puts every toy pair within 2x of the longest, and such batches stayed 20% padding. So the width is
# searched up to MAX_WIDTH x the longest. Wider rows cost attention (block-diagonal, but sdpa computes the whole
# row's mask): at 135M parameters and 200 tokens that is ~6% of a token's FLOPs.
MAX_WIDTH = 4


def row_width(lengths: list[int]) -> int:
    """The row width, from the longest length to MAX_WIDTH x it (about 64 widths tried), that packs ``lengths``
    into the fewest slots; the narrowest on ties."""
    longest = max(lengths)
    step = max(1, longest // 64)
    return min(range(longest, MAX_WIDTH * longest + 1, step),
               key=lambda w: (len(first_fit_decreasing(lengths, w)[2]) * w, w))


def pack(input_ids: torch.Tensor, attention_mask: torch.Tensor, width: int | None = None) -> Packed:
    """The real tokens (``attention_mask`` 1; left, right or both-sides padding) of (B, T) ``input_ids``, packed.

    A sequence keeps its tokens in order; the slots left at the end of a row are one more sequence of their own
    (positions 0, 1, ...) that nobody reads. ``width``: the row width (at least the longest sequence); by default
    the one of `row_width`.
    """
    mask = attention_mask.bool()
    dev = mask.device
    lengths = mask.sum(-1)  # (B,)
    longest = int(lengths.max())
    width = row_width(lengths.tolist()) if width is None else max(width, longest)
    row, offset, fill = (torch.tensor(x, dtype=torch.long, device=dev)
                         for x in first_fit_decreasing(lengths.tolist(), width))
    within = mask.long().cumsum(-1) - 1  # (B, T) position of each real token in its sequence
    b, col = mask.nonzero(as_tuple=True)
    ids = input_ids.new_zeros((len(fill), width))
    ids[row[b], offset[b] + within[b, col]] = input_ids[b, col]
    columns = torch.arange(width, device=dev)
    real = columns < fill[:, None]  # (R, W)
    pos = torch.where(real, 0, columns - fill[:, None])  # the trailing slots: one sequence of their own
    pos[row[b], offset[b] + within[b, col]] = within[b, col]
    return Packed(ids, pos, real, row, offset, lengths)
