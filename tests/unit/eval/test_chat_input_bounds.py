"""`camelid chat` input is bounded (#29): bytes that are not UTF-8 skip their line with a message, and a turn
longer than the model's context is refused (or old turns dropped) before any generation, saying so."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import pytest

from camelid import models
from camelid.chat import LLAMA2_CHAT_TEMPLATE
from camelid.errors import CamelidError
from camelid.eval.chat_cli import ChatSession, repl


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture(scope="module")
def tok():
    from camelid.data.toyworld import ToyWorld

    t = models.train_tokenizer(ToyWorld(seed=0).corpus(n_lines=200), 300)
    t.chat_template = LLAMA2_CHAT_TEMPLATE
    return t


@pytest.fixture
def generated(monkeypatch):
    """Each generate call's conversation; answers are 'ok'."""
    seen = []
    monkeypatch.setattr(models, "generate", lambda model, tok, convs, **kw: seen.append(convs[0]) or ["ok"])
    return seen


def model_with(positions: int):
    return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=positions))


def test_bytes_that_are_not_utf8_skip_their_line_and_the_chat_goes_on(tok, generated):
    raw = io.BytesIO(b"hello\n\xff\xfe bad \xc3(\nstill here\n")
    stdin = io.TextIOWrapper(raw, encoding="utf-8")  # strict, as a UTF-8 terminal's stdin
    stdout = Pipe()
    assert repl(ChatSession(model_with(256), tok, max_new_tokens=16), stdin, stdout) == 0
    out = stdout.getvalue()
    assert "(skipped a line that is not UTF-8 text: byte 0xff at character 0; nothing was sent)" in out
    assert [c[-1]["content"] for c in generated] == ["hello", "still here"]
    assert out.count("assistant> ok") == 2
    # a lone surrogate from a surrogateescape'd stdin or a pasted escape: the same
    stdout = Pipe()
    assert repl(ChatSession(model_with(256), tok), Pipe("a \udcff b\n"), stdout) == 0
    assert "(skipped a line that is not UTF-8 text: byte 0xff at character 2" in stdout.getvalue()


def test_a_turn_longer_than_the_context_is_refused_before_generation(tok, generated):
    session = ChatSession(model_with(256), tok, max_new_tokens=128, ref="toy@v1")
    t0 = time.perf_counter()
    with pytest.raises(CamelidError, match=r"message not sent: 1,000,000 characters is far more than toy@v1 reads "
                                           r"at most 128 tokens \(256 positions less --max-new-tokens 128\)"):
        session.ask("what is 2 + 3? " * 66_000 + "x" * (1_000_000 - 15 * 66_000))
    with pytest.raises(CamelidError, match=r"message not sent: it is [\d,]+ tokens and toy@v1 reads at most 128"):
        session.ask("what is 2 + 3? " * 100)  # 1,500 characters, well over 128 tokens
    assert time.perf_counter() - t0 < 10 and generated == [] and session.messages == []
    stdout = Pipe()
    assert repl(session, Pipe("what is 2 + 3? " * 100 + "\nhi\n"), stdout) == 0
    assert "(message not sent: it is" in stdout.getvalue() and "assistant> ok" in stdout.getvalue()


def test_old_exchanges_are_dropped_so_the_new_turn_fits(tok, generated, capsys):
    session = ChatSession(model_with(160), tok, system="Be brief.", max_new_tokens=32)
    question = "what is 2 + 3 and then 4 + 5?"
    for _ in range(12):
        session.ask(question)
    budget = 160 - 32
    assert all(session._prompt_tokens(conv) <= budget for conv in generated)
    assert generated[-1][0] == {"role": "system", "content": "Be brief."}  # the system prompt stays
    assert len(generated[-1]) < len(generated[0]) + 2 * 11  # older turns went
    assert "(dropped the oldest 1 exchange(s) to fit the model's context)" in capsys.readouterr().err


def test_max_new_tokens_past_the_context_is_an_error(tok, generated):
    with pytest.raises(CamelidError, match=r"--max-new-tokens 300 leaves no room for a question in model's 256"):
        ChatSession(model_with(256), tok, max_new_tokens=300).ask("hi")
