"""TRL's SFTTrainer with length-grouped batches that `--resume` replays exactly (see camelid.batching)."""

from __future__ import annotations

from transformers.trainer_pt_utils import LengthGroupedSampler
from trl import SFTTrainer

from camelid.batching import EpochSeededLengthGroupedSampler, data_seed

__all__ = ["EpochSeededLengthGroupedSampler", "SFTTrainerWithSeededGrouping"]


class SFTTrainerWithSeededGrouping(SFTTrainer):
    """TRL's SFTTrainer; with `train_sampling_strategy="group_by_length"` its train sampler is epoch-seeded."""

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths,
                                                   seed=data_seed(self.args))
        return sampler
