"""Length-grouped batches whose order is a function of (seed, epoch), so `--resume` replays it exactly.

transformers' `LengthGroupedSampler` draws its shuffle from the global torch RNG when an epoch's
iteration starts. On resume the Trainer restores the checkpoint's RNG state *before* that, so the
interrupted epoch would be reshuffled differently and the resumed run would see other batches than
the straight one. Accelerate swaps `RandomSampler` for a seeded one, but leaves this sampler alone.
Used by the SFT and reward stages' trainers (`group_by_length`).
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

# Batch lengths on GPUs are padded to a multiple of this: every new shape costs a cuDNN attention plan, which
# halved SFT throughput on an H100 (bench/RESULTS.md); multiples of 64 leave a few shapes, each built once.
GPU_PAD_MULTIPLE = 64


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    def __init__(self, batch_size: int, *, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by the Trainer (through accelerate) before every epoch
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def data_seed(args) -> int:
    """The seed a Trainer's data order follows: data_seed when set, else seed."""
    return args.data_seed if args.data_seed is not None else args.seed
