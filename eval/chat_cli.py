"""`camelid chat REF`: talk to a checkpoint in the terminal, multi-turn, with its chat template.

Commands inside the chat: /reset (forget the conversation), /system TEXT (set the system prompt and
reset), /exit or /quit (or Ctrl-D), /help. `--once "question"` prints one answer and exits (for scripts).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from camelid.cli_common import resolve, stage_parser
from camelid.registry import Registry

HELP = "commands: /reset  /system TEXT  /exit  /help"
# What a blank answer means in practice: the micro profile's models are test-sized and mostly say nothing.
EMPTY_ANSWER = "(empty answer: the model generated no text; test-sized models such as micro's do; try --profile tiny)"


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

    def ask(self, text: str) -> str:
        from camelid import models

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
    from camelid.registry_hint import elsewhere

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
    print(f"chatting with {session.ref}; {HELP}", file=stdout, flush=True)
    while True:
        stdout.write("you> ")
        stdout.flush()
        line = stdin.readline()
        if not line:  # EOF / Ctrl-D
            stdout.write("\n")
            return 0
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
            answer = session.ask(text)
            print(f"assistant> {answer if answer.strip() else EMPTY_ANSWER}", file=stdout, flush=True)


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
        answer = session.ask(args.once)
        print(answer)  # stdout stays the answer itself (scripts read it); the note goes to stderr
        if not answer.strip():
            print(EMPTY_ANSWER, file=sys.stderr)
        return 0
    return repl(session)
