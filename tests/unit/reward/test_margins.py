"""Llama 2's margin loss on hand-made scores: exact values, and TRL's RewardTrainer computes the same."""

from __future__ import annotations

import math

import pytest
import torch

from camelid.data.records import RATINGS
from camelid.errors import ConfigError
from camelid.reward.margins import MARGINS, margin_for, margin_loss


def nll(x: float) -> float:
    return -math.log(1 / (1 + math.exp(-x)))


def test_tables_match_llama2():
    assert [MARGINS["small"][r] for r in RATINGS] == pytest.approx([1, 2 / 3, 1 / 3, 0])
    assert [MARGINS["large"][r] for r in RATINGS] == [3, 2, 1, 0]
    assert set(MARGINS["none"].values()) == {0.0}


def test_margin_loss_exact_values():
    rc = torch.tensor([2.0, 0.5, -1.0, 0.0])
    rr = torch.tensor([0.0, 0.5, 1.0, 3.0])
    m = torch.tensor([margin_for(r, "large") for r in RATINGS])  # 3, 2, 1, 0
    # diffs - margins: -1, -2, -3, -3
    expected = (nll(-1) + nll(-2) + nll(-3) + nll(-3)) / 4
    assert margin_loss(rc, rr, m).item() == pytest.approx(expected, abs=1e-6)
    assert margin_loss(rc, rr).item() == pytest.approx((nll(2) + nll(0) + nll(-2) + nll(-3)) / 4, abs=1e-6)
    # a margin makes the same scores cost more
    assert margin_loss(rc, rr, m).item() > margin_loss(rc, rr).item()


def test_unknown_table_or_rating_is_a_config_error():
    with pytest.raises(ConfigError, match="margin table"):
        margin_for("better", "huge")
    with pytest.raises(ConfigError, match="rating"):
        margin_for("best", "small")


class FixedScores(torch.nn.Module):
    """Stands in for the RM: returns preset logits (2B, 1) whatever the input."""

    def __init__(self, scores):
        super().__init__()
        self.scores = torch.tensor(scores).unsqueeze(-1)

    def forward(self, input_ids, attention_mask=None, **kwargs):  # TRL passes margin, use_cache too
        return type("Out", (), {"logits": self.scores})()


@pytest.mark.parametrize("aux", [0.0, 0.5])
def test_trainer_loss_is_llama2_margin_loss(tmp_path, aux):
    """Our RewardTrainer subclass on fixed scores gives the hand-computed margin (+ centring, + aux) loss."""
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForSequenceClassification
    from trl import RewardConfig

    from camelid.models import train_tokenizer
    from camelid.reward.trainer import CamelidRewardTrainer, PreferenceCollator

    tiny = LlamaForSequenceClassification(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=8,
                                                      num_hidden_layers=1, num_attention_heads=2, num_labels=1,
                                                      pad_token_id=0))
    rows = [{"chosen_ids": [1, 2], "rejected_ids": [3], "margin": 1.0, "chosen_safe": 1.0, "rejected_safe": 0.0}]
    args = RewardConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                        center_rewards_coefficient=0.01)
    tok = train_tokenizer(["a b c d e f"] * 4, vocab_size=300)
    trainer = CamelidRewardTrainer(model=tiny, args=args, train_dataset=Dataset.from_list(rows),
                                   processing_class=tok, data_collator=PreferenceCollator(pad_token_id=0),
                                   aux_safety_weight=aux)
    batch = PreferenceCollator(pad_token_id=0)([
        {"chosen_ids": [1, 2], "rejected_ids": [3], "margin": 1.0, "chosen_safe": 1.0, "rejected_safe": 0.0},
        {"chosen_ids": [4], "rejected_ids": [5, 6], "margin": 0.0, "chosen_safe": -1.0, "rejected_safe": 1.0},
    ])
    # scores: chosen 2.0, -0.5; rejected 0.0, 0.5
    loss = trainer.compute_loss(FixedScores([2.0, -0.5, 0.0, 0.5]), batch)
    expected = (nll(2.0 - 0.0 - 1.0) + nll(-0.5 - 0.5 - 0.0)) / 2
    expected += 0.01 * ((2.0 + 0.0) ** 2 + (-0.5 + 0.5) ** 2) / 2
    # aux: BCE over labelled responses: chosen0 safe (2.0), rejected0 unsafe (0.0), rejected1 safe (0.5)
    expected += aux * (nll(2.0) + nll(-0.0) + nll(0.5)) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-5)
