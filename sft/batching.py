"""TRL's SFTTrainer with length-grouped batches that `--resume` replays exactly (see camelid.training.batching), and a
collator that keeps packed bins as rows for attention kernels without varlen support."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from camelid.training.batching import EpochSeededLengthGroupedSampler, data_seed

__all__ = ["EpochSeededLengthGroupedSampler", "RowPackedCollator", "SFTTrainerWithSeededGrouping",
           "score_labelled_positions_only"]

REAL_TOKENS = "camelid_real_tokens"  # a batch key the trainer pops before the forward: tokens that are not padding


@dataclass
class RowPackedCollator(DataCollatorForLanguageModeling):
    """Packed examples (TRL's bfd bins: several conversations, ``seq_lengths``) as rows of one (R, W) batch.

    TRL's padding-free collator flattens the whole batch into one row for varlen kernels (flash-attn, flex).
    Under sdpa or eager that row gets a full (tokens x tokens) mask: on CPU, SmolLM2 ran 8 bins of 192 tokens
    slower than unpacked length-grouped batches, at 1.5x the memory (bench/RESULTS.md). Here each bin stays a
    row and positions restart at every conversation, so transformers builds a block-diagonal mask per row
    (no attention mask given: masking_utils reads packing from the position ids). The slots after a row's last
    conversation are one more sequence of their own, with no labels. A conversation's first token is not
    predicted from the one before it (its label is -100), as in TRL's padding-free collator.
    """

    def torch_call(self, examples: list[dict]) -> dict:
        ids = [torch.as_tensor(e["input_ids"]) for e in examples]
        labels = [torch.as_tensor(e.get("labels", e["input_ids"])) for e in examples]
        positions = self.get_position_ids_from_packed_seq_lengths(
            [e.get("seq_lengths", [len(e["input_ids"])]) for e in examples])
        width = max(len(x) for x in ids)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        out_labels = torch.full((len(ids), width), -100, dtype=torch.long)
        out_pos = torch.arange(width).repeat(len(ids), 1)
        for r, (x, y, p) in enumerate(zip(ids, labels, positions)):
            n = len(x)
            out_ids[r, :n], out_labels[r, :n], out_pos[r, :n] = x, y, p
            out_pos[r, n:] -= n  # the tail: 0, 1, ... a sequence of its own
        out_labels[out_pos == 0] = -100
        return {"input_ids": out_ids, "labels": out_labels, "position_ids": out_pos,
                REAL_TOKENS: torch.tensor(sum(len(x) for x in ids))}


def score_labelled_positions_only() -> None:
    """Make TRL's fused LM head score only the labelled positions on CPUs too, as it does on Triton devices.

    SFTTrainer computes the loss through `trl.trainer.utils.add_fused_lm_head`: the LM head in tiles, without
    (B, T, V) logits. Off Triton devices it scores EVERY position (to keep tile shapes fixed for compilers such as
    Neuron's), so on a CPU, SmolLM2 with 64 of 160 tokens labelled needed 3,085 MB above the weights against
    2,381 MB for plain full logits, at 1.13x the time. Scoring the labelled positions only: 2,298 MB and 0.96x the
    full-logits time, the same loss (bench/RESULTS.md, tests/unit/sft/test_fused_head.py). CPU kernels are eager,
    so a varying number of positions costs nothing there. TRL reads `_use_triton` for exactly this choice; if a
    TRL version drops the name, this does nothing.
    """
    import trl.trainer.utils as trl_utils

    use_triton = getattr(trl_utils, "_use_triton", None)
    if use_triton is None or getattr(use_triton, "camelid_cpu_compact", False):
        return

    def compact_on_cpu(device: torch.device) -> bool:
        return device.type == "cpu" or use_triton(device)

    compact_on_cpu.camelid_cpu_compact = True
    compact_on_cpu.trl_original = use_triton  # what TRL ships (tests compare against it)
    trl_utils._use_triton = compact_on_cpu


class SFTTrainerWithSeededGrouping(SFTTrainer):
    """TRL's SFTTrainer; with `train_sampling_strategy="group_by_length"` its train sampler is epoch-seeded, and
    its fused LM head scores only labelled positions on CPUs too (`score_labelled_positions_only`)."""

    def __init__(self, *args, **kwargs):
        score_labelled_positions_only()
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths,
                                                   seed=data_seed(self.args))
        return sampler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's loss; with `RowPackedCollator` batches, the token count it logs is the real tokens' (TRL counts
        a batch without an attention mask as one flattened row: position_ids.size(1))."""
        real = inputs.pop(REAL_TOKENS, None)
        before = self._total_train_tokens
        out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                   num_items_in_batch=num_items_in_batch)
        if real is not None and self.model.training:
            total = self.accelerator.gather_for_metrics(real.to(self.accelerator.device)).sum().item()
            self._total_train_tokens = before + total // self._tp_size
            self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
        return out
