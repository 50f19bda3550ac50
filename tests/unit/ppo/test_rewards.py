"""Exact math of whitening, running moments, KL estimators, token rewards."""

from __future__ import annotations

import math

import pytest
import torch

from camelid.ppo.rewards import (
    RunningMoments,
    kl_penalty,
    logit,
    token_rewards,
    whiten,
)

D = torch.float64


def test_logit_inverts_sigmoid_so_raw_scores_pass_through():
    x = torch.tensor([-4.0, -0.5, 0.0, 2.5], dtype=D)
    assert torch.allclose(logit(torch.sigmoid(x)), x, atol=1e-12)
    assert logit(torch.tensor([0.0, 1.0], dtype=D)).isfinite().all()
    assert logit(torch.tensor([0.75], dtype=D)).item() == pytest.approx(math.log(3.0))


def test_whiten_exact():
    x = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=D)
    out = whiten(x, 3.0, 2.0, eps=0.0)
    assert out.tolist() == [-1.0, -0.5, 0.0, 1.5]


def test_running_moments_match_all_data():
    torch.manual_seed(0)
    batches = [torch.randn(5, dtype=D) * 3 + 1, torch.randn(7, dtype=D), torch.randn(1, dtype=D) + 10]
    m = RunningMoments()
    b_mean, b_std = m.update(batches[0])
    assert b_mean == pytest.approx(batches[0].mean().item())
    assert b_std == pytest.approx(batches[0].std(unbiased=False).item())
    for b in batches[1:]:
        m.update(b)
    everything = torch.cat(batches)
    assert m.count == 13
    assert m.mean == pytest.approx(everything.mean().item(), abs=1e-12)
    assert m.std == pytest.approx(everything.std(unbiased=False).item(), abs=1e-12)
    m2 = RunningMoments()
    m2.load_state_dict(m.state_dict())
    assert (m2.mean, m2.var, m2.count) == (m.mean, m.var, m.count)


def test_running_moments_hand_numbers():
    m = RunningMoments()
    m.update(torch.tensor([1.0, 3.0]))   # mean 2, var 1
    m.update(torch.tensor([5.0, 7.0]))   # all four: mean 4, var (9+1+1+9)/4 = 5
    assert m.mean == 4.0 and m.var == 5.0 and m.count == 4


def test_kl_estimators_exact():
    logp = torch.tensor([[-1.0, -2.0]], dtype=D)
    ref = torch.tensor([[-1.5, -1.0]], dtype=D)
    k1 = kl_penalty(logp, ref, "k1")
    assert k1.tolist() == [[0.5, -1.0]]
    k3 = kl_penalty(logp, ref, "k3")
    # r = q/p = exp(ref - logp); k3 = r - 1 - log r
    expected = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    assert k3[0].tolist() == pytest.approx(expected, abs=1e-15)
    assert (k3 >= 0).all()
    assert kl_penalty(logp, logp, "k3").abs().max() == 0
    with pytest.raises(ValueError):
        kl_penalty(logp, ref, "k9")


def test_kl_estimators_are_unbiased_in_expectation():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1], dtype=D)
    q = torch.tensor([0.3, 0.3, 0.4], dtype=D)
    exact = (p * (p / q).log()).sum().item()
    samples = torch.multinomial(p, 200_000, replacement=True)
    for est in ("k1", "k3"):
        mean = kl_penalty(p.log()[samples], q.log()[samples], est).mean().item()
        assert mean == pytest.approx(exact, abs=0.01)


def test_token_rewards_put_score_on_last_response_token():
    kl = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 9.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    score = torch.tensor([10.0, -4.0], dtype=D)
    r = token_rewards(score, kl, mask, beta=0.1)
    expected = torch.tensor([[-0.1, -0.2, -0.3 + 10.0], [-0.05, -0.05 - 4.0, 0.0]], dtype=D)
    assert torch.allclose(r, expected, atol=1e-12, rtol=0)
