"""SFT data: exact answer-only label masks through TRL, packing that never mixes examples, too-long accounting."""

from __future__ import annotations

import json

import pytest
import torch

from camelid.errors import CamelidError, DataError
from camelid.sft.data import prepare

SYSTEM = "You are a careful assistant."


pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONVERSATIONS = [
    [{"role": "system", "content": SYSTEM},
     {"role": "user", "content": "What is 12 + 30?"},
     {"role": "assistant", "content": "12 + 30 = 42."}],
    [{"role": "user", "content": "Reverse the word lamp."},
     {"role": "assistant", "content": "pmal"},
     {"role": "user", "content": "And the word river?"},
     {"role": "assistant", "content": "I'm sure: revir."}],
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def recipe_for(micro, tmp_path, rows, *overrides):
    from camelid.sft.recipe import SFTRecipe
    from camelid.stage import context_for
    from camelid.stages import job_for

    data = write_jsonl(tmp_path / "sft.jsonl", rows)
    cfg, registry = micro(f"stages.sft.data={{format: messages, path: {data}}}", "stages.sft.eval_data=null",
                          "stages.sft.eval_prompts=null", *overrides)
    recipe = SFTRecipe(context_for(cfg, registry, job_for(cfg, "sft")))
    recipe.setup()
    return recipe


def expected_labels(tokenizer, messages):
    """Labels computed from character spans: a token is trained iff it lies inside an answer
    (' ' + content + ' ' + eos, the part of the template inside {% generation %})."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans, pos = [], 0
    for m in messages:
        if m["role"] == "assistant":
            answer = " " + m["content"].strip() + " " + tokenizer.eos_token
            start = text.index("[/INST]" + answer, pos) + len("[/INST]")
            spans.append((start, start + len(answer)))
            pos = start + len(answer)
    labels = [tid if any(a <= s and e <= b for a, b in spans) else -100
              for tid, (s, e) in zip(enc["input_ids"], enc["offset_mapping"])]
    return enc["input_ids"], labels


def test_only_assistant_tokens_are_trained(micro, tmp_path):
    recipe = recipe_for(micro, tmp_path, [{"messages": c} for c in CONVERSATIONS])
    tok = recipe.tokenizer
    ds = recipe.trainer.train_dataset
    assert len(ds) == len(CONVERSATIONS)
    for row, messages in zip(ds, CONVERSATIONS):
        ids, labels = expected_labels(tok, messages)
        assert row["input_ids"] == ids
        assert row["labels"] == labels
        # Spelled out: the system prompt and user turns (through [/INST]) are masked ...
        first_answer = ids.index(tok.convert_tokens_to_ids("[/INST]")) + 1
        assert all(lab == -100 for lab in row["labels"][:first_answer])
        # ... the first answer token (carrying the leading space, see camelid.chat) and the eos are trained.
        assert row["labels"][first_answer] == ids[first_answer] != -100
        assert row["labels"][-1] == tok.eos_token_id
        trained = [t for t, lab in zip(ids, row["labels"]) if lab != -100]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert tok.decode(trained, skip_special_tokens=True).split() == " ".join(answers).split()
    # The second user turn of the multi-turn example is masked too.
    ids, labels = ds[1]["input_ids"], ds[1]["labels"]
    user2 = tok("And the word river?", add_special_tokens=False)["input_ids"]
    i = next(k for k in range(len(ids)) if ids[k:k + len(user2)] == user2)
    assert all(lab == -100 for lab in labels[i:i + len(user2)])


def test_packed_batch_gives_the_same_per_example_loss(micro, tmp_path):
    rows = [{"messages": c} for c in CONVERSATIONS * 3]
    recipe = recipe_for(micro, tmp_path, rows, "stages.sft.packing=true", "stages.sft.max_length=128")
    model, trainer = recipe.model.eval(), recipe.trainer
    packed = trainer.train_dataset
    assert len(packed) < len(rows)  # examples were packed together
    batch = trainer.data_collator([packed[0]])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # padding-free row
    pos = batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist() + [len(pos)]
    assert len(starts) > 2  # at least two examples in the row

    def per_token_nll(input_ids, labels, **kw):  # (T,) loss at each position predicting labels[t+1]
        with torch.no_grad():
            logits = model(input_ids=input_ids[None], **kw).logits[0, :-1]
        return torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=-100, reduction="none"), labels[1:]

    nll, lab = per_token_nll(batch["input_ids"][0], batch["labels"][0], position_ids=batch["position_ids"])
    for a, b in zip(starts[:-1], starts[1:]):
        seg = slice(a, b - 1)  # predictions made inside the example (the last one would predict the next example)
        packed_loss = nll[seg][lab[seg] != -100].mean()
        alone, alone_lab = per_token_nll(batch["input_ids"][0, a:b], batch["labels"][0, a:b])
        alone_loss = alone[alone_lab != -100].mean()
        torch.testing.assert_close(packed_loss, alone_loss, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def tokenizer(micro_base_registry):
    from camelid.models import load_tokenizer
    from camelid.registry import Registry

    return load_tokenizer("base", Registry(micro_base_registry), chat_template="llama2")


def test_too_long_truncate_or_drop_is_counted(tokenizer):
    short = CONVERSATIONS[0]
    long = [{"role": "user", "content": "Say many words."}, {"role": "assistant", "content": "word " * 200}]
    prompt_only_long = [{"role": "user", "content": "blah " * 200}, {"role": "assistant", "content": "ok"}]
    records = [{"messages": m} for m in (short, long, prompt_only_long)]
    cut = prepare(records, tokenizer, max_length=64, too_long="truncate")
    assert (len(cut.conversations), cut.truncated) == (2, 2)
    assert cut.dropped == {"no answer token within max_length=64": 1}
    assert max(cut.lengths) == 64
    dropped = prepare(records, tokenizer, max_length=64, too_long="drop")
    assert (len(dropped.conversations), dropped.truncated) == (1, 0)
    assert dropped.dropped == {"longer than max_length=64": 2}
    assert dropped.stats()["kept"] == 1


def test_conversations_without_answers_are_counted_and_nothing_left_is_an_error(tokenizer):
    no_answer = [{"role": "user", "content": "Hello?"}]
    got = prepare([{"messages": no_answer}, {"messages": CONVERSATIONS[0]}], tokenizer, max_length=64,
                  too_long="drop")
    assert got.dropped == {"no assistant turn": 1} and len(got.conversations) == 1
    with pytest.raises(DataError, match="no trainable conversations left"):
        prepare([{"messages": no_answer}], tokenizer, max_length=64, too_long="drop")


def test_template_without_an_end_of_turn_token_is_a_clear_error(tokenizer):
    # No {% generation %} markers is fine (the answer mask is derived, tests/stages/test_realshape.py); no token
    # that ends an answer is not: the model could never learn to stop.
    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(CamelidError, match="end-of-turn"):
        prepare([{"messages": CONVERSATIONS[0]}], plain, max_length=64, too_long="drop")
