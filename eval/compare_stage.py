"""The compare stage's declaration and CLI: `camelid compare REF REF [REF ...]`.

Without REFs it compares the config's `stages.compare.checkpoints` (what `camelid run` does).
Under `accelerate launch` (e.g. `--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no
--dynamo_backend no -m camelid.cli compare ...`) the processes split the prompts; one report is published.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from camelid.data.spec import DataSpec
from camelid.errors import ConfigError
from camelid.stage import Stage

MODEL_KINDS = ("base", "sft", "ppo", "rs")


def parse_prompts(text: str, n: int | None, split: str | None) -> DataSpec:
    """`toy` | `toy:SPLIT` | PATH | FORMAT:PATH | hf:ID -> DataSpec (`camelid data`'s syntax, plus toy:SPLIT)."""
    if text == "toy" or text.startswith("toy:"):
        return DataSpec(format="toy", split=text[4:] or split or "eval", n=n or 200)
    from camelid.data.cli import parse_spec

    # The data CLI's parser: it names an unknown FORMAT (listing the known ones) rather than blaming the path.
    return parse_spec(text, Namespace(split=split, n=n, seed=0, objective=None, on_error="raise", option=None,
                                      column=None, max_chars=DataSpec.model_fields["max_chars"].default))


class CompareStage(Stage):
    name = "compare"
    kind = "report"
    help = "Compare chat checkpoints: win rates, safety, HTML report"
    description = ("Compare chat checkpoints: win/tie/loss with bootstrap CIs, Bradley-Terry ratings, safety and "
                   "over-refusal rates, an HTML report (published as report/vN).")
    shared = ("safety_threshold",)

    def jobs(self, cfg, options: dict | None = None):
        c = cfg.stages.compare
        inputs = {f"checkpoint{i}": ref for i, ref in enumerate(c.checkpoints)}
        kinds = {role: MODEL_KINDS for role in inputs}
        for role, kind in (("reward_helpfulness", ("reward",)), ("reward_safety", ("reward",)),
                           ("reference", MODEL_KINDS)):
            if getattr(c, role):
                inputs[role], kinds[role] = getattr(c, role), kind
        return [self.make_job(cfg, c, inputs=inputs, input_kinds=kinds, options=options)]

    def add_arguments(self, p) -> None:
        p.add_argument("--ckpt", dest="refs", action="append", default=[], metavar="REF",
                       help="a checkpoint to compare (registry ref, path or hf:id); or list them as --ckpt A --ckpt B")
        p.add_argument("--prompts", metavar="SPEC",
                       help="held-out prompts: toy (default: toy eval split), toy:SPLIT, a file, FORMAT:PATH "
                            "(e.g. mt-bench:question.jsonl) or hf:ID")
        p.add_argument("--n", type=int, default=None, help="use at most N prompts")
        p.add_argument("--split", default=None, help="split for --prompts (toy: eval/ppo; hf: the split name)")
        p.add_argument("--reference", metavar="REF", help="also report KL and perplexity against this checkpoint")
        p.add_argument("--no-reward-models", action="store_true", help="judge without the helpfulness/safety RMs")
        p.add_argument("--out", metavar="DIR", help="also copy report.html, report.json and answers.jsonl here")
        p.add_argument("--export-pairs", metavar="FILE",
                       help="write {prompt, responses: {ckpt: text}} JSONL for `camelid annotate import`")
        p.usage = ("camelid compare REF REF [REF ...] [--prompts SPEC] [--reference REF] [--out DIR] "
                   "[--export-pairs FILE] [--profile P] [key=value ...]\n  (REF: registry ref, path or hf:id; "
                   "without REFs: stages.compare.checkpoints)")

    def prepare_args(self, args) -> None:
        # REFs are positional but mixed with key=value overrides: split them after parsing.
        args.refs = list(args.refs) + [o for o in args.overrides if "=" not in o]
        args.overrides = [o for o in args.overrides if "=" in o]

    def select(self, cfg, args):
        checkpoints = args.refs or cfg.stages.compare.checkpoints
        if len(checkpoints) < 2:  # a report of one checkpoint has nothing to compare it with
            raise ConfigError(f"compare needs at least two checkpoints, got {len(checkpoints)} "
                              f"({', '.join(checkpoints)}): give two or more REFs, e.g. `camelid compare base sft`")
        update: dict = {}
        if args.refs:
            update["checkpoints"] = args.refs
        if args.prompts:
            update["prompts"] = parse_prompts(args.prompts, args.n, args.split)
        elif args.n:
            update["prompts"] = cfg.stages.compare.prompts.model_copy(update={"n": args.n})
        if args.reference:
            update["reference"] = args.reference
        if args.no_reward_models:
            update["reward_helpfulness"] = update["reward_safety"] = None
        if update:
            compare = cfg.stages.compare.model_validate({**cfg.stages.compare.model_dump(), **update})
            cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(update={"compare": compare})})
        return cfg, self.jobs(cfg, {"out_dir": args.out, "export": args.export_pairs})

    def report(self, art, args) -> None:
        print(art.ref)
        print(art.path / "report.html")
        if args.out:
            print(Path(args.out) / "report.html")

    def run(self, ctx):
        from camelid.eval.compare import run

        return run(ctx)


STAGE = CompareStage()
