"""TRL's RewardTrainer plus an optional auxiliary safe/unsafe loss.

The pairwise loss is TRL's own: with a ``margin`` column it is exactly Llama 2's
-log sigmoid(r_c - r_r - m(rating)), plus center_rewards_coefficient * mean((r_c + r_r)^2).
The auxiliary loss (weight ``aux_safety_loss``) adds BCE(sigmoid(score), response is safe) on every
response with a safety label, so that the score itself separates safe from unsafe answers at the
point PPO reads it (sigmoid(score) < 0.15). It is a subclass rather than a second head so the saved
artifact stays a plain num_labels=1 sequence-classification model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from camelid.batching import EpochSeededLengthGroupedSampler, data_seed

UNKNOWN = -1.0  # safety label of a response nobody labelled


def safe_label(value: bool | None) -> float:
    return UNKNOWN if value is None else float(value)


def aux_safety_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE of sigmoid(score) against safe (1) / unsafe (0) over labelled responses; scores, labels (N,)."""
    known = labels != UNKNOWN
    if not known.any():
        return scores.sum() * 0.0  # keeps the graph (and DDP's gradient sync) intact
    return F.binary_cross_entropy_with_logits(scores[known], labels[known])


@dataclass
class PreferenceCollator(DataCollatorForPreference):
    """TRL's collator plus ``safe_labels`` (2B,): chosen labels then rejected, matching input_ids' order."""

    def torch_call(self, examples: list[dict]) -> dict:
        out = super().torch_call(examples)
        out["safe_labels"] = torch.tensor([e["chosen_safe"] for e in examples] +
                                          [e["rejected_safe"] for e in examples], dtype=torch.float)
        return out


class CamelidRewardTrainer(RewardTrainer):
    def __init__(self, *args, aux_safety_weight: float = 0.0, **kwargs):
        self.aux_safety_weight = aux_safety_weight
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        """group_by_length on pairs: a pair's length is its longer side (chosen and rejected pad together)."""
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        ds = train_dataset if train_dataset is not None else self.train_dataset
        lengths = [max(len(c), len(r)) for c, r in zip(ds["chosen_ids"], ds["rejected_ids"])]
        return EpochSeededLengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                               lengths=lengths, seed=data_seed(self.args))

    def _set_signature_columns_if_needed(self):
        # Keep the safety labels through remove_unused_columns; the collator turns them into safe_labels.
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "chosen_safe", "rejected_safe"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("safe_labels", None)  # (2B,)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.aux_safety_weight > 0 and labels is not None:
            aux = aux_safety_loss(outputs.logits.squeeze(-1), labels.to(outputs.logits.device))
            loss = loss + self.aux_safety_weight * aux
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["aux_safety_loss"].append(aux.item())
        return (loss, outputs) if return_outputs else loss
