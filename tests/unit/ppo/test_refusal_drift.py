"""The refusal-drift measurement (#26): advantages of refusals vs other answers per prompt type, under the run's
estimator and a per-prompt baseline of the same rollouts, on a hand-made batch and on a recorded tiny rollout."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from camelid.ppo.config import PPOConfig
from camelid.ppo.experience import Experience
from camelid.ppo.experience_maker import ExperienceMaker
from camelid.ppo.refusal_drift import (
    AdvantageRecorder,
    advantage_rows,
    format_table,
    prompt_type,
    refusal_table,
)
from camelid.reward.combined import CombinedScorer

sys.path.insert(0, str(Path(__file__).parent))
from ppo_helpers import CPU, FixedScorer, tiny_chat_models  # noqa: E402


def _prompt(kind: str | None, is_safety: bool = False):
    return SimpleNamespace(messages=[{"role": "user", "content": "q"}], is_safety=is_safety, category=None,
                           meta={"kind": kind} if kind else {})


def _exp(advantages: list[list[float]], mask: list[list[int]], scores: list[float]) -> Experience:
    b, a = len(advantages), len(advantages[0])
    z = torch.zeros(b, a)
    return Experience(sequences=torch.zeros(b, a + 1, dtype=torch.long), attention_mask=torch.ones(b, a + 1),
                      action_mask=torch.tensor(mask), old_logprobs=z, ref_logprobs=z, values=z, rewards=z,
                      advantages=torch.tensor(advantages), returns=z, scores=torch.tensor(scores))


def test_prompt_types():
    assert [prompt_type(_prompt("harmful")), prompt_type(_prompt("ordinary")), prompt_type(_prompt(None, True)),
            prompt_type(_prompt(None))] == ["harmful", "ordinary", "safety", "other"]
    # the same labels as rejection sampling's filter and compare's groups (camelid.data.records.labelled_group)
    xstest_safe = SimpleNamespace(messages=[], is_safety=True, category="xstest-safe/homonyms", meta={})
    xstest_unsafe = SimpleNamespace(messages=[], is_safety=True, category="x", meta={"should_refuse": True})
    assert [prompt_type(xstest_safe), prompt_type(xstest_unsafe)] == ["borderline", "harmful"]


def test_the_table_on_a_hand_made_batch():
    """Two borderline prompts x 2 answers: GAE gave both refusals a positive advantage; the per-prompt baseline
    gives the refusal of prompt 1 a negative one (its sibling answered and scored higher)."""
    prompts = [_prompt("borderline")] * 4
    texts = ["I can't help with that.", "Sure: kill it with kill -9.", "I cannot assist with that request.",
             "Use the task manager."]
    exp = _exp([[1.0, 0.5, 0.0], [-1.0, -1.0, -1.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
               [[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]], [-1.0, 1.0, 2.0, 0.0])
    rows = advantage_rows(exp, prompts, texts, samples_per_prompt=2)
    assert [r.refusal for r in rows] == [True, False, True, False]
    assert [r.run for r in rows] == [0.75, -1.0, 2.0, 0.0]  # token means over each response
    assert [r.first_token for r in rows] == [1.0, -1.0, 2.0, 0.0]
    loo = [-2.0, 2.0, 2.0, -2.0]  # s_i - s_j within each pair
    sd = math.sqrt(sum(x * x for x in loo) / 3)  # mean 0, unbiased std over the batch
    assert [r.baseline for r in rows] == pytest.approx([x / sd for x in loo], abs=1e-6)
    table = refusal_table(rows)
    assert table["borderline"]["refusal"] == pytest.approx({"n": 2, "run": 1.375, "first_token": 1.5,
                                                            "baseline": 0.0}, abs=1e-6)
    assert table["borderline"]["answer"]["run"] == -0.5
    assert "| borderline | refusal | 2 | +1.375 / +1.500 | +0.000 |" in format_table(table)
    single = advantage_rows(exp, prompts, texts, samples_per_prompt=1)
    assert all(r.baseline is None for r in single) and refusal_table(single)["borderline"]["answer"]["baseline"] is None


def test_the_recorder_sees_every_rollout_batch():
    torch.manual_seed(0)
    tok, policy, reference, value = tiny_chat_models()
    cfg = PPOConfig(max_new_tokens=4, samples_per_prompt=2, rollout_batch_size=4, minibatch_size=2)
    maker = ExperienceMaker(cfg, CPU, policy=policy, reference=reference, value=value, tokenizer=tok,
                            rewards=CombinedScorer(FixedScorer([1.0, 2.0, 3.0, 0.0]), FixedScorer([1.0] * 4), 0.15))
    trainer = SimpleNamespace(experience=maker, cfg=cfg, tokenizer=tok, iteration=0)
    recorder = AdvantageRecorder(is_refusal=lambda text: True).attach(trainer)
    prompts = [_prompt("task"), _prompt("task"), _prompt("harmful", True), _prompt("harmful", True)]
    exp, _ = maker.make(prompts)
    assert [(r.iteration, r.prompt_type, r.refusal) for r in recorder.rows] == [
        (1, "task", True), (1, "task", True), (1, "harmful", True), (1, "harmful", True)]
    assert [r.run for r in recorder.rows] == pytest.approx(
        ((exp.advantages * exp.action_mask).sum(1) / exp.action_mask.sum(1)).tolist(), abs=1e-6)
    assert recorder.rows[0].baseline < 0 < recorder.rows[1].baseline  # rh 1 vs 2 on the same prompt
