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
from transformers.modeling_outputs import SequenceClassifierOutputWithPast
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from camelid.log import get_logger
from camelid.models import is_sharded
from camelid.reward.scoring import score_head
from camelid.training.batching import EpochSeededLengthGroupedSampler, data_seed
from camelid.training.packing import pack

log = get_logger("reward")

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


class PackedScores:
    """Stands in for ``model`` in TRL's compute_loss: the same (2B, 1) scores, from packed rows.

    TRL pads chosen and rejected answers of a batch to one width (20% of the slots on SmolLM2's toy pairs,
    48% on the tiny model's, with random batches). Here the real tokens are packed into rows
    (`camelid.training.packing.pack`: positions restart per sequence, no attention mask, so attention stays within each
    sequence) and the head reads each sequence's last real token, the token the padded model pools. Same
    batches, same scores to float summation order (tests/unit/reward/test_packed_scores.py), fewer slots.
    """

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> SequenceClassifierOutputWithPast:
        packed = pack(input_ids, attention_mask)
        # Through model(...) so DDP's hooks and peft adapters see the call; its own pooled logits go unused.
        out = self.model(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False,
                         output_hidden_states=-1)
        hidden = out.hidden_states[-1][packed.row, packed.last]  # (2B, H)
        return SequenceClassifierOutputWithPast(logits=score_head(self.model)(hidden))


class CamelidRewardTrainer(RewardTrainer):
    def __init__(self, *args, aux_safety_weight: float = 0.0, packing: bool = False, **kwargs):
        self.aux_safety_weight = aux_safety_weight
        super().__init__(*args, **kwargs)
        # FSDP / ZeRO-3 shard the head's weights outside the model's forward, so the head can't be read there.
        self.packing = packing and not is_sharded(self)
        if packing and not self.packing:
            log.info("reward packing is off: the weights are sharded (FSDP / ZeRO-3); padded batches instead")

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
        if self.packing:
            model = PackedScores(model)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.aux_safety_weight > 0 and labels is not None:
            aux = aux_safety_loss(outputs.logits.squeeze(-1), labels.to(outputs.logits.device))
            loss = loss + self.aux_safety_weight * aux
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["aux_safety_loss"].append(aux.item())
        return (loss, outputs) if return_outputs else loss
