"""Rollouts on a random 2-layer Llama: masks, left padding, and generation log-probs == a forward pass."""

from __future__ import annotations

import pytest
import torch

from camelid.ppo.models import ValueModel
from camelid.ppo.rollout import left_pad, position_ids, response_mask, sample, sequence_logprobs

PAD, EOS = 0, 2


def test_response_mask_includes_first_eos_only():
    r = torch.tensor([[5, 6, EOS, PAD, PAD], [5, EOS, 7, EOS, 9], [5, 6, 7, 8, 9]])
    assert response_mask(r, EOS).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_left_pad_and_positions():
    ids, mask = left_pad([[3, 4, 5], [6]], PAD)
    assert ids.tolist() == [[3, 4, 5], [PAD, PAD, 6]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_generation_logprobs_match_a_forward_pass(tiny, temperature):
    model, _ = tiny
    ids, mask = left_pad([[1, 5, 6, 7, 8], [1, 9], [1, 10, 11]], PAD)
    torch.manual_seed(1)
    ro = sample(model, ids, mask, eos_id=EOS, pad_id=PAD, max_new_tokens=12, temperature=temperature)
    a = ro.action_mask.shape[1]
    assert ro.sequences.shape == (3, ids.shape[1] + a)
    assert ro.attention_mask[:, :ids.shape[1]].tolist() == mask.tolist()
    with torch.no_grad():
        fwd = sequence_logprobs(model, ro.sequences, ro.attention_mask, a, temperature) * ro.action_mask
    assert torch.allclose(ro.logprobs, fwd, atol=1e-4)
    assert (ro.logprobs <= 0).all()
    # left padding must not change a row's log-probs: row 1 alone gives the same numbers
    alone_ids, alone_mask = left_pad([[1, 9]], PAD)
    seq1 = torch.cat([alone_ids, ro.sequences[1:2, ids.shape[1]:]], 1)
    att1 = torch.cat([alone_mask, ro.action_mask[1:2]], 1)
    with torch.no_grad():
        lp1 = sequence_logprobs(model, seq1, att1, a, temperature) * ro.action_mask[1:2]
    assert torch.allclose(lp1, fwd[1:2], atol=1e-4)


def test_value_model_head_at_every_position_matches_sequence_score(tiny):
    _, seqcls = tiny
    ids, mask = left_pad([[1, 5, 6, 7], [1, 9]], PAD)
    with torch.no_grad():
        v = ValueModel(seqcls)(ids, mask, position_ids(mask))  # (B, T)
        score = seqcls(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits[:, 0]
    assert v.shape == ids.shape
    assert torch.allclose(v[:, -1], score, atol=1e-5)  # the RM's score is the value at the last token
