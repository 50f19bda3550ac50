"""SFT's loss through TRL's fused LM head scores only labelled positions on a CPU, with the same loss (#18)."""

from __future__ import annotations

import torch
import trl.trainer.utils as trl_utils

from camelid.sft.batching import score_labelled_positions_only


def _model_and_batch():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=80, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64))
    ids = torch.randint(1, 80, (3, 20), generator=torch.Generator().manual_seed(1))
    labels = ids.masked_fill(torch.arange(20) < 14, -100)  # the answer: the last 6 tokens of each row
    return model, ids, labels


def _rows_scored(monkeypatch) -> list[int]:
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply  # what the fused forward calls

    def counted(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counted)
    return rows


def test_cpu_scores_only_labelled_positions_with_the_same_loss(monkeypatch):
    # TRL's own choice for this test (another test's SFT trainer may have installed camelid's already);
    # monkeypatch puts back whatever was there after the test
    shipped_choice = getattr(trl_utils._use_triton, "trl_original", trl_utils._use_triton)
    monkeypatch.setattr(trl_utils, "_use_triton", shipped_choice)
    model, ids, labels = _model_and_batch()
    full = model(input_ids=ids, labels=labels, use_cache=False).loss
    trl_utils.add_fused_lm_head(model)
    rows = _rows_scored(monkeypatch)
    shipped = model(input_ids=ids, labels=labels, use_cache=False, fused_lm_head=True)
    score_labelled_positions_only()
    score_labelled_positions_only()  # idempotent: one wrapper
    compact = model(input_ids=ids, labels=labels, use_cache=False, fused_lm_head=True)
    assert rows == [3 * 19, 3 * 6]  # every shifted position as TRL ships on CPU; then the 6 labelled per row
    assert int(compact.label_mask.sum()) == 18
    for out in (shipped, compact):
        torch.testing.assert_close(out.loss, full, atol=1e-5, rtol=1e-5)
    assert trl_utils._use_triton(torch.device("cpu")) and trl_utils._use_triton.camelid_cpu_compact
