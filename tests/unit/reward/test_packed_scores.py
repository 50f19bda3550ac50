"""Reward-model training on packed rows gives the padded batch's scores, loss and gradients (#18)."""

from __future__ import annotations

import pytest
import torch

from camelid.reward.trainer import CamelidRewardTrainer, PackedScores, PreferenceCollator

PAD = 3  # the pad id of camelid.models.train_tokenizer (the trainer sets it as the model's pad_token_id)


def _model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=64, pad_token_id=PAD, num_labels=1)
    return LlamaForSequenceClassification(cfg).eval()


def _rows(lengths: list[tuple[int, int]], seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    ids = lambda n: torch.randint(4, 300, (n,), generator=g).tolist()  # noqa: E731 (never the pad id)
    return [{"chosen_ids": ids(c), "rejected_ids": ids(r), "margin": 0.5, "chosen_safe": 1.0, "rejected_safe": -1.0}
            for c, r in lengths]


LENGTHS = [(5, 17), (30, 4), (9, 9), (12, 26), (3, 7)]


def test_packed_scores_equal_the_padded_models_pooled_scores():
    model = _model()
    batch = PreferenceCollator(pad_token_id=PAD)(_rows(LENGTHS))
    padded = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    packed = PackedScores(model)(batch["input_ids"], batch["attention_mask"]).logits
    assert packed.shape == padded.shape == (2 * len(LENGTHS), 1)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)


def _trainer(tmp_path, model, packing: bool) -> CamelidRewardTrainer:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast
    from trl import RewardConfig

    from camelid.models import train_tokenizer

    tok = train_tokenizer(["a b c"] * 4, 60)
    assert isinstance(tok, PreTrainedTokenizerFast) and tok.pad_token_id == PAD
    args = RewardConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=5,
                        center_rewards_coefficient=0.01, disable_tqdm=True)
    return CamelidRewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(_rows(LENGTHS)),
                                processing_class=tok, data_collator=PreferenceCollator(pad_token_id=PAD),
                                aux_safety_weight=0.5, packing=packing)


@pytest.mark.parametrize("lora", [False, True])
def test_loss_and_gradients_on_packed_rows_equal_the_padded_ones(tmp_path, lora):
    grads, losses = [], []
    for packing in (False, True):
        model = _model()
        if lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["q_proj", "v_proj"],
                                                     modules_to_save=["score"]))
        trainer = _trainer(tmp_path / str(packing), model, packing)
        assert trainer.packing is packing
        batch = PreferenceCollator(pad_token_id=PAD)(_rows(LENGTHS))
        model.train()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and any("score" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_packing_uses_fewer_slots_than_padding():
    from camelid.training.packing import pack

    batch = PreferenceCollator(pad_token_id=PAD)(_rows(LENGTHS))
    packed = pack(batch["input_ids"], batch["attention_mask"])
    padded_share = 1 - float(batch["attention_mask"].float().mean())
    assert packed.input_ids.shape[0] < batch["input_ids"].shape[0]
    assert packed.padding_share < padded_share / 2


@pytest.mark.parametrize(("setting", "use_cpu", "packed"), [("auto", True, True), ("auto", False, False),
                                                             (True, False, True), (False, True, False)])
def test_packing_auto_is_on_for_cpus_only(tmp_path, setting, use_cpu, packed):
    from camelid.models import train_tokenizer
    from camelid.reward.config import RewardStageConfig
    from camelid.reward.recipe import build_trainer

    rm = RewardStageConfig().helpfulness.model_copy(update={"packing": setting, "batch_size": 5})
    tok = train_tokenizer(["a b c"] * 4, 60)
    trainer = build_trainer(rm, _model(), tok, _rows(LENGTHS), tmp_path, "fp32", use_cpu=use_cpu)
    assert trainer.packing is packed
