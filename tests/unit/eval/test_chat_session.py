"""The chat loop's commands and history, with a stand-in for generation (no model)."""

from __future__ import annotations

import io

from camelid import models
from camelid.eval.chat_cli import ChatSession, repl


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_multi_turn_history_reset_and_system(monkeypatch):
    seen = []

    def fake_generate(model, tok, conversations, **kw):
        seen.append([dict(m) for m in conversations[0]])
        return [f"answer {len(seen)}"]

    monkeypatch.setattr(models, "generate", fake_generate)
    session = ChatSession(None, None, system="Be brief.", ref="toy@v1")
    stdin = Pipe("hello\nand then?\n/reset\nagain\n/system \n/bogus\nlast\n/exit\nnever read\n")
    stdout = Pipe()
    assert repl(session, stdin, stdout) == 0
    out = stdout.getvalue()
    assert "chatting with toy@v1" in out
    assert "assistant> answer 1" in out and "assistant> answer 4" in out
    assert "(conversation reset)" in out and "unknown command /bogus" in out
    assert seen[0] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert seen[1][-3:] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "answer 1"},
                            {"role": "user", "content": "and then?"}]
    assert seen[2] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "again"}]
    assert seen[3] == [{"role": "user", "content": "last"}]  # system prompt cleared
    assert len(seen) == 4  # nothing after /exit


def test_eof_ends_the_chat_cleanly(monkeypatch):
    monkeypatch.setattr(models, "generate", lambda *a, **k: ["x"])
    out = Pipe()
    assert repl(ChatSession(None, None), Pipe("hi\n"), out) == 0
    assert out.getvalue().count("you> ") == 2
