"""generate()'s batch size chosen by the code (compare's answering, #18): memory-bounded, capped, deterministic."""

from __future__ import annotations

import pytest

from camelid import models
from camelid.models import generate, generation_batch_size, load_causal_lm
from camelid.registry import Registry

CONVS = [[{"role": "user", "content": f"What is {i} + {i + 3}?"}] for i in range(7)]


@pytest.fixture(scope="module")
def micro_model(micro_base_registry):
    return load_causal_lm(Registry(micro_base_registry).resolve("base"), precision="fp32", device="cpu")


def _per_sequence_bytes(model, tokens: int) -> int:
    c = model.config
    head_dim = c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * tokens * 4 + c.vocab_size * 4


def test_batch_size_is_what_the_budget_holds_at_most_n_and_the_cap(micro_model):
    model, _ = micro_model
    per_seq = _per_sequence_bytes(model, 100)
    assert generation_batch_size(model, 1000, 100, budget=3 * per_seq) == 3
    assert generation_batch_size(model, 1000, 100, budget=3 * per_seq - 1) == 2
    assert generation_batch_size(model, 1000, 100, budget=per_seq // 2) == 1  # never 0
    assert generation_batch_size(model, 5, 100, budget=1 << 40) == 5
    assert generation_batch_size(model, 1000, 100, budget=1 << 40) == models.GENERATE_MAX_BATCH
    # longer sequences: fewer of them
    assert generation_batch_size(model, 1000, 400, budget=10 * per_seq) < 10


def test_generate_without_a_batch_size_picks_one_and_answers_as_one_batch_of_32(micro_model, monkeypatch):
    model, tok = micro_model
    fixed = generate(model, tok, CONVS, max_new_tokens=6)  # the default batch of 32
    calls = []
    real = model.generate

    def counting(**kw):
        calls.append(kw["input_ids"].shape[0])
        return real(**kw)

    monkeypatch.setattr(models, "GENERATE_CPU_BUDGET", 3 * _per_sequence_bytes(model, 8))  # prompts + 6 > 8 tokens
    monkeypatch.setattr(model, "generate", counting)
    auto = generate(model, tok, CONVS, max_new_tokens=6, batch_size=None)
    assert sum(calls) == len(CONVS) and max(calls) <= 3 and len(calls) >= 3
    assert auto == fixed  # greedy answers do not depend on how the prompts were batched


class _Terminal:
    """A stderr that says it is a terminal (tqdm shows bars only there)."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


def test_a_progress_bar_counts_answers_on_a_terminal_and_stays_silent_elsewhere(micro_model, monkeypatch, capsys):
    import sys

    model, tok = micro_model
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    answers = generate(model, tok, CONVS, max_new_tokens=2, batch_size=4, progress="base answers")
    assert "base answers" in term.text and f"/{len(CONVS)} " in term.text  # counts answers of all prompts
    assert answers == generate(model, tok, CONVS, max_new_tokens=2, batch_size=4)  # the bar changes nothing
    monkeypatch.undo()
    generate(model, tok, CONVS, max_new_tokens=2, batch_size=4, progress="base answers")
    assert "base answers" not in capsys.readouterr().err  # not a terminal: no bar (compare's log stays readable)
