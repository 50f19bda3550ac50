"""Packed rows (no padding between sequences) and chunked log-probs give the padded layout's numbers (#18).

Every quantity PPO computes from a forward pass (log-probs, entropy, values, KL, rewards, advantages, the
losses, the gradients and the updated weights) is compared with the left-padded path to 1e-5.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from camelid.ppo import rollout
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience import Experience
from camelid.ppo.losses import entropy_from_logits
from camelid.ppo.models import ValueModel
from camelid.ppo.rollout import (
    action_logits,
    action_logprobs,
    action_values,
    pack_rows,
    position_ids,
    sequence_logprobs,
)
from camelid.ppo.update import PPOUpdate, adamw
from camelid.reward.combined import CombinedScorer

sys.path.insert(0, str(Path(__file__).parent))
from ppo_helpers import CPU, EOS, FixedScorer, padded_batch, tiny_chat_models  # noqa: E402

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _random_batch(b: int = 6, seed: int = 0):
    """Prompts of 1-9 tokens, responses of 1-7 tokens ending in EOS, one without EOS (truncated at 7)."""
    g = torch.Generator().manual_seed(seed)
    prompts, responses = [], []
    for i in range(b):
        p = int(torch.randint(1, 10, (1,), generator=g))
        r = 7 if i == 0 else int(torch.randint(1, 8, (1,), generator=g))
        prompts.append([1, *torch.randint(3, 40, (p - 1,), generator=g).tolist()])
        body = torch.randint(3, 40, (r,), generator=g).tolist()
        responses.append(body if i == 0 else [*body[:-1], EOS])
    return padded_batch(prompts, responses, 7)


def test_packed_rows_hold_each_sequences_real_tokens_and_point_at_the_predicting_column():
    seq, attn, amask = padded_batch([[1, 5, 6, 7, 8, 9], [1, 5, 6], [1, 7]], [[3, 4, 5, 6, EOS], [3, EOS], [4, 5, EOS]], 5)
    rows = pack_rows(seq, attn, 5, width=11)
    # 11 + 5 + 5 real tokens in rows of 11: the two short sequences share the second row
    assert rows.input_ids.tolist() == [[1, 5, 6, 7, 8, 9, 3, 4, 5, 6, EOS],
                                       [1, 5, 6, 3, EOS, 1, 7, 4, 5, EOS, 0]]
    assert rows.position_ids.tolist() == [list(range(11)), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0]]
    assert rows.action_row.tolist() == [0, 1, 1]
    # response token t of a sequence is predicted at its offset + prompt_len - 1 + t (clamped inside the row)
    assert rows.action_index.tolist() == [[5, 6, 7, 8, 9], [2, 3, 4, 5, 6], [6, 7, 8, 9, 10]]
    assert rows.padding_share == pytest.approx(1 / 22)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_tokens", [None, 3])
def test_log_probs_and_entropy_equal_the_padded_forward(tiny, monkeypatch, temperature, chunk_tokens):
    model, _ = tiny
    if chunk_tokens:  # several lm_head chunks, as a 49k vocabulary gets
        monkeypatch.setattr(rollout, "LOGPROB_CHUNK_BYTES", chunk_tokens * 4 * model.config.vocab_size)
    seq, attn, amask = _random_batch()
    a = amask.shape[1]
    assert pack_rows(seq, attn, a).input_ids.shape[0] < seq.shape[0]  # some rows hold two sequences
    with torch.no_grad():
        logits = action_logits(model, seq, attn, a, temperature)
        padded = sequence_logprobs(model, seq, attn, a, temperature) * amask
        ent_padded = entropy_from_logits(logits) * amask
        lp, ent = action_logprobs(model, pack_rows(seq, attn, a), seq[:, -a:], amask, temperature, entropy=True)
    torch.testing.assert_close(lp, padded, **TOL)
    torch.testing.assert_close(ent, ent_padded, **TOL)
    assert not lp[amask == 0].any() and not ent[amask == 0].any()


@pytest.mark.parametrize("chunk_tokens", [None, 4])
def test_gradients_of_chunked_log_probs_equal_the_padded_ones(tiny, monkeypatch, chunk_tokens):
    if chunk_tokens:  # several chunks: each one's logits are recomputed in the backward pass
        monkeypatch.setattr(rollout, "LOGPROB_CHUNK_BYTES", chunk_tokens * 4 * tiny[0].config.vocab_size)
    seq, attn, amask = _random_batch(seed=1)
    a = amask.shape[1]
    weights = torch.randn(amask.shape, generator=torch.Generator().manual_seed(2))
    grads = []
    for compact in (False, True):
        model = copy.deepcopy(tiny[0]).train()
        if compact:
            lp, ent = action_logprobs(model, pack_rows(seq, attn, a), seq[:, -a:], amask, 0.7, entropy=True,
                                      entropy_grad=True)
        else:
            logits = action_logits(model, seq, attn, a, 0.7)
            lp = rollout.gather_logprobs(logits, seq[:, -a:])
            ent = entropy_from_logits(logits)
        ((lp * weights * amask).sum() + (ent * amask).sum() * 0.1).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], **TOL, msg=k)


def test_values_equal_the_padded_forward(tiny):
    value = ValueModel(tiny[1])
    seq, attn, amask = _random_batch(seed=3)
    a = amask.shape[1]
    with torch.no_grad():
        padded = value(seq, attn, position_ids(attn))[:, -a - 1:-1] * amask
        compact = action_values(value, pack_rows(seq, attn, a)) * amask
    torch.testing.assert_close(compact, padded, **TOL)


# ---- the experience and the update, whole ------------------------------------------------------------

@pytest.fixture(scope="module")
def models():
    return tiny_chat_models(loud_eos=True)


def _make(models, compact: bool) -> Experience:
    from camelid.ppo.experience_maker import ExperienceMaker

    tok, policy, reference, value = models
    cfg = PPOConfig(max_new_tokens=10, kl_coef=0.05, temperature=0.8)
    maker = ExperienceMaker(cfg, CPU, policy=policy, reference=reference, value=value, tokenizer=tok,
                            rewards=CombinedScorer(FixedScorer([1.0, 2.0, 3.0, 4.0, 0.5, -1.0]),
                                                   FixedScorer([-5.0, 0.0, -3.0, 2.0, 1.0, 0.0]), 0.15))
    maker.compact = compact
    prompts = [SimpleNamespace(messages=[{"role": "user", "content": "question " * (1 + 3 * (i % 3)) + str(i)}],
                               is_safety=i == 0) for i in range(6)]
    torch.manual_seed(0)
    return maker.make(prompts)[0]


def test_experience_from_pack_rows_equals_the_padded_one(models):
    padded, compact = _make(models, False), _make(models, True)
    assert torch.equal(compact.sequences, padded.sequences)  # the same samples
    assert 0 < int(padded.action_mask.sum()) < padded.action_mask.numel()  # some responses ended early
    for name in ("old_logprobs", "ref_logprobs", "values", "rewards", "advantages", "returns", "scores"):
        torch.testing.assert_close(getattr(compact, name), getattr(padded, name), **TOL, msg=name)
    for name in ("kl", "rc", "length"):
        torch.testing.assert_close(compact.info[name], padded.info[name], **TOL, msg=name)


@pytest.mark.parametrize("entropy_coef", [0.0, 0.01])
def test_losses_and_updated_weights_from_pack_rows_equal_the_padded_ones(models, entropy_coef):
    exp = _make(models, False)
    _, policy, _, value = models
    results = []
    for compact in (False, True):
        pol, val = copy.deepcopy(policy), copy.deepcopy(value)
        c = PPOConfig(learning_rate=1e-3, minibatch_size=2, ppo_epochs=2, temperature=0.8, entropy_coef=entropy_coef)
        update = PPOUpdate(c, CPU, policy=pol, value=val, opt_policy=adamw(pol, c, c.learning_rate),
                           opt_value=adamw(val, c, c.learning_rate), minibatch_size=2)
        update.compact = compact
        torch.manual_seed(5)  # the same minibatch order
        stats = update.train_on(exp)
        results.append((stats, {f"{r}.{k}": p.detach() for r, m in (("p", pol), ("v", val))
                                for k, p in m.named_parameters()}))
    (s_pad, w_pad), (s_cmp, w_cmp) = results
    assert s_pad["loss/policy"] != 0 and s_pad["grad_norm/policy"] > 0
    for k in s_pad:
        assert s_cmp[k] == pytest.approx(s_pad[k], rel=1e-5, abs=1e-5), k
    for k in w_pad:
        torch.testing.assert_close(w_cmp[k], w_pad[k], **TOL, msg=k)
