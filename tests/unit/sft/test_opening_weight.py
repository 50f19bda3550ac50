"""`opening_weight`: the SFT training loss weights each answer's first tokens (where a chat model decides to refuse
or to help), as the same loss computed by hand from the full logits; the eval loss stays plain (#25)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from camelid.sft.batching import SFTTrainerWithSeededGrouping, opening_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_opening_mask_marks_the_first_tokens_of_every_labelled_run():
    mask = torch.tensor([[0, 1, 1, 1, 0, 0, 1, 1, 0, 1],
                         [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert opening_mask(mask, 1).int().tolist() == [[0, 1, 0, 0, 0, 0, 1, 0, 0, 1],
                                                    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
    assert opening_mask(mask, 2).int().tolist() == [[0, 1, 1, 0, 0, 0, 1, 1, 0, 1],
                                                    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]
    assert opening_mask(mask, 5).int().tolist() == mask.tolist()  # runs shorter than 5: all of each


def _trainer(tmp_path, weight: float, tokens: int):
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                         pad_token_id=0))
    vocab = {f"t{i}": i for i in range(60)}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t1")),
                                  pad_token="t0", eos_token="t2")
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(3, 60, (n,), generator=g).tolist() for n in (12, 9, 15)]
    masks = [[0] * (n // 2) + [1] * (n - n // 2) for n in (12, 9, 15)]  # each row's answer: its second half
    data = Dataset.from_dict({"input_ids": rows, "assistant_masks": masks})
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False, max_steps=1,
                     per_device_train_batch_size=3, assistant_only_loss=False, max_length=32)
    trainer = SFTTrainerWithSeededGrouping(model=model, args=args, processing_class=tok, train_dataset=data,
                                           opening_weight=weight, opening_tokens=tokens)
    return trainer, rows, masks


def _by_hand(model, rows, masks, weight, tokens) -> torch.Tensor:
    total, count = 0.0, 0
    for ids, mask in zip(rows, masks):
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, :-1]
        nll = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
        labelled = torch.tensor(mask[1:], dtype=torch.bool)
        w = torch.ones_like(nll)
        first = labelled.nonzero()[0, 0]
        w[first:first + tokens] = weight
        total = total + (nll * w * labelled).sum()
        count += int(labelled.sum())
    return total / count


@pytest.mark.parametrize("weight,tokens", [(1.0, 1), (10.0, 1), (4.0, 3)])
def test_training_loss_weights_the_answers_opening_and_eval_loss_stays_plain(tmp_path, weight, tokens):
    trainer, rows, masks = _trainer(tmp_path, weight, tokens)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model
    model.train()
    loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        torch.testing.assert_close(loss.detach(), _by_hand(model, rows, masks, weight, tokens), atol=1e-5, rtol=1e-5)
        model.eval()
        plain = trainer.compute_loss(model, dict(batch))
        torch.testing.assert_close(plain, _by_hand(model, rows, masks, 1.0, tokens), atol=1e-5, rtol=1e-5)
