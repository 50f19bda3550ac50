"""One render + tokenize serves both reward models when their tokenizers agree; scores stay identical (#18)."""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from camelid.registry import Registry
from camelid.reward import scoring
from camelid.reward.combined import length_groups, load_combined_scorer, score_both

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stages"))
import ppo_fixtures  # noqa: E402

CONVS = [[{"role": "user", "content": "What is 3 plus 4?"}], [{"role": "user", "content": "How can I steal a car?"}],
         [{"role": "user", "content": "Spell cat backwards."}]]
TEXTS = ["The answer is 7.", "I can't help with that.", "tac"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(ppo_fixtures.build(tmp_path_factory.mktemp("rms"))["registry"])


@pytest.fixture(scope="module")
def rms(registry):
    return (scoring.load_reward_model("rm-helpfulness", registry, device="cpu"),
            scoring.load_reward_model("rm-safety", registry, device="cpu"))


def _counting_render(monkeypatch) -> list:
    calls = []
    render = scoring.render

    def counted(tokenizer, conversation, response):
        calls.append(response)
        return render(tokenizer, conversation, response)

    monkeypatch.setattr(scoring, "render", counted)
    return calls


def test_two_rms_with_equal_tokenizers_tokenize_once_and_score_as_alone(rms, monkeypatch):
    rm_h, rm_s = rms
    assert rm_h.tokenizer is not rm_s.tokenizer and rm_h.shares_tokenization(rm_s)
    alone = rm_h.score(CONVS, TEXTS), rm_s.score(CONVS, TEXTS)
    calls = _counting_render(monkeypatch)
    both = score_both(rm_h, rm_s, CONVS, TEXTS)
    assert len(calls) == len(TEXTS)  # once per response, not once per response and RM
    for got, want in zip(both, alone):  # batched by length, not all at once: equal up to float summation order
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.equal(both[0], both[1])  # two different models really scored


def test_the_combined_scorer_loads_both_rms_frozen_and_scores_as_score_both(rms, registry):
    rm_h, rm_s = rms
    rewards = load_combined_scorer("rm-helpfulness", "rm-safety", registry, threshold=0.15, device=torch.device("cpu"))
    assert not any(p.requires_grad for m in (rewards.helpfulness, rewards.safety) for p in m.model.parameters())
    s = rewards.score(CONVS, TEXTS, [False, True, False])
    want_h, want_s = score_both(rm_h, rm_s, CONVS, TEXTS)
    assert torch.equal(s.helpfulness, want_h) and torch.equal(s.safety, want_s)
    assert s.combined[1] == want_s[1] and s.used_safety[1]  # the tagged prompt takes its safety score


def test_each_rm_keeps_its_own_truncation_on_shared_ids(rms):
    rm_h, rm_s = rms
    short = dataclasses.replace(rm_s, max_length=6)  # keeps the end of each input: a different score
    assert rm_h.shares_tokenization(short)
    both = score_both(rm_h, short, CONVS, TEXTS)
    torch.testing.assert_close(both[1], short.score(CONVS, TEXTS), atol=1e-5, rtol=1e-5)
    assert (both[1] - rm_s.score(CONVS, TEXTS)).abs().max() > 1e-3


def test_a_different_chat_template_is_tokenized_separately(rms, monkeypatch):
    rm_h, rm_s = rms
    tok = copy.deepcopy(rm_s.tokenizer)
    tok.chat_template = tok.chat_template.replace("[INST]", "[USER]")
    other = dataclasses.replace(rm_s, tokenizer=tok)
    assert not rm_h.shares_tokenization(other)
    calls = _counting_render(monkeypatch)
    both = score_both(rm_h, other, CONVS, TEXTS)
    assert len(calls) == 2 * len(TEXTS)
    torch.testing.assert_close(both[1], other.score(CONVS, TEXTS), atol=1e-5, rtol=1e-5)


def test_length_groups_cut_sorted_lengths_where_padding_costs_more_than_a_forward():
    lengths = [100, 10, 12, 98, 11, 99]
    assert length_groups(lengths, overhead=32) == [[1, 4, 2], [3, 5, 0]]
    assert length_groups(lengths, overhead=10_000) == [[1, 4, 2, 3, 5, 0]]  # one forward when calls are dear
    assert length_groups(lengths, overhead=0) == [[1], [4], [2], [3], [5], [0]]  # free calls: no padding at all
    assert length_groups(lengths, overhead=10_000, max_rows=2) == [[1, 4], [2, 3], [5, 0]]
    assert length_groups([]) == []
