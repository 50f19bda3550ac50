"""Shared by the PPO unit tests: a random 2-layer Llama (causal LM and value/score model) on a 40-token vocab."""

from __future__ import annotations

import pytest
import torch

PAD, EOS = 0, 2


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=PAD, eos_token_id=EOS, bos_token_id=1)
    return LlamaForCausalLM(cfg).eval(), LlamaForSequenceClassification(cfg.__class__(**{**cfg.to_dict(),
                                                                                          "num_labels": 1})).eval()
