"""Clipped policy loss, clipped value loss, entropy and approx KL on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from camelid.ppo.losses import entropy_from_logits, policy_loss, value_loss

D = torch.float64


def test_policy_loss_clipping_exact():
    # ratios 1.5, 0.5, 1.1, 0.7 ; advantages +1, -1, +2, +1
    old = torch.zeros(1, 4, dtype=D)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.7]], dtype=D))
    adv = torch.tensor([[1.0, -1.0, 2.0, 1.0]], dtype=D)
    out = policy_loss(logp, old, adv, torch.ones(1, 4), clip_range=0.2)
    # per token max(-A r, -A clip(r)):
    #  r=1.5,A=+1: max(-1.5, -1.2) = -1.2 (clipped)
    #  r=0.5,A=-1: max(0.5, 0.8)   =  0.8 (clipped)
    #  r=1.1,A=+2: max(-2.2, -2.2) = -2.2
    #  r=0.7,A=+1: max(-0.7, -0.8) = -0.7 (unclipped: pessimistic)
    assert out.loss.item() == pytest.approx((-1.2 + 0.8 - 2.2 - 0.7) / 4, abs=1e-12)
    assert out.clip_fraction.item() == 0.5
    lr = logp[0]
    assert out.approx_kl.item() == pytest.approx(0.5 * (lr ** 2).mean().item(), abs=1e-12)


def test_policy_loss_respects_mask_and_gradient():
    old = torch.zeros(1, 3, dtype=D)
    logp = torch.tensor([[0.0, 0.0, 5.0]], dtype=D, requires_grad=True)
    adv = torch.tensor([[1.0, -1.0, 100.0]], dtype=D)
    out = policy_loss(logp, old, adv, torch.tensor([[1, 1, 0]]), clip_range=0.2)
    assert out.loss.item() == 0.0  # (-1 + 1) / 2; the masked token is ignored
    out.loss.backward()
    assert logp.grad.tolist() == [[-0.5, 0.5, 0.0]]  # d(-A r)/dlogp = -A r / n at r = 1


def test_value_loss_clipping_exact():
    old = torch.tensor([[1.0, 1.0, 1.0]], dtype=D)
    new = torch.tensor([[2.0, 1.1, 0.0]], dtype=D)
    ret = torch.tensor([[2.0, 0.0, 0.0]], dtype=D)
    out = value_loss(new, old, ret, torch.ones(1, 3), clip_range=0.2)
    # t0: unclipped (2-2)^2 = 0, clipped (1.2-2)^2 = 0.64 -> 0.64
    # t1: unclipped 1.21, clipped (1.1)^2 = 1.21 -> 1.21
    # t2: unclipped 0, clipped (0.8)^2 = 0.64 -> 0.64
    assert out.loss.item() == pytest.approx(0.5 * (0.64 + 1.21 + 0.64) / 3, abs=1e-12)
    assert out.clip_fraction.item() == pytest.approx(2 / 3)


def test_entropy_from_logits():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    ent = entropy_from_logits(logits)
    assert ent[0, 0].item() == pytest.approx(math.log(4), abs=1e-6)
    assert ent[0, 1].item() == pytest.approx(0.0, abs=1e-6)
