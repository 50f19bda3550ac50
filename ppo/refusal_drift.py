"""Why PPO drifts toward refusing (#14, #26), measured: the mean advantage of refusals and of other answers per
prompt type, under the run's own estimator and under a per-prompt baseline of the same rollouts.

The guess on #14: with one sample per prompt, refusals of harmful prompts get the batch's highest whitened
rewards every iteration, the value model does not learn that per prompt, so refusal tokens get positive
advantages everywhere -- borderline and task prompts included. Run GAE with samples_per_prompt >= 2 and every
batch holds both numbers for the same responses: the advantage GAE trained with, and the advantage a per-prompt
baseline would have given (leave-one-out: s_i - mean of the other answers' whitened scores to the same prompt).

    from camelid.ppo import recipe, refusal_drift
    trainer, _ = recipe.setup(ctx)
    recorder = refusal_drift.AdvantageRecorder().attach(trainer)
    trainer.train()
    refusal_drift.refusal_table(recorder.rows)   # {prompt type: {refusal|answer: {run, baseline, n}}}

or `python -m camelid.ppo.refusal_drift --profile smol stages.ppo.samples_per_prompt=4 ...` (prints the table).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass

import torch

from camelid.data.records import labelled_group
from camelid.ppo.advantages import masked_mean, masked_whiten, rloo_advantages


@dataclass
class AdvantageRow:
    """One rollout response: what kind of prompt, whether it refused, and its advantages."""

    iteration: int
    prompt_type: str       # labelled_group or meta.kind (task / harmful / borderline / ordinary), else safety / other
    refusal: bool
    run: float             # the run's advantage, mean over the response's tokens
    first_token: float     # the run's advantage at the first response token, where a refusal starts
    baseline: float | None  # the per-prompt (leave-one-out) advantage of the same response, batch-whitened; None: n = 1


def prompt_type(prompt) -> str:
    """The data's own label (`labelled_group`: harmful / borderline / task, XSTest's included), else the prompt's
    meta.kind (e.g. ordinary), else safety / other by its is_safety tag."""
    kind = labelled_group(prompt) or prompt.meta.get("kind")
    return str(kind) if kind else "safety" if prompt.is_safety else "other"


def advantage_rows(exp, prompts: list, texts: list[str], *, samples_per_prompt: int, iteration: int = 0,
                   is_refusal=None) -> list[AdvantageRow]:
    """Rows of one Experience; ``prompts``/``texts`` in its row order (n consecutive rows per prompt)."""
    if is_refusal is None:
        from camelid.eval.refusal import is_refusal
    mask = exp.action_mask
    run = masked_mean(exp.advantages, mask, dim=1)  # (B,)
    first = exp.advantages[:, 0]  # (B,) every response has at least one token
    baseline = None
    if samples_per_prompt > 1:
        loo = rloo_advantages(exp.scores.double(), samples_per_prompt)  # (B,)
        one = torch.ones(len(loo), 1, dtype=loo.dtype)
        baseline = masked_whiten(loo.unsqueeze(1), one).squeeze(1)  # unit variance over the batch, as GAE's
    return [AdvantageRow(iteration, prompt_type(p), bool(is_refusal(t)), float(run[i]), float(first[i]),
                         None if baseline is None else float(baseline[i]))
            for i, (p, t) in enumerate(zip(prompts, texts))]


def refusal_table(rows: list[AdvantageRow]) -> dict[str, dict[str, dict]]:
    """{prompt type: {"refusal" | "answer": {n, run, first_token, baseline}}}: mean advantages per cell."""
    cells: dict[tuple[str, str], list[AdvantageRow]] = defaultdict(list)
    for r in rows:
        cells[(r.prompt_type, "refusal" if r.refusal else "answer")].append(r)
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for (kind, what), rs in sorted(cells.items()):
        base = [r.baseline for r in rs if r.baseline is not None]
        out[kind][what] = {"n": len(rs), "run": sum(r.run for r in rs) / len(rs),
                           "first_token": sum(r.first_token for r in rs) / len(rs),
                           "baseline": sum(base) / len(base) if base else None}
    return dict(out)


class AdvantageRecorder:
    """Records `AdvantageRow`s of every rollout batch a PPOTrainer makes (wraps its experience maker's make)."""

    def __init__(self, is_refusal=None):
        self.rows: list[AdvantageRow] = []
        self.is_refusal = is_refusal

    def attach(self, trainer) -> AdvantageRecorder:
        maker, inner = trainer.experience, trainer.experience.make
        n = trainer.cfg.samples_per_prompt

        def make(prompts):
            exp, timing = inner(prompts)
            a = exp.num_actions
            texts = [trainer.tokenizer.decode(r[m.bool()], skip_special_tokens=True).strip()
                     for r, m in zip(exp.sequences[:, -a:].cpu(), exp.action_mask.cpu())]
            self.rows += advantage_rows(exp, prompts, texts, samples_per_prompt=n, iteration=trainer.iteration + 1,
                                        is_refusal=self.is_refusal)
            return exp, timing

        maker.make = make
        return self


def format_table(table: dict[str, dict[str, dict]]) -> str:
    """A markdown table of `refusal_table`'s cells."""
    lines = ["| prompt type | answers | n | run's advantage (mean / first token) | per-prompt baseline |",
             "|---|---|---|---|---|"]
    for kind, cells in table.items():
        for what, c in cells.items():
            base = "-" if c["baseline"] is None else f"{c['baseline']:+.3f}"
            lines.append(f"| {kind} | {what} | {c['n']} | {c['run']:+.3f} / {c['first_token']:+.3f} | {base} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train PPO as `camelid ppo --profile P KEY=VALUE...` would (without publishing) and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="pipelines.yaml")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--out", help="also write the rows and the table here (JSON)")
    p.add_argument("overrides", nargs="*", help="key=value settings, as for camelid ppo")
    a = p.parse_args(argv)
    from camelid.config import load_config
    from camelid.ppo import recipe
    from camelid.registry import Registry
    from camelid.stage import context_for
    from camelid.stages import job_for

    with tempfile.TemporaryDirectory(prefix="camelid-refusal-drift-") as runs:  # no checkpoint a later --resume finds
        cfg = load_config(a.config, a.profile, [*a.overrides, f"runs_dir={runs}"])
        ctx = context_for(cfg, Registry(cfg.registry), job_for(cfg, "ppo"))
        trainer, _ = recipe.setup(ctx)
        recorder = AdvantageRecorder().attach(trainer)
        trainer.train()
    table = refusal_table(recorder.rows)
    print(format_table(table))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"table": table, "rows": [asdict(r) for r in recorder.rows]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
