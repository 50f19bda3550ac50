"""Minibatches without all-padding columns: exact tensor slicing, unchanged log-probs and values."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from camelid.ppo.experience import Experience
from camelid.ppo.models import ValueModel
from camelid.ppo.rollout import action_logits, gather_logprobs, position_ids

sys.path.insert(0, str(Path(__file__).parent))
from ppo_helpers import EOS, PAD, padded_batch  # noqa: E402


def _experience(prompts: list[list[int]], responses: list[list[int]], width: int) -> Experience:
    """Left-padded prompts + responses right-padded to ``width``; per-token fields numbered so slicing shows."""
    sequences, attention_mask, amask = padded_batch(prompts, responses, width)
    b = len(prompts)
    per_token = torch.arange(b * width, dtype=torch.float32).view(b, width)
    return Experience(
        sequences=sequences, attention_mask=attention_mask, action_mask=amask,
        old_logprobs=-per_token, ref_logprobs=-per_token - 1, values=per_token, rewards=per_token + 1,
        advantages=per_token + 2, returns=per_token + 3, scores=torch.arange(b, dtype=torch.float32),
        info={"rh": torch.arange(b, dtype=torch.float32)},
    )


def test_drops_leading_prompt_padding_and_trailing_response_padding():
    # the rollout batch is 6 wide in prompts and 5 in responses; the minibatch of rows 1 and 2 needs 3 and 3
    full = _experience([[1, 5, 6, 7, 8, 9], [1, 5, 6], [1, 7]], [[3, 4, 5, 6, EOS], [3, EOS], [4, 5, EOS]], 5)
    mb = full.select(torch.tensor([1, 2]))
    trimmed = mb.without_padding_columns()
    assert trimmed.sequences.tolist() == [[1, 5, 6, 3, EOS, PAD], [PAD, 1, 7, 4, 5, EOS]]
    assert trimmed.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]]
    assert trimmed.action_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert trimmed.num_actions == 3
    for name in ("old_logprobs", "ref_logprobs", "values", "rewards", "advantages", "returns"):
        assert torch.equal(getattr(trimmed, name), getattr(mb, name)[:, :3]), name
    assert torch.equal(trimmed.scores, mb.scores) and trimmed.info is mb.info


def test_a_batch_without_padding_columns_is_returned_as_is():
    exp = _experience([[1, 5], [1, 6]], [[3, EOS], [4, 4]], 2)
    assert exp.without_padding_columns() is exp


def test_logprobs_and_values_of_kept_tokens_do_not_change(tiny):
    policy, seqcls = tiny
    value = ValueModel(seqcls)
    full = _experience([[1, 5, 6, 7, 8, 9, 10, 11], [1, 5, 6], [1, 7, 8]],
                       [[3, 4, EOS], [3, 9, 9, 9, 9, 9, EOS], [4, 5, EOS]], 7)
    mb = full.select(torch.tensor([0, 2]))
    trimmed = mb.without_padding_columns()
    assert trimmed.sequences.shape[1] < mb.sequences.shape[1]

    def logprobs_and_values(e: Experience):
        a = e.num_actions
        with torch.no_grad():
            lp = gather_logprobs(action_logits(policy, e.sequences, e.attention_mask, a), e.sequences[:, -a:])
            v = value(e.sequences, e.attention_mask, position_ids(e.attention_mask))[:, -a - 1:-1]
        return lp * e.action_mask, v * e.action_mask

    lp_full, v_full = logprobs_and_values(mb)
    lp_trim, v_trim = logprobs_and_values(trimmed)
    a = trimmed.num_actions
    assert torch.allclose(lp_trim, lp_full[:, :a], atol=1e-5)
    assert torch.allclose(v_trim, v_full[:, :a], atol=1e-5)
    assert not lp_full[:, a:].any() and not v_full[:, a:].any()  # nothing but padding was dropped

