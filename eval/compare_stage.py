"""The compare stage's declaration and CLI: `camelid compare REF REF [REF ...]`.

Without REFs it compares the config's `stages.compare.checkpoints` (what `camelid run` does).
Under `accelerate launch` (e.g. `--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no
--dynamo_backend no -m camelid.cli compare ...`) the processes split the prompts; one report is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from camelid.errors import ConfigError
from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

if TYPE_CHECKING:
    from camelid.data.spec import DataSpec
    from camelid.eval.config import CompareConfig


@dataclass(frozen=True)
class CompareOptions:
    """Where `camelid compare` also writes its report (command-line options, not settings: not hashed)."""

    out_dir: str | None = None       # --out: copy report.html, report.json and answers.jsonl here
    export: str | None = None        # --export-pairs: the {prompt, responses} JSONL for the annotation app


def parse_prompts(text: str, n: int | None, split: str | None) -> DataSpec:
    """`toy` | `toy:SPLIT` | PATH | FORMAT:PATH | hf:ID -> DataSpec (`camelid data`'s syntax, plus toy:SPLIT)."""
    from camelid.data.spec import DataSpec

    if text == "toy" or text.startswith("toy:"):
        return DataSpec(format="toy", split=text[4:] or split or "eval", n=n or 200)
    if text == "real" or text.startswith("real:"):  # camelid's held-out real-wording split (camelid.data.realworld)
        return DataSpec(format="real", split=text[5:] or split or "eval", n=n)
    if text == "knowledge":
        return DataSpec(format="knowledge", n=n)
    from camelid.data.cli import parse_spec

    return parse_spec(text, split=split, n=n)  # the data CLI's SPEC syntax and its errors


def headline_table(art) -> str:
    """Per checkpoint: win rate against the first one (the reference), harmful refusal, over-refusal and task
    accuracy (toy world), from the numbers the report already holds (manifest metrics, report.json)."""
    import json

    metrics = art.manifest.get("metrics", {})
    inputs = art.manifest.get("inputs", {})
    ordered = [inputs[f"checkpoint{i}"].get("ref") for i in range(len(inputs)) if f"checkpoint{i}" in inputs]
    refs = [r for r in ordered if r in metrics.get("checkpoints", {})]  # compare's order: the first is the reference
    refs += [r for r in metrics.get("checkpoints", {}) if r not in refs]
    try:
        oracle = {c["ref"]: c.get("oracle") or {} for c in json.loads((art.path / "report.json").read_text())
                  ["checkpoints"]}
    except (OSError, ValueError, KeyError, TypeError):
        oracle = {}
    judges = {j for p in metrics.get("pairs", []) for j in p.get("win_rate", {})}
    judge = next((j for j in ("combined", "oracle", "helpfulness") if j in judges), None)

    def win_rate(ref: str) -> str:
        for p in metrics.get("pairs", []):
            w = p.get("win_rate", {}).get(judge, {}).get("value")
            if w is not None and (p["a"], p["b"]) == (refs[0], ref):
                return f"{1 - w:.2f}"  # the pair's rate is A's (the reference's); ties count half either way
            if w is not None and (p["a"], p["b"]) == (ref, refs[0]):
                return f"{w:.2f}"
        return "-"

    def rate(value) -> str:
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"

    head = (f"win rate vs {refs[0] if refs else '-'} ({judge or 'no judge'})", "harmful refused", "over-refusal",
            "task accuracy")
    rows = [(ref, "(reference)" if i == 0 else win_rate(ref), rate(metrics["checkpoints"][ref].get(
                 "harmful_refusal_rate")), rate(metrics["checkpoints"][ref].get("over_refusal_rate")),
             rate(oracle.get(ref, {}).get("task_accuracy"))) for i, ref in enumerate(refs)]
    width = max([len("checkpoint"), *(len(r) for r in refs)])
    lines = [f"{'checkpoint':<{width}}  " + "  ".join(head)]
    lines += [f"{r[0]:<{width}}  " + "  ".join(f"{v:>{len(h)}}" for v, h in zip(r[1:], head)) for r in rows]
    return "\n".join(lines)


class CompareStage(Stage):
    name = "compare"
    help = "Compare chat checkpoints: win rates, safety, HTML report"
    description = ("Compare chat checkpoints: win/tie/loss with bootstrap CIs, Bradley-Terry ratings, safety and "
                   "over-refusal rates, an HTML report (published as report/vN).")
    config_model = "camelid.eval.config:CompareConfig"
    shared = ("safety_threshold",)
    job_specs = (JobSpec("compare", kind="report", recipe="camelid.eval.compare:CompareRecipe"),)

    def job(self, cfg, c: CompareConfig, options: CompareOptions | None = None):
        """The comparison of section ``c`` (stages.compare, or a round's copy)."""
        policies = policy_kinds()
        inputs = {f"checkpoint{i}": ref for i, ref in enumerate(c.checkpoints)}
        kinds = {role: policies for role in inputs}
        for role, kind in (("reward_helpfulness", ("reward",)), ("reward_safety", ("reward",)),
                           ("reference", policies)):
            if getattr(c, role):
                inputs[role], kinds[role] = getattr(c, role), kind
        return self.make_job(cfg, c, inputs=inputs, input_kinds=kinds, options=options or CompareOptions())

    def jobs(self, cfg):
        return [self.job(cfg, cfg.stages.compare)]

    def add_arguments(self, p) -> None:
        p.add_argument("--ckpt", dest="refs", action="append", default=[], metavar="REF",
                       help="a checkpoint to compare (registry ref, path or hf:id); or list them as --ckpt A --ckpt B")
        p.add_argument("--prompts", metavar="SPEC",
                       help="held-out prompts: toy (default: toy eval split), toy:SPLIT, a file, FORMAT:PATH "
                            "(e.g. mt-bench:question.jsonl) or hf:ID")
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=SPEC",
                       help="also answer this prompt set and report refusal, over-refusal and knowledge on it "
                            "(repeatable; SPEC as for --prompts, plus real[:SPLIT] and knowledge), e.g. "
                            "--set xstest=xstest:xstest_prompts.csv")
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
        if args.sets:
            sets = dict(cfg.stages.compare.sets)
            for item in args.sets:
                name, sep, spec = item.partition("=")
                if not sep or not name.strip() or not spec.strip():
                    raise ConfigError(f"--set {item!r}: write NAME=SPEC, e.g. --set xstest=xstest:prompts.csv")
                sets[name.strip()] = parse_prompts(spec.strip(), None, None)
            update["sets"] = sets
        if args.reference:
            update["reference"] = args.reference
        if args.no_reward_models:
            update["reward_helpfulness"] = update["reward_safety"] = None
        section = cfg.stages.compare
        if update:
            section = section.model_validate({**section.model_dump(), **update})
        return [self.job(cfg, section, CompareOptions(out_dir=args.out, export=args.export_pairs))]

    def report(self, art, args) -> None:
        print(art.ref)
        print(art.path / "report.html")
        if args.out:
            print(Path(args.out) / "report.html")
        print(headline_table(art))
        from camelid.eval.compare_extras import headline_lines

        for line in headline_lines(art):  # exact match and lm-eval results, when there are any
            print(line)


STAGE = CompareStage()
