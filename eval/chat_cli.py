"""`camelid chat REF`: talk to a checkpoint in the terminal, multi-turn, with its chat template.

Commands inside the chat: /reset (forget the conversation), /system TEXT (set the system prompt and
reset), /exit or /quit (or Ctrl-D), /help. `--once "question"` prints one answer and exits (for scripts).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from camelid.config.args import resolve, stage_parser
from camelid.errors import CamelidError
from camelid.registry import Registry

HELP = "commands: /reset  /system TEXT  /exit  /help"
# What a blank answer means in practice: the micro profile's models are test-sized and mostly say nothing.
EMPTY_ANSWER = "(empty answer: the model generated no text; test-sized models such as micro's do; try --profile tiny)"
# No token of a real vocabulary spans this many characters on average: a longer message is refused
# before the tokenizer spends time and memory on it.
MAX_CHARS_PER_TOKEN = 32


class ChatSession:
    """A conversation with one model: the history it sends, and the sampling settings."""

    def __init__(self, model, tokenizer, *, system: str | None = None, max_new_tokens: int = 128,
                 temperature: float = 0.0, top_p: float = 1.0, seed: int = 0, ref: str = "model"):
        self.model, self.tokenizer, self.ref = model, tokenizer, ref
        self.system = system
        self.sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        self.seed = seed
        self.messages: list[dict] = []
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def context_budget(self) -> int | None:
        """How many prompt tokens fit: the model's positions minus the answer's new tokens (None: unbounded)."""
        config = getattr(self.model, "config", None)
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if not isinstance(positions, int):
            return None
        budget = positions - self.sampling["max_new_tokens"]
        if budget <= 0:
            raise CamelidError(f"--max-new-tokens {self.sampling['max_new_tokens']} leaves no room for a question "
                               f"in {self.ref}'s {positions} positions; ask for fewer new tokens")
        return budget

    def _prompt_tokens(self, messages: list[dict]) -> int:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def fit(self, text: str) -> int:
        """Refuse a message the model cannot read; drop the oldest exchanges until the new turn fits.
        Returns how many earlier exchanges were dropped."""
        budget = self.context_budget()
        if budget is None or self.tokenizer is None:
            return 0
        new = self.sampling["max_new_tokens"]
        limit = f"{self.ref} reads at most {budget} tokens ({budget + new} positions less --max-new-tokens {new})"
        if len(text) > budget * MAX_CHARS_PER_TOKEN:
            raise CamelidError(f"message not sent: {len(text):,} characters is far more than {limit}; shorten it")
        system = self.messages[:1] if self.messages and self.messages[0]["role"] == "system" else []
        alone = self._prompt_tokens([*system, {"role": "user", "content": text}])
        if alone > budget:
            raise CamelidError(f"message not sent: it is {alone:,} tokens{' with the system prompt' if system else ''}"
                               f" and {limit}; shorten it")
        dropped = 0
        while self._prompt_tokens([*self.messages, {"role": "user", "content": text}]) > budget:
            del self.messages[len(system):len(system) + 2]  # the oldest user turn and its answer
            dropped += 1
        return dropped

    def ask(self, text: str) -> str:
        from camelid import models

        dropped = self.fit(text)
        if dropped:
            print(f"(dropped the oldest {dropped} exchange(s) to fit the model's context)", file=sys.stderr)
        self.messages.append({"role": "user", "content": text})
        answer = models.generate(self.model, self.tokenizer, [list(self.messages)], seed=self.seed,
                                 **self.sampling)[0]
        self.seed += 1  # a new turn samples afresh; the same session replays identically
        self.messages.append({"role": "assistant", "content": answer})
        return answer


def _registry(args: argparse.Namespace) -> Registry:
    if args.registry or not Path(args.config).is_file():
        return Registry(args.registry or "./registry")
    return resolve(args)[1]


def _resolve(registry: Registry, args: argparse.Namespace):
    """The checkpoint to chat with; an empty registry's error also says which profiles' registries hold models."""
    from camelid.errors import RegistryError
    from camelid.registry.hint import elsewhere

    try:
        return registry.resolve(args.ref)
    except RegistryError as e:
        if registry.names():
            raise
        raise RegistryError(f"{e}{elsewhere(args.config, registry.root, 'camelid chat ' + args.ref)}") from None


def repl(session: ChatSession, stdin=None, stdout=None) -> int:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    interactive = stdin.isatty()
    if interactive:
        import readline  # noqa: F401 - line editing and history for input()
    if hasattr(stdin, "reconfigure"):  # undecodable bytes reach us as surrogates, and are refused below
        stdin.reconfigure(errors="surrogateescape")
    print(f"chatting with {session.ref}; {HELP}", file=stdout, flush=True)
    while True:
        stdout.write("you> ")
        stdout.flush()
        try:
            line = stdin.readline()
        except UnicodeDecodeError as e:
            print(f"(skipped input that is not UTF-8 text: {e.reason} at byte {e.start})", file=stdout, flush=True)
            continue
        if not line:  # EOF / Ctrl-D
            stdout.write("\n")
            return 0
        bad = _not_utf8(line)
        if bad:
            print(f"(skipped a line that is not UTF-8 text: {bad}; nothing was sent)", file=stdout, flush=True)
            continue
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/help":
            print(HELP, file=stdout, flush=True)
        elif text == "/reset":
            session.reset()
            print("(conversation reset)", file=stdout, flush=True)
        elif text.startswith("/system"):
            session.system = text[len("/system"):].strip() or None
            session.reset()
            print(f"(system prompt {'set' if session.system else 'cleared'}; conversation reset)", file=stdout,
                  flush=True)
        elif text.startswith("/"):
            print(f"unknown command {text.split()[0]}; {HELP}", file=stdout, flush=True)
        else:
            try:
                answer = session.ask(text)
            except CamelidError as e:  # a turn too long for the model: say so, keep chatting
                print(f"({e})", file=stdout, flush=True)
                continue
            print(f"assistant> {answer if answer.strip() else EMPTY_ANSWER}", file=stdout, flush=True)


def _not_utf8(line: str) -> str | None:
    """What is wrong with a line read with surrogateescape (or holding lone surrogates), or None."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as e:
        ch = ord(line[e.start])
        what = f"byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF else f"lone surrogate U+{ch:04X}"
        return f"{what} at character {e.start}"
    return None


def main(argv: list[str]) -> int:
    p = stage_parser("camelid chat", "Chat with a checkpoint in the terminal (its chat template, multi-turn).")
    p.add_argument("ref", help="checkpoint: registry ref (sft, ppo@v2), local path or hf:id")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--once", metavar="QUESTION", help="print one answer to QUESTION and exit")
    p.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit (default 128)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--device", default=os.environ.get("CAMELID_DEVICE", "auto"), choices=("auto", "cpu", "cuda"))
    args = p.parse_args(argv)
    registry = _registry(args)

    from camelid.models import load_causal_lm

    art = _resolve(registry, args)
    model, tok = load_causal_lm(art, registry, device=args.device)
    session = ChatSession(model, tok, system=args.system, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_p=args.top_p, seed=args.seed, ref=art.ref)
    if args.once is not None:
        bad = _not_utf8(args.once)
        if bad:
            raise CamelidError(f"--once: the question is not UTF-8 text ({bad})")
        answer = session.ask(args.once)
        print(answer)  # stdout stays the answer itself (scripts read it); the note goes to stderr
        if not answer.strip():
            print(EMPTY_ANSWER, file=sys.stderr)
        return 0
    return repl(session)
