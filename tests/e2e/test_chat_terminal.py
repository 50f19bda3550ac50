"""`camelid chat` driven like a person at a terminal (pipes, expect-style), and `--once` for scripts."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import pytest


class Expect:
    """A tiny pexpect: write lines to a child, wait for text on its stdout."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, text=True, bufsize=0)
        self.buffer = ""
        self.chunks: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            ch = self.proc.stdout.read(1)
            if not ch:
                self.chunks.put("")
                return
            self.chunks.put(ch)

    def expect(self, text: str, timeout: float = 90.0) -> str:
        """Everything up to and including ``text``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.buffer:
            try:
                ch = self.chunks.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"timed out waiting for {text!r}; got so far:\n{self.buffer[-2000:]}")
            if ch == "":
                pytest.fail(f"process ended before {text!r}; output:\n{self.buffer[-2000:]}")
            self.buffer += ch
        head, _, self.buffer = self.buffer.partition(text)
        return head + text

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "CAMELID_LOG_LEVEL": "WARNING", "TOKENIZERS_PARALLELISM": "false"}


def test_interactive_chat_multi_turn_reset_exit(micro):
    cfg, registry = micro()
    child = Expect([sys.executable, "-m", "camelid.cli", "chat", "base", "--registry", str(registry.root),
                    "--system", "You are terse.", "--max-new-tokens", "8"], _env())
    try:
        child.expect("chatting with base@v1")
        child.expect("you> ")
        child.send("What is 2 plus 3?")
        child.expect("assistant>")
        child.expect("you> ")
        child.send("And 4 plus 4?")
        child.expect("assistant>")
        child.expect("you> ")
        child.send("/reset")
        child.expect("(conversation reset)")
        child.expect("you> ")
        child.send("/exit")
        assert child.proc.wait(timeout=30) == 0
    finally:
        if child.proc.poll() is None:
            child.proc.kill()


def test_once_prints_one_answer_and_exits(micro):
    cfg, registry = micro()
    out = subprocess.run([sys.executable, "-m", "camelid.cli", "chat", "base", "--registry", str(registry.root),
                          "--once", "Name the capital of Punor.", "--max-new-tokens", "8"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "you>" not in out.stdout and "chatting with" not in out.stdout  # just the answer

    bad = subprocess.run([sys.executable, "-m", "camelid.cli", "chat", "nosuch", "--registry", str(registry.root),
                          "--once", "hi"], capture_output=True, text=True, env=_env(), timeout=120)
    assert bad.returncode == 2 and "unknown reference 'nosuch'" in bad.stderr
