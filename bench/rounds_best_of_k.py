"""Best-of-K per family, from the sampling checkpoints of finished rounds (rs-sample-r<r> run folders).

    python bench/rounds_best_of_k.py --registry REGISTRY --runs RUNS_DIR [--rounds 3]

rs-sample publishes this view itself (metrics.oracle) since #16's report asked for it; this reads it back
for runs made before, from the every-answer checkpoints the run folders keep: per round and family, the
oracle's accuracy of one sample (k = 1), of the best of 2 and of K (some sample is right), and of the answer
the round's reward models picked. A pick far below best-of-K means the RMs cannot tell the right answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def rows_of(run_dir: Path) -> list[dict]:
    """Every batch's rows of a sampling run folder, in prompt order."""
    from camelid.rs.recipe import BATCH_FILE, CHECKPOINT_PREFIX

    batches = sorted(run_dir.glob(f"{CHECKPOINT_PREFIX}*/{BATCH_FILE}"),
                     key=lambda p: int(p.parent.name.removeprefix(CHECKPOINT_PREFIX)))
    return sorted((row for b in batches for row in json.loads(b.read_text())), key=lambda r: r["index"])


def round_view(registry, runs: Path, r: int) -> dict | None:
    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec
    from camelid.rs.recipe import oracle_view
    from camelid.rs.sampling import select

    art = registry.resolve(f"rs-sample-r{r}", verify=False)
    if art.manifest["metrics"].get("oracle"):
        return art.manifest["metrics"]["oracle"]
    prompts = load_records(DataSpec.model_validate(art.manifest["config"]["prompts"]), "prompts").records
    folders = [d for d in (runs / f"rs-sample-r{r}").iterdir() if d.is_dir()]
    rows = max((rows_of(d) for d in folders), key=len)
    if len(rows) != art.manifest["metrics"]["selection"]["prompts"]:
        raise SystemExit(f"rs-sample-r{r}: {len(rows)} rows in {runs}, the artifact has "
                         f"{art.manifest['metrics']['selection']['prompts']} prompts")
    chosen = select(np.array([row["rc"] for row in rows]), [row["answers"] for row in rows])
    return oracle_view(prompts, rows, chosen.index)


def table(views: dict[int, dict]) -> str:
    lines = ["| round | family | prompts | oracle acc., k = 1 | k = 2 | k = K (some sample right) | RM pick |",
             "|---|---|---|---|---|---|---|"]
    for r, view in views.items():
        for fam, v in [("all", view["all"]), *view["per_family"].items()]:
            curve = dict((k, x) for k, x in v["k_curve"])
            k_max = max(curve)
            lines.append(f"| {r} | {fam} | {v['n']} | {curve[1]:.2f} | {curve.get(2, curve[1]):.2f} | "
                         f"{curve[k_max]:.2f} (K={k_max}) | {v['selected']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from camelid.registry import Registry

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    registry = Registry(args.registry)
    views = {r: round_view(registry, args.runs, r) for r in range(1, args.rounds + 1)}
    print(table(views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
