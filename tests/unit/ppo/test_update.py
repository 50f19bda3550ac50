"""The PPO update on a tiny model: every trainable parameter moves; a NaN never reaches the weights."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from camelid.ppo.collective import NonFinite
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience import Experience
from camelid.ppo.models import ValueModel
from camelid.ppo.update import PPOUpdate, adamw

CPU = SimpleNamespace(device=torch.device("cpu"), num_processes=1, backward=lambda loss: loss.backward(),
                      clip_grad_norm_=torch.nn.utils.clip_grad_norm_)


def _experience(b: int = 4, p: int = 3, a: int = 4) -> Experience:
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(3, 40, (b, p + a), generator=g)
    amask = torch.ones(b, a, dtype=torch.long)
    amask[0, 2:] = 0  # one response ended early
    old = -torch.rand(b, a, generator=g) * amask
    return Experience(
        sequences=seq, attention_mask=torch.cat([torch.ones(b, p, dtype=torch.long), amask], 1), action_mask=amask,
        old_logprobs=old, ref_logprobs=old, values=torch.zeros(b, a), rewards=torch.zeros(b, a),
        advantages=torch.randn(b, a, generator=g) * amask, returns=torch.randn(b, a, generator=g) * amask,
        scores=torch.zeros(b))


def _update(tiny, **cfg) -> PPOUpdate:
    policy, seqcls = (copy.deepcopy(m) for m in tiny)
    value = ValueModel(seqcls)
    c = PPOConfig(learning_rate=1e-3, minibatch_size=2, **cfg)
    return PPOUpdate(c, CPU, policy=policy, value=value, opt_policy=adamw(policy, c, c.learning_rate),
                     opt_value=adamw(value, c, c.learning_rate), minibatch_size=2)


def _params(update: PPOUpdate) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v.detach().clone() for role, m in (("policy", update.policy), ("value", update.value))
            for k, v in m.named_parameters()}


def test_an_update_moves_every_trainable_parameter_and_reports_means(tiny):
    update = _update(tiny, ppo_epochs=2)
    before = _params(update)
    stats = update.train_on(_experience())
    after = _params(update)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged
    assert set(stats) == {"loss/policy", "loss/value", "entropy", "clip_fraction", "value_clip_fraction",
                          "approx_kl", "grad_norm/policy", "grad_norm/value"}
    assert all(v == v for v in stats.values()) and stats["grad_norm/policy"] > 0


def test_a_nan_loss_stops_before_any_optimizer_step(tiny):
    update = _update(tiny)
    before = _params(update)
    exp = _experience()
    exp.advantages[:, 0] = float("nan")  # in every row, so the first minibatch already has it
    with pytest.raises(NonFinite, match="the PPO loss is NaN or inf"):
        update.train_on(exp)
    after = _params(update)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_value_only_update_leaves_the_policy_and_its_optimizer_untouched(tiny):
    # value_warmup: the first iterations train the value model alone (OpenRLHF's freezing_actor_steps).
    update = _update(tiny)
    before = _params(update)
    stats = update.train_on(_experience(), value_only=True)
    after = _params(update)
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"value"}
    assert not update.opt_policy.state  # no Adam moments: the first real step starts from a clean optimizer
    assert set(stats) == {"loss/value", "value_clip_fraction", "grad_norm/value"}
    assert stats["loss/value"] > 0


def test_value_warmup_must_leave_iterations_for_the_policy():
    with pytest.raises(ValueError, match="value_warmup"):
        PPOConfig(iterations=5, value_warmup=5)
