"""The DPO stage's pairs and how Llama 2's ratings enter: the rating filter, dropped over-long pairs, the
settings that cannot go together, and the margin as an offset that DPOTrainer's own loss applies."""

from __future__ import annotations

import math

import pytest
import torch

from camelid.data.records import PreferencePair
from camelid.dpo.config import DPOConfig
from camelid.dpo.data import MARGIN, at_least, to_rows, with_margins

P = [{"role": "user", "content": "What is 2 + 3?"}]


def pair(i: int, rating: str, chosen: str = "5", rejected: str = "6") -> PreferencePair:
    return PreferencePair(prompt=P, chosen=chosen, rejected=rejected, rating=rating, id=str(i))


def test_min_rating_keeps_that_level_and_stronger():
    pairs = [pair(0, "significantly_better"), pair(1, "better"), pair(2, "slightly_better"),
             pair(3, "negligibly_better")]
    kept, dropped = at_least(pairs, "better")
    assert [p.id for p in kept] == ["0", "1"] and dropped == 2
    assert at_least(pairs, "negligibly_better") == (pairs, 0)


def test_rows_are_conversations_with_the_margin_of_their_rating_and_long_pairs_are_dropped(micro):
    from camelid.models import load_tokenizer

    _, registry = micro()
    tok = load_tokenizer("base", registry)
    pairs = [pair(0, "significantly_better"), pair(1, "slightly_better"),
             pair(2, "better", rejected="no " * 200)]          # rejected answer far over max_length
    rows, too_long = to_rows(tok, pairs, margin="small", max_length=64)
    assert too_long == 1 and len(rows) == 2
    assert rows[0]["prompt"] == P
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "5"}]
    assert [r[MARGIN] for r in rows] == [1.0, pytest.approx(1 / 3)]
    assert [r[MARGIN] for r in to_rows(tok, pairs[:2], margin="none", max_length=64)[0]] == [0.0, 0.0]


@pytest.mark.parametrize("settings, message", [
    ({"margin": "small", "loss_type": "ipo"}, "margin='small' needs loss_type sigmoid or hinge"),
    ({"loss_type": "robust"}, "robust needs label_smoothing > 0"),
])
def test_settings_that_cannot_go_together_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DPOConfig(**settings)


def test_margin_is_an_offset_in_dpotrainers_own_loss(micro, tmp_path):
    """Policy == reference at the start, so every log-ratio is 0 and DPO's loss is log 2 per pair; with
    Llama 2's margin m it must be -log sigmoid(-m) = log(1 + e^m), m as given, not m / beta or m * beta."""
    from datasets import Dataset
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    from camelid.models import load_causal_lm

    _, registry = micro()
    model, tok = load_causal_lm("base", registry, device="cpu")
    rows = to_rows(tok, [pair(0, "significantly_better"), pair(1, "slightly_better"), pair(2, "negligibly_better")],
                   margin="small", max_length=128)[0]
    beta = 0.25
    args = TRLConfig(output_dir=str(tmp_path), beta=beta, precompute_ref_log_probs=True, use_cpu=True, bf16=False,
                     activation_checkpointing=False, per_device_train_batch_size=3, report_to="none",
                     disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(rows))
    trainer.train_dataset = with_margins(trainer.train_dataset, beta)
    assert MARGIN not in trainer.train_dataset.column_names
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["ref_chosen_logps"].dtype == torch.float32
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()
    expected = sum(math.log1p(math.exp(m)) for m in (1.0, 1 / 3, 0.0)) / 3
    assert loss == pytest.approx(expected, rel=1e-4)
    assert expected > math.log(2)  # the margins made the pairs harder than plain DPO's log 2
