"""Exact GAE and masked whitening on hand-made tensors."""

from __future__ import annotations

import pytest
import torch

from camelid.ppo.advantages import gae, masked_mean, masked_whiten

D = torch.float64


def test_gae_hand_computed():
    rewards = torch.tensor([[0.0, 0.0, 1.0]], dtype=D)
    values = torch.tensor([[0.5, 0.2, 0.4]], dtype=D)
    mask = torch.ones(1, 3)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    d2 = 1.0 - 0.4                      # last step: next value 0
    d1 = 0.0 + 0.4 - 0.2
    d0 = 0.0 + 0.2 - 0.5
    a2 = d2
    a1 = d1 + 0.95 * a2
    a0 = d0 + 0.95 * a1
    assert adv[0].tolist() == pytest.approx([a0, a1, a2], abs=1e-15)
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.4], abs=1e-15)


def test_gae_gamma_and_padding():
    rewards = torch.tensor([[1.0, 2.0, 7.0, 7.0]], dtype=D)   # padding carries junk
    values = torch.tensor([[1.0, 1.0, 5.0, 5.0]], dtype=D)
    mask = torch.tensor([[1, 1, 0, 0]])
    adv, ret = gae(rewards, values, mask, gamma=0.5, lam=0.5)
    a1 = 2.0 - 1.0                       # episode ends at t=1: next value is 0
    a0 = 1.0 + 0.5 * 1.0 - 1.0 + 0.25 * a1
    assert adv[0].tolist() == [a0, a1, 0.0, 0.0]
    assert ret[0].tolist() == [a0 + 1.0, a1 + 1.0, 0.0, 0.0]


def test_gae_lambda_one_is_monte_carlo_return():
    rewards = torch.tensor([[0.1, -0.2, 0.3, 2.0]], dtype=D)
    values = torch.tensor([[0.3, 0.1, -0.4, 0.9]], dtype=D)
    _, ret = gae(rewards, values, torch.ones(1, 4), gamma=1.0, lam=1.0)
    assert ret[0].tolist() == pytest.approx([2.2, 2.1, 2.3, 2.0], abs=1e-12)


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert masked_mean(x, m).item() == 2.0
    assert masked_mean(x, m, dim=1).tolist() == [1.5, 3.0]


def test_masked_whiten_exact():
    x = torch.tensor([[1.0, 2.0, 99.0], [3.0, 6.0, 99.0]], dtype=D)
    m = torch.tensor([[1, 1, 0], [1, 1, 0]])
    out = masked_whiten(x, m, eps=0.0)
    vals = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=D)
    expected = (vals - 3.0) / vals.std(unbiased=True)  # mean 3, unbiased std sqrt(14/3)
    assert out[m.bool()].tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    assert out[:, 2].tolist() == [0.0, 0.0]
    kept = masked_whiten(x, m, shift_mean=False, eps=0.0)
    assert kept[m.bool()].tolist() == pytest.approx((expected + 3.0).tolist(), abs=1e-12)


def test_masked_whiten_all_reduce_gives_global_statistics():
    a = torch.tensor([[1.0, 2.0]], dtype=D)
    b = torch.tensor([[3.0, 6.0]], dtype=D)
    m = torch.ones(1, 2)
    stats = {}

    def fake_sum(t):  # two "processes": the sum of both ranks' statistics
        other = torch.stack([(b * m).sum(), (b * b * m).sum(), m.sum()]) if "a" not in stats else None
        stats["a"] = True
        return t + other
    out = masked_whiten(a, m, eps=0.0, all_reduce=fake_sum)
    full = masked_whiten(torch.cat([a, b]), torch.ones(2, 2), eps=0.0)
    assert out[0].tolist() == pytest.approx(full[0].tolist(), abs=1e-12)
