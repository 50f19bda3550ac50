"""TRL's SFTTrainer with length-grouped batches that `--resume` replays exactly (see camelid.training.batching), and a
collator that keeps packed bins as rows for attention kernels without varlen support."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from camelid.training.batching import EpochSeededLengthGroupedSampler, data_seed

__all__ = ["EpochSeededLengthGroupedSampler", "RowPackedCollator", "SFTTrainerWithSeededGrouping", "opening_mask",
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


def opening_mask(label_mask: torch.Tensor, tokens: int) -> torch.Tensor:
    """The first `tokens` positions of every run of labelled positions (each answer's opening; packed rows and
    multi-turn conversations have several runs), as a bool tensor shaped like `label_mask`."""
    m = label_mask.bool()
    shift = lambda x: torch.nn.functional.pad(x[..., :-1], (1, 0), value=False)  # noqa: E731 (x[i] <- x[i-1])
    cur = m & ~shift(m)  # each run's first position
    out = cur.clone()
    for _ in range(tokens - 1):
        cur = shift(cur) & m
        out |= cur
    return out


class SFTTrainerWithSeededGrouping(SFTTrainer):
    """TRL's SFTTrainer; with `train_sampling_strategy="group_by_length"` its train sampler is epoch-seeded, and
    its fused LM head scores only labelled positions on CPUs too (`score_labelled_positions_only`).

    `opening_weight` > 1 weights the training loss of each answer's first `opening_tokens` tokens (the SFT config's
    fields of those names). TRL has no per-token loss weights; its `compute_loss_func` hook would need the full
    logits and a second, metrics-only forward. So the weighting is an extra term on the per-token log-probs of
    TRL's own fused forward (caught by a forward hook): loss + (weight - 1) * (the opening tokens' summed NLL) /
    (the tokens TRL divides by).
    """

    def __init__(self, *args, opening_weight: float = 1.0, opening_tokens: int = 1, **kwargs):
        score_labelled_positions_only()
        self.opening_weight, self.opening_tokens = opening_weight, opening_tokens
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
        weighted = self.opening_weight != 1.0 and self.model.training
        fused: list = []  # TRL's fused forward's outputs (per-token log-probs), caught on their way back
        hook = model.register_forward_hook(
            lambda _m, _a, kwargs, result: fused.append(result) if kwargs.get("fused_lm_head") else None,
            with_kwargs=True) if weighted else None
        try:
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                       num_items_in_batch=num_items_in_batch)
        finally:
            if hook is not None:
                hook.remove()
        if weighted:
            if not fused or not fused[-1].log_probs.requires_grad:  # a TRL path that trains on other logits
                raise RuntimeError("stages.sft.opening_weight: TRL's compute_loss did not train through its fused LM "
                                   "head (label smoothing or a compute_loss_func?); the weight has nothing to add to")
            outputs = fused[-1]
            opening = opening_mask(outputs.label_mask, self.opening_tokens)
            count = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
            extra = -(outputs.log_probs * opening).sum() / torch.as_tensor(count).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                extra = extra * (self.accelerator.num_processes // self.get_tp_size())  # as TRL scales its loss
            extra = (self.opening_weight - 1.0) * extra
            out = (out[0] + extra, out[1]) if return_outputs else out + extra
        if real is not None and self.model.training:
            total = self.accelerator.gather_for_metrics(real.to(self.accelerator.device)).sum().item()
            self._total_train_tokens = before + total // self._tp_size
            self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
        return out
