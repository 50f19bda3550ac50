"""Packed SFT bins as rows (RowPackedCollator): each conversation's loss as if it were alone (#18)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from camelid.sft.batching import REAL_TOKENS, RowPackedCollator

PAD = 0
BINS = [[5, 7], [9], [3, 4, 2]]  # TRL's bfd bins: conversation lengths per packed example


def _examples(seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for lengths in BINS:
        ids, labels = [], []
        for n in lengths:
            conv = torch.randint(1, 50, (n,), generator=g).tolist()
            ids += conv
            labels += [-100] * (n // 2) + conv[n // 2:]  # answer tokens only, as camelid's SFT data has them
        out.append({"input_ids": ids, "labels": labels, "seq_lengths": lengths})
    return out


def _model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                        pad_token_id=PAD)).eval()


def test_rows_keep_bins_and_restart_positions_per_conversation():
    batch = RowPackedCollator(pad_token_id=PAD)(_examples())
    assert "attention_mask" not in batch  # transformers reads the packing from the position ids
    assert batch["input_ids"].shape == (3, 12)
    assert batch["position_ids"][0].tolist() == [*range(5), *range(7)]
    assert batch["position_ids"][1].tolist() == [*range(9), *range(3)]  # the tail: a sequence of its own
    assert batch["labels"][1, 9:].tolist() == [-100] * 3
    assert (batch["labels"][batch["position_ids"] == 0] == -100).all()
    assert int(batch[REAL_TOKENS]) == 5 + 7 + 9 + 3 + 4 + 2


def test_loss_on_rows_equals_each_conversation_alone():
    model = _model()
    batch = RowPackedCollator(pad_token_id=PAD)(_examples())
    with torch.no_grad():
        # use_cache=False, as TRL's compute_loss passes it: with a cache transformers does not read packing
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"],
                       use_cache=False).loss
        losses, count = [], 0
        for ex in _examples():
            start = 0
            for n in ex["seq_lengths"]:
                ids = torch.tensor(ex["input_ids"][start:start + n])[None]
                labels = torch.tensor(ex["labels"][start:start + n])
                logits = model(input_ids=ids).logits[0, :-1]
                losses.append(F.cross_entropy(logits, labels[1:], ignore_index=-100, reduction="sum"))
                count += int((labels[1:] != -100).sum())
                start += n
    torch.testing.assert_close(packed, torch.stack(losses).sum() / count, atol=1e-5, rtol=1e-5)
