"""`camelid` entry point: a table of subcommands, each implemented in its own module.

Every command module exposes ``main(argv: list[str]) -> int``. Modules are imported lazily so that
`camelid --help` is instant and a command whose module does not exist yet says so plainly.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from camelid.errors import CamelidError, NotBuiltError

# name -> (module, one-line help, issue that builds it)
COMMANDS: dict[str, tuple[str, str, int]] = {
    "init": ("camelid.init_cmd", "Train the toy tokenizer, build the tiny base model, publish base/vN", 3),
    "run": ("camelid.run_cmd", "Run the pipeline stages in order, skipping up-to-date ones", 2),
    "sft": ("camelid.sft.cli", "Supervised fine-tuning (Llama 2 recipe on TRL), publishes sft/vN", 4),
    "reward": ("camelid.reward.cli", "Train the helpfulness and/or safety reward model", 5),
    "ppo": ("camelid.ppo.cli", "PPO against the combined helpfulness/safety reward", 6),
    "compare": ("camelid.eval.compare_cli", "Compare chat checkpoints: win rates, safety, HTML report", 8),
    "chat": ("camelid.eval.chat_cli", "Chat with a checkpoint in the terminal", 8),
    "annotate": ("camelid.eval.annotate.cli", "Preference annotation web app: serve, import, users, export", 9),
    "data": ("camelid.data.cli", "Validate, inspect and preview data specs (toy world or real files)", 7),
    "oracle": ("camelid.data.toyworld.cli", "Score responses to toy-world prompts with the oracle", 3),
    "registry": ("camelid.registry_cli", "List, show, trace lineage of and clean registry artifacts", 2),
    "config": ("camelid.config_cli", "Print the resolved configuration of a profile", 2),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: camelid COMMAND [options] [key=value ...]",
        "",
        "Llama-2-style RLHF post-training: SFT, two reward models, PPO, registry, annotation, compare.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_, _) in COMMANDS.items()]
    lines += [
        "",
        "Every stage command takes --profile P, --config FILE and dotted key=value overrides,",
        "e.g. `camelid sft --profile micro stages.sft.max_steps=5`. `camelid COMMAND --help` for details.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"camelid {version('camelid')}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"camelid: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, issue = COMMANDS[name]
    try:
        if importlib.util.find_spec(module_name) is None:
            raise NotBuiltError(f"`camelid {name}` is not built yet (planned in issue #{issue}).")
        module = importlib.import_module(module_name)
        return int(module.main(rest) or 0)
    except CamelidError as e:
        print(f"camelid {name}: error: {e}", file=sys.stderr)
        if os.environ.get("CAMELID_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        print(f"camelid {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
