"""`camelid compare` as a stage: answer held-out prompts with N checkpoints, judge, report, publish.

    setup   the stage driver resolves checkpoints, reward models and reference; load the prompts
    answer  every checkpoint answers every prompt with the same sampling settings and seed (cached)
    judge   helpfulness RM, safety RM, Llama 2's combined reward and, on the toy world, the oracle
            (eval/compare_judge.py)
    report  pairwise win/tie/loss with bootstrap CIs, Bradley-Terry ratings, safety violations, refusal on
            harmful prompts and over-refusal on benign-but-scary ones (the oracle on the toy world, else the
            string-match detector camelid.eval.refusal), lengths in words and tokens, length-controlled win
            rates, KL to a reference, task accuracy per family (toy oracle) and its A - B per pair,
            side-by-side examples (eval/compare_summary.py)
    publish report.html + report.json + answers.jsonl as report/vN

Under `accelerate launch` / torchrun each process answers and scores a contiguous share of the prompts
(the model work, eval/share.py); the shares are gathered back in prompt order and the main process
reports and publishes. With greedy decoding the report equals the one-process report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from camelid.data.load import LoadResult, load_records
from camelid.errors import ConfigError
from camelid.eval.compare_extras import add_extras
from camelid.eval.compare_judge import CheckpointResult, judge_checkpoints
from camelid.eval.compare_summary import export_pairs, headline, per_prompt_rows, summarize
from camelid.eval.generations import GenerationCache
from camelid.eval.prompt_sets import answer_sets, table_lines
from camelid.eval.prompt_sets import headline as sets_headline
from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.stage import Recipe, StageContext

log = get_logger("compare")


def load_prompts(ctx: StageContext) -> LoadResult:
    """The prompts every checkpoint answers; refuses a checkpoint listed twice."""
    cc = ctx.section
    refs = [a.ref for role, a in ctx.inputs.items() if role.startswith("checkpoint")]
    dupes = sorted({r for r in refs if refs.count(r) > 1})
    if dupes:
        raise ConfigError(f"stages.compare.checkpoints names the same checkpoint twice ({', '.join(dupes)}); "
                          "list each once")
    prompts = load_records(cc.prompts, "prompts")
    log.info("%d prompts from %s; checkpoints: %s", prompts.kept, prompts.name, ", ".join(refs))
    return prompts


class CompareRecipe(Recipe):
    """Compare stages.compare.checkpoints: setup (the prompts) -> evaluate (answer and judge; nothing trains) ->
    publish report/vN on the main process (and copy / export it)."""

    cache: GenerationCache | None = None  # where answers are cached (None: the default cache folder)

    def setup(self) -> None:
        log.info("compare on %d process(es)", self.ctx.state.num_processes)
        self.prompts = load_prompts(self.ctx)

    def evaluate(self) -> None:
        ctx, cc, device = self.ctx, self.ctx.section, self.ctx.job.runtime.device
        self.results = judge_checkpoints(cc, ctx.registry, ctx.inputs, self.prompts,
                                         threshold=ctx.job.shared["safety_threshold"], device=device,
                                         cache=self.cache, state=ctx.state)
        self.sets = answer_sets(cc, ctx.inputs, ctx.registry, device=device, cache=self.cache, state=ctx.state)

    def publish(self) -> Artifact | None:
        ctx, prompts, results = self.ctx, self.prompts, self.results
        if not ctx.is_main:
            return None
        art = publish_report(ctx, prompts, results, self.sets)
        for line in table_lines(self.sets):
            log.info("%s", line)
        out_dir, export = ctx.job.options.out_dir, ctx.job.options.export
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            for name in ("report.html", "report.json", "answers.jsonl"):
                shutil.copy2(art.path / name, out / name)
        if export is not None:
            n = export_pairs(Path(export), prompts, results)
            log.info("wrote %d prompts with answers to %s (for `camelid annotate import`)", n, export)
        log.info("report: %s", art.path / "report.html")
        return art


def publish_report(ctx: StageContext, prompts: LoadResult, results: list[CheckpointResult],
                   sets: dict | None = None) -> Artifact:
    """Work out the numbers and publish report.html + report.json + answers.jsonl (+ set_answers.jsonl) as
    report/vN."""
    from camelid.eval.report import render_html

    reference = ctx.inputs["reference"].ref if "reference" in ctx.inputs else None
    numbers = summarize(ctx.section, prompts, results, reference)
    add_extras(numbers, prompts, results, ctx.registry, ctx.inputs)  # exact match, lm-eval results (#28)
    # each set's per-prompt rows go to set_answers.jsonl, the rest to report.json; the caller's dicts stay whole
    set_rows = [{"set": name, **row} for name, s in (sets or {}).items() for row in s.get("rows", [])]
    sets = {name: {k: v for k, v in s.items() if k != "rows"} for name, s in (sets or {}).items()}
    if sets:
        numbers["sets"] = sets
    rows = per_prompt_rows(prompts, results)
    html = render_html(numbers)
    metrics = headline(numbers)
    if numbers.get("benchmarks"):
        metrics["benchmarks"] = numbers["benchmarks"]
    if sets:
        metrics["sets"] = sets_headline(sets)
    fingerprints = {"prompts": prompts.fingerprint, **{f"set:{n}": s["prompts"]["fingerprint"] for n, s in sets.items()}}
    with ctx.publish(data_fingerprints=fingerprints, metrics=metrics) as pub:
        if set_rows:
            with open(pub.dir / "set_answers.jsonl", "w", encoding="utf-8") as f:
                for row in set_rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        (pub.dir / "report.html").write_text(html, encoding="utf-8")
        (pub.dir / "report.json").write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n")
        with open(pub.dir / "answers.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return pub.artifact
