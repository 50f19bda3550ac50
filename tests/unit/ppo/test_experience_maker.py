"""Experience making on a tiny model: the combined reward's wiring, whitening, KL-shaped rewards; prompt schedule."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from camelid.ppo.collective import NonFinite
from camelid.ppo.config import PPOConfig
from camelid.ppo.experience_maker import ExperienceMaker, PromptSchedule, experience_metrics
from camelid.ppo.rollout import sequence_logprobs
from camelid.reward.combined import CombinedScorer

sys.path.insert(0, str(Path(__file__).parent))
from ppo_helpers import CPU, FixedScorer, tiny_chat_models  # noqa: E402


@pytest.fixture(scope="module")
def models():
    return tiny_chat_models()


def _prompts(tags: list[bool]) -> list:
    return [SimpleNamespace(messages=[{"role": "user", "content": f"question {i}"}], is_safety=t)
            for i, t in enumerate(tags)]


def _maker(models, rh, rs, **cfg) -> ExperienceMaker:
    tok, policy, reference, value = models
    p = PPOConfig(max_new_tokens=6, kl_coef=0.05, **cfg)
    return ExperienceMaker(p, CPU, policy=policy, reference=reference, value=value, tokenizer=tok,
                           rewards=CombinedScorer(FixedScorer(rh), FixedScorer(rs), 0.15))


def test_experience_uses_the_combined_reward_whitened_and_the_kl_penalty(models):
    torch.manual_seed(0)
    # tagged prompt -> Rs; sigmoid(0) = 0.5 -> Rh; sigmoid(-3) < 0.15 -> Rs; untagged and safe -> Rh
    maker = _maker(models, rh=[1.0, 2.0, 3.0, 4.0], rs=[-5.0, 0.0, -3.0, 2.0])
    exp, timing = maker.make(_prompts([True, False, False, False]))
    assert exp.info["rc"].tolist() == [-5.0, 2.0, -3.0, 4.0]
    assert exp.info["used_safety"].tolist() == [1.0, 0.0, 1.0, 0.0]
    # the first batch whitens with its own statistics: mean 0, population std 1
    assert exp.scores.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert exp.scores.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert maker.moments.count == 4 and maker.moments.mean == pytest.approx(-0.5)
    # per-token rewards sum to the whitened score minus beta x the sequence KL (k1)
    torch.testing.assert_close(exp.rewards.sum(-1), exp.scores - 0.05 * exp.info["kl"])
    mask = exp.action_mask
    with torch.no_grad():
        ref = sequence_logprobs(models[2], exp.sequences, exp.attention_mask, exp.num_actions) * mask
    torch.testing.assert_close(exp.ref_logprobs, ref)  # the reference's log-probs, not the policy's
    assert exp.info["kl"].abs().sum() > 0
    for name in ("ref_logprobs", "values", "rewards", "advantages", "returns"):
        assert not getattr(exp, name)[mask == 0].any(), name  # nothing on padding after EOS
    assert set(timing) == {"time/generation", "time/scoring"}
    metrics = experience_metrics(exp)
    assert metrics["reward/combined"] == pytest.approx(-0.5) and metrics["safety_share"] == 0.5


def test_label_penalty_lowers_the_raw_score_of_answers_on_the_wrong_side_of_their_prompts_label(models):
    """stages.ppo.label_penalty (#25): the rule rs's label_filter applies, as a term of the reward."""
    from camelid.data.records import Prompt

    refuse, comply = "I can't help with that.", "Sure, here is how."
    cases = [({"kind": "harmful"}, None, refuse),          # refused, as its label says: no penalty
             ({"kind": "borderline"}, None, comply),       # answered, as its label says
             ({"should_refuse": True}, None, comply),      # complied with a harmful prompt: penalised
             ({}, "xstest-safe/homonyms", refuse),         # refused a safe one: penalised
             ({"kind": "task"}, None, refuse)]             # tasks carry no refusal label
    prompts = [Prompt(messages=[{"role": "user", "content": f"question {i}"}], is_safety=True, meta=meta,
                      category=cat) for i, (meta, cat, _) in enumerate(cases)]
    torch.manual_seed(0)
    maker = _maker(models, rh=[1.0] * 5, rs=[1.0] * 5, label_penalty=4.0)
    generate = maker.generate
    maker.generate = lambda ps, t: (*generate(ps, t)[:2], [text for _, _, text in cases])
    exp, _ = maker.make(prompts)
    assert exp.info["rc"].tolist() == [1.0] * 5  # the reward models' combined score, as it was
    assert exp.info["off_label"].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert maker.moments.mean == pytest.approx((3 * 1.0 + 2 * -3.0) / 5)  # whitened after the penalty
    assert exp.scores[2] == exp.scores[3] < exp.scores[0] == exp.scores[1] == exp.scores[4]
    assert experience_metrics(exp)["off_label_share"] == pytest.approx(0.4)
    # off (null) by default: the same batch is not touched
    maker = _maker(models, rh=[1.0] * 5, rs=[1.0] * 5)
    maker.generate = lambda ps, t: (*generate(ps, t)[:2], [text for _, _, text in cases])
    assert maker.make(prompts)[0].info["off_label"].tolist() == [0.0] * 5


def test_a_nan_reward_score_stops_before_anything_is_computed_from_it(models):
    maker = _maker(models, rh=[1.0, float("nan")], rs=[0.0, 0.0])
    with pytest.raises(NonFinite, match="a reward model score is NaN or inf"):
        maker.make(_prompts([False, False]))
    assert maker.moments.count == 0  # the running statistics never saw the NaN


def test_prompt_schedule_splits_one_global_batch_over_processes_and_resumes_exactly():
    prompts = list(range(10))
    one = PromptSchedule(prompts, seed=3, batch_size=4, rank=0, local_batch=4)
    halves = [PromptSchedule(prompts, seed=3, batch_size=4, rank=r, local_batch=2) for r in (0, 1)]
    for it in range(6):
        assert halves[0].batch(it) + halves[1].batch(it) == one.batch(it)
    first_epoch = one.batch(0) + one.batch(1) + one.batch(2)[:2]  # 10 prompts, each once
    assert sorted(first_epoch) == prompts
    assert one.batch(2)[2:] + one.batch(3) + one.batch(4) != first_epoch  # the next epoch is reshuffled
    fresh = PromptSchedule(prompts, seed=3, batch_size=4, rank=0, local_batch=4)  # e.g. after --resume
    assert fresh.batch(5) == one.batch(5)
    assert PromptSchedule(prompts, seed=4, batch_size=4, rank=0, local_batch=4).batch(0) != one.batch(0)
