"""Critic-free advantage estimators (#26): GRPO, RLOO, REINFORCE++ (and its baseline variant) on hand-made
batches; per-prompt groups under Llama 2's routing; the schedule's groups; config errors; one update each."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from camelid.errors import ConfigError
from camelid.ppo.advantages import (
    GRPO_EPS,
    centered_per_prompt,
    discounted_returns,
    estimate,
    grpo_advantages,
    rloo_advantages,
)
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience_maker import ExperienceMaker, PromptSchedule
from camelid.ppo.losses import kl_loss
from camelid.ppo.trainer import local_batch_sizes
from camelid.ppo.update import PPOUpdate, adamw
from camelid.reward.combined import CombinedScorer

sys.path.insert(0, str(Path(__file__).parent))
from ppo_helpers import CPU, FixedScorer, tiny_chat_models  # noqa: E402

D = torch.float64
ESTIMATORS = ("gae", "grpo", "rloo", "reinforce++", "reinforce++-baseline")


def _whitened(vals: list[float]) -> list[float]:
    """(v - mean) / unbiased std, by hand."""
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    return [(v - m) / math.sqrt(sd * sd + 1e-8) for v in vals]


# ---- the formulas on hand-made batches --------------------------------------------------------------------

def test_grpo_normalises_within_each_prompt_group():
    # prompt 1: 0, 1, 2, 5 (mean 2, unbiased std sqrt(14/3)); prompt 2: 4, 4, 4, 8 (mean 5, std 2)
    adv = grpo_advantages(torch.tensor([0.0, 1.0, 2.0, 5.0, 4.0, 4.0, 4.0, 8.0], dtype=D), 4)
    s1, s2 = math.sqrt(14 / 3) + GRPO_EPS, 2.0 + GRPO_EPS
    assert adv.tolist() == pytest.approx([-2 / s1, -1 / s1, 0.0, 3 / s1, -1 / s2, -1 / s2, -1 / s2, 3 / s2],
                                         abs=1e-12)


def test_rloo_subtracts_the_mean_of_the_other_samples():
    adv = rloo_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=D), 4)
    assert adv.tolist() == pytest.approx([1 - 11 / 3, 2 - 10 / 3, 3 - 3, 6 - 2], abs=1e-12)


@pytest.mark.parametrize("value", [0.1, -1.7346, 3.0])
def test_a_group_of_identical_rewards_gets_exactly_zero_advantage(value):
    same = torch.full((8,), value) + torch.tensor([0.0] * 4 + [1.0, 2.0, 3.0, 4.0])  # group 1 identical
    for fn in (grpo_advantages, rloo_advantages, centered_per_prompt):
        out = fn(same, 4)
        assert out[:4].tolist() == [0.0, 0.0, 0.0, 0.0], fn.__name__  # exactly, not 1e-8 / (1e-8 + eps)
        assert out[4:].abs().min() > 0.1, fn.__name__
    mask = torch.ones(8, 3)
    for name in ("grpo", "rloo", "reinforce++-baseline"):
        est = estimate(name, same, torch.zeros(8, 3), torch.zeros(8, 3), mask, samples_per_prompt=4, beta=0.1,
                       gamma=1.0, lam=0.95)
        if name != "reinforce++-baseline":  # its batch whitening shifts everything by the batch mean
            assert not est.advantages[:4].any(), name


def test_estimate_rloo_puts_the_kl_in_the_sequence_reward():
    scores = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=D)
    kl = torch.tensor([[0.3, 0.2, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 9.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 0, 0], [1, 1, 0]])
    est = estimate("rloo", scores, kl * mask, torch.zeros_like(kl), mask, samples_per_prompt=4, beta=0.1,
                   gamma=1.0, lam=0.95)
    r = [1 - 0.05, 2.0, 3.0, 6 - 0.1]  # s - beta * sum_t KL_t (the 9.0 is padding)
    want = [r[i] - (sum(r) - r[i]) / 3 for i in range(4)]
    assert est.advantages[:, 0].tolist() == pytest.approx(want, abs=1e-12)
    assert (est.advantages == est.advantages[:, :1] * mask).all()  # the same advantage on every response token
    assert est.rewards.sum(-1).tolist() == pytest.approx(r, abs=1e-12)


def test_estimate_grpo_leaves_the_kl_out_of_the_advantage():
    scores = torch.tensor([1.0, 3.0], dtype=D)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    kl = torch.tensor([[5.0, 5.0, 0.0], [0.0, 0.0, 0.0]], dtype=D)
    est = estimate("grpo", scores, kl, torch.zeros_like(kl), mask, samples_per_prompt=2, beta=0.1,
                   gamma=1.0, lam=0.95)
    a = 1 / (math.sqrt(2) + GRPO_EPS)  # deviation 1, unbiased std sqrt(2)
    assert est.advantages.flatten().tolist() == pytest.approx([-a, -a, 0.0, a, a, a], abs=1e-12)
    assert est.rewards.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 3.0]]  # the score on the last token, no KL


def test_estimate_reinforce_plus_plus_whitens_kl_penalised_returns_over_the_batch():
    scores = torch.tensor([1.0, -1.0], dtype=D)
    kl = torch.tensor([[0.2, 0.1, 0.0], [0.4, 0.0, 0.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    est = estimate("reinforce++", scores, kl * mask, torch.zeros_like(kl), mask, samples_per_prompt=1, beta=0.5,
                   gamma=1.0, lam=0.95)
    # rewards: [-0.1, -0.05, 1.0] and [-0.2, -1.0]; returns (reward-to-go): [0.85, 0.95, 1.0] and [-1.2, -1.0]
    assert est.returns[0].tolist() == pytest.approx([0.85, 0.95, 1.0], abs=1e-12)
    assert est.returns[1].tolist() == pytest.approx([-1.2, -1.0, 0.0], abs=1e-12)
    want = _whitened([0.85, 0.95, 1.0, -1.2, -1.0])
    assert est.advantages[mask.bool()].tolist() == pytest.approx(want, abs=1e-9)
    assert est.advantages[1, 2] == 0.0


def test_estimate_reinforce_plus_plus_baseline_centres_scores_per_prompt_first():
    scores = torch.tensor([1.0, 3.0, 7.0, 7.0], dtype=D)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 0]])
    est = estimate("reinforce++-baseline", scores, torch.zeros(4, 2, dtype=D), torch.zeros(4, 2, dtype=D), mask,
                   samples_per_prompt=2, beta=0.1, gamma=1.0, lam=0.95)
    # centred scores -1, 1, 0, 0 (the 7s are one prompt's identical pair); returns on every token up to it
    assert est.returns[mask.bool()].tolist() == [-1.0, -1.0, 1.0, 0.0, 0.0, 0.0]
    assert est.advantages[mask.bool()].tolist() == pytest.approx(_whitened([-1.0, -1.0, 1.0, 0.0, 0.0, 0.0]),
                                                                 abs=1e-9)


def test_gae_through_estimate_is_the_old_computation():
    from camelid.ppo.advantages import gae, masked_whiten
    from camelid.ppo.rewards import token_rewards

    g = torch.Generator().manual_seed(0)
    scores, kl, values = torch.randn(4, generator=g), torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]])
    est = estimate("gae", scores, kl * mask, values * mask, mask, samples_per_prompt=1, beta=0.05, gamma=1.0, lam=0.95)
    rewards = token_rewards(scores, kl * mask, mask, 0.05)
    adv, ret = gae(rewards, values * mask, mask, 1.0, 0.95)
    assert torch.equal(est.advantages, masked_whiten(adv, mask)) and torch.equal(est.returns, ret)


def test_discounted_returns_and_the_kl_loss_by_hand():
    ret = discounted_returns(torch.tensor([[1.0, 2.0, 4.0, 8.0]], dtype=D), torch.tensor([[1, 1, 1, 0]]), 0.5)
    assert ret.tolist() == [[1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0, 0.0]]
    logp = torch.tensor([[-1.0, -2.0, -3.0]], dtype=D)
    ref = torch.tensor([[-1.5, -2.0, -9.0]], dtype=D)
    k3 = [math.exp(-0.5) + 0.5 - 1, 0.0]  # exp(ref - logp) - (ref - logp) - 1; the third token is padding
    assert kl_loss(logp, ref, torch.tensor([[1, 1, 0]])).item() == pytest.approx(sum(k3) / 2, abs=1e-12)


# ---- Llama 2's routing inside a group -------------------------------------------------------------------

@pytest.fixture(scope="module")
def models():
    return tiny_chat_models()


def _prompts(tags: list[bool], n: int) -> list:
    return [SimpleNamespace(messages=[{"role": "user", "content": f"question {i // n}"}], is_safety=t)
            for i, t in enumerate(tags)]


def _maker(models, rh, rs, value=None, **cfg) -> ExperienceMaker:
    tok, policy, reference, v = models
    p = PPOConfig(max_new_tokens=6, kl_coef=0.05, **cfg)
    return ExperienceMaker(p, CPU, policy=policy, reference=reference, value=v if value else None, tokenizer=tok,
                           rewards=CombinedScorer(FixedScorer(rh), FixedScorer(rs), 0.15))


def test_a_group_split_between_the_two_reward_models_is_compared_on_the_combined_reward(models):
    """Prompt 1 (untagged): answer a is safe (Rs 0.5 -> Rh 2.0), answer b falls under the threshold (Rs -3.0 <
    logit(0.15) = -1.73) and is scored by the safety RM. Prompt 2 (safety-tagged): both by the safety RM."""
    torch.manual_seed(0)
    maker = _maker(models, rh=[2.0, 3.0, 0.0, 0.0], rs=[0.5, -3.0, 1.0, 2.0], advantage="rloo", samples_per_prompt=2)
    exp, _ = maker.make(_prompts([False, False, True, True], 2))
    assert exp.info["rc"].tolist() == [2.0, -3.0, 1.0, 2.0]
    assert exp.info["used_safety"].tolist() == [0.0, 1.0, 1.0, 1.0]  # prompt 1's answers: one per RM
    sd = math.sqrt(17 / 4)  # the first batch whitens with its own statistics: mean 0.5, population std
    assert exp.scores.tolist() == pytest.approx([(2 - 0.5) / sd, (-3 - 0.5) / sd, 0.5 / sd, 1.5 / sd], abs=1e-6)
    r = (exp.scores - 0.05 * exp.info["kl"]).tolist()  # rloo: s - beta * KL (k1) per response
    want = [r[0] - r[1], r[1] - r[0], r[2] - r[3], r[3] - r[2]]  # n = 2: the other answer is the baseline
    assert exp.advantages[:, 0].tolist() == pytest.approx(want, abs=1e-5)
    # The switched answer is pushed down against its safe sibling: per-RM statistics would leave it alone in
    # its bucket with advantage 0 (and the safe answer, alone in the helpfulness bucket, too).
    assert exp.advantages[1, 0] < -2.0 and exp.advantages[0, 0] > 2.0
    assert not exp.values.any()  # no value model


def test_grpo_on_the_routed_batch_and_the_whitening_cancels(models):
    torch.manual_seed(0)
    maker = _maker(models, rh=[2.0, 3.0, 0.0, 0.0], rs=[0.5, -3.0, 1.0, 2.0], advantage="grpo", samples_per_prompt=2)
    exp, _ = maker.make(_prompts([False, False, True, True], 2))
    # any two-answer group: (s - mean) / std = +-1/sqrt(2); the running whitening (an affine map) cancels
    raw = grpo_advantages(exp.info["rc"].double(), 2)
    assert exp.advantages[:, 0].tolist() == pytest.approx(raw.tolist(), abs=1e-3)
    assert exp.advantages[:, 0].tolist() == pytest.approx([2 ** -0.5, -(2 ** -0.5), -(2 ** -0.5), 2 ** -0.5],
                                                          abs=1e-3)


# ---- groups in the schedule, config errors ----------------------------------------------------------------

def test_the_schedule_samples_each_prompt_n_times_in_a_row_and_keeps_groups_on_one_process():
    prompts = list(range(10))
    one = PromptSchedule(prompts, seed=3, batch_size=8, rank=0, local_batch=8, samples_per_prompt=4)
    b = one.batch(0)
    assert b[:4] == [b[0]] * 4 and b[4:] == [b[4]] * 4 and b[0] != b[4]
    halves = [PromptSchedule(prompts, seed=3, batch_size=8, rank=r, local_batch=4, samples_per_prompt=4)
              for r in (0, 1)]
    assert halves[0].batch(3) + halves[1].batch(3) == one.batch(3)
    distinct = [one.batch(i)[0::4] for i in range(5)]  # 2 distinct prompts per iteration, an epoch in 5
    assert sorted(x for d in distinct for x in d) == prompts
    single = PromptSchedule(prompts, seed=3, batch_size=2, rank=0, local_batch=2)
    assert [single.batch(i) for i in range(5)] == distinct  # the same prompt order as samples_per_prompt=1


def test_config_errors_for_groups():
    with pytest.raises(ValueError, match="rollout_batch_size \\(6\\) must be a multiple of samples_per_prompt \\(4\\)"):
        PPOConfig(rollout_batch_size=6, minibatch_size=2, samples_per_prompt=4)
    for name in ("grpo", "rloo", "reinforce++-baseline"):
        with pytest.raises(ValueError, match="set samples_per_prompt to 2 or more"):
            PPOConfig(advantage=name)
    assert PPOConfig(advantage="reinforce++").critic_free  # REINFORCE++ itself works with one sample
    with pytest.raises(ConfigError, match="multiple of samples_per_prompt \\(8\\) x the 2 processes"):
        local_batch_sizes(PPOConfig(rollout_batch_size=8, minibatch_size=4, samples_per_prompt=8), 2)


def test_value_warmup_is_ignored_without_a_value_model():
    cfg = PPOConfig(advantage="grpo", samples_per_prompt=2, value_warmup=5, iterations=3)  # no error: 5 >= 3
    assert cfg.value_only_iterations == 0
    with pytest.raises(ValueError, match="value_warmup"):
        PPOConfig(value_warmup=5, iterations=3)  # gae: still an error


# ---- one update per estimator -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ESTIMATORS)
def test_an_iteration_moves_every_trainable_parameter(name):
    torch.manual_seed(0)
    tok, policy, reference, value = tiny_chat_models(loud_eos=True)
    critic = name == "gae"
    cfg = PPOConfig(max_new_tokens=6, kl_coef=0.05, advantage=name, samples_per_prompt=1 if name in (
        "gae", "reinforce++") else 2, learning_rate=1e-3, rollout_batch_size=4, minibatch_size=2)
    maker = ExperienceMaker(cfg, CPU, policy=policy, reference=reference, value=value if critic else None,
                            tokenizer=tok, rewards=CombinedScorer(FixedScorer([0.5, 2.0, -1.0, 1.0]),
                                                                  FixedScorer([1.0, 1.0, 1.0, 1.0]), 0.15))
    exp, _ = maker.make(_prompts([False] * 4, cfg.samples_per_prompt))
    assert exp.advantages.abs().sum() > 0
    val = value if critic else None
    update = PPOUpdate(cfg, CPU, policy=policy, value=val, opt_policy=adamw(policy, cfg, 1e-3),
                       opt_value=adamw(value, cfg, 1e-3) if critic else None, minibatch_size=2)
    roles = {"policy": policy, **({"value": value} if critic else {})}
    before = {f"{r}.{k}": p.detach().clone() for r, m in roles.items() for k, p in m.named_parameters()}
    stats = update.train_on(exp)
    unchanged = [k for r, m in roles.items() for k, p in m.named_parameters() if torch.equal(before[f"{r}.{k}"], p)]
    assert not unchanged, unchanged
    assert ("loss/value" in stats) == critic and ("grad_norm/value" in stats) == critic
    assert ("loss/kl" in stats) == (name == "grpo") and all(v == v for v in stats.values())
