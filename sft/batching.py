"""Length-grouped batches whose order is a function of (seed, epoch), so `--resume` replays it exactly.

transformers' `LengthGroupedSampler` draws its shuffle from the global torch RNG when an epoch's
iteration starts. On resume the Trainer restores the checkpoint's RNG state *before* that, so the
interrupted epoch would be reshuffled differently and the resumed run would see other batches than
the straight one. Accelerate swaps `RandomSampler` for a seeded one, but leaves this sampler alone.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices
from trl import SFTTrainer


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


class SFTTrainerWithSeededGrouping(SFTTrainer):
    """TRL's SFTTrainer; with `train_sampling_strategy="group_by_length"` its train sampler is epoch-seeded."""

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=seed)
        return sampler
