"""#16's comparisons of `camelid round` runs: RS vs PPO vs RS+PPO on one sample budget, 0% vs 20% label noise.

    python bench/rounds_experiments.py run NAME --start REGISTRY --root DIR   # one experiment: 3 tiny rounds
    python bench/rounds_experiments.py table --root DIR NAME [NAME ...]        # markdown tables of their reports

`run` gives each experiment its own registry and runs folder (DIR/NAME/registry, DIR/NAME/runs), copied from
the starting registry (a `make demo-rounds` one: base, sft and its rounds). Jobs whose config and inputs match a
copied artifact are up to date, so an experiment that differs from the demo only after round 1's RMs (the policy
update) reuses its round-1 pairs and RMs; the report's job times then are the demo's for those jobs.

Sample budget: policy samples per round that the update learns from. rs: 256 prompts x k 4 = 1024; ppo: 32
iterations x 32 rollouts = 1024; rs+ppo: 128 x 4 + 16 x 32 = 1024; schedule (the tiny profile's default): rs in
rounds 1-2, rs then 64 x 32 PPO rollouts in round 3. The noise runs use rs in every round, as measured.
Label noise runs have one simulated annotator, so flip 0.2 means a label flips with probability 0.2 (three
voting annotators would cut it to about 0.10).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMELID = REPO / ".venv" / "bin" / "camelid"

EXPERIMENTS: dict[str, list[str]] = {
    "rs": ["rounds.policy_update=rs"],
    "ppo": ["rounds.policy_update=ppo", "rounds.overrides.ppo.iterations=32"],
    "rs+ppo": ["rounds.policy_update=rs+ppo", "rounds.overrides.rs.prompts.n=128", "rounds.overrides.ppo.iterations=16"],
    # Llama 2's schedule, the demo's default since #16's measurement: rs, rs, then PPO on top of rs in round 3.
    "schedule": ["rounds.policy_update=[rs,rs,rs+ppo]", "rounds.overrides.ppo.iterations=64"],
    "noise0": ["rounds.policy_update=rs", "rounds.annotation.annotators=1", "rounds.annotation.flip=0", "rounds.annotation.jitter=0",
               "rounds.annotation.safety_flip=0"],
    "noise20": ["rounds.policy_update=rs", "rounds.annotation.annotators=1", "rounds.annotation.flip=0.2", "rounds.annotation.jitter=0.2",
                "rounds.annotation.safety_flip=0.2"],
}
# The same two without the RMs' own toy data (rounds.base_data=false): the rounds' pairs are all an RM learns
# from, so their label noise is not diluted by 3,000 clean pairs.
EXPERIMENTS["noise0-pairs-only"] = [*EXPERIMENTS["noise0"], "rounds.base_data=false"]
EXPERIMENTS["noise20-pairs-only"] = [*EXPERIMENTS["noise20"], "rounds.base_data=false"]
BUDGET = {"rs": "256 x 4", "ppo": "32 x 32", "rs+ppo": "128 x 4 + 16 x 32", "schedule": "256 x 4 (+ 64 x 32 in round 3)"}


def run(name: str, start: Path, root: Path, extra: list[str]) -> None:
    """Copy ``start`` to root/name/registry and run `camelid round --profile tiny` with the experiment's settings."""
    here = root / name
    if not (here / "registry").exists():
        shutil.copytree(start, here / "registry")
    argv = [str(CAMELID), "round", "--profile", "tiny", "--registry", str(here / "registry"),
            f"runs_dir={here / 'runs'}", *EXPERIMENTS[name], *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    with open(here / "round.log", "w") as log:
        print(" ".join(argv), file=log, flush=True)
        rc = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    (here / "wall.json").write_text(json.dumps({"seconds": round(wall, 1), "rc": rc, "load": os.getloadavg()}))
    print(f"{name}: rc {rc} in {wall:.0f}s (log {here / 'round.log'})")
    if rc:
        sys.exit(rc)


def report(root: Path, name: str) -> dict:
    from camelid.registry import Registry

    art = Registry(root / name / "registry").resolve("rounds-report", verify=False)  # the latest
    return json.loads((art.path / "report.json").read_text())


def _f(x, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _rm(row: dict, objective: str, key: str | None = None) -> str:
    acc = row.get("rm_accuracy_on_new_pairs", {}).get(objective)
    if acc is None:
        return ""
    return _f((acc[key] if key else acc)["overall"])


def _win(versus: dict | None) -> str:
    if not versus:
        return ""
    w = versus["win_rate"]
    return f"{w['value']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}]"


def table(root: Path, names: list[str]) -> str:
    """One row per experiment and round: oracle numbers (comparable across experiments: the same 100 held-out
    prompts and sampling seed), the experiment's own combined reward and RMs, and job seconds."""
    head = ("| run | round | policy | task acc. | harmful refused | over-refusal | oracle quality | combined reward (own RMs) | "
            "labels = oracle | prev. RMs on new pairs vs labels (help / safety) | vs oracle (help / safety) | s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    wins = ["| run | sample budget / round | V_last vs V1, combined | V_last vs V1, oracle | V_last vs start, combined "
            "| V_last vs start, oracle | rounds' seconds |", "|---|---|---|---|---|---|---|"]
    for name in names:
        rep = report(root, name)
        for row in rep["per_round"]:
            labels = row.get("pairs", {}).get("labels_vs_oracle", {}).get("agreement")
            lines.append(f"| {name} | {row['round']} | {row['policy']} | {_f(row.get('task_accuracy'))} | "
                         f"{_f(row['harmful_refusal'])} | {_f(row['over_refusal'])} | {_f(row['oracle_quality'])} | "
                         f"{_f(row['combined_reward'])} | "
                         f"{_f(labels)} | {_rm(row, 'helpfulness')} / {_rm(row, 'safety')} | "
                         f"{_rm(row, 'helpfulness', 'vs_oracle')} / {_rm(row, 'safety', 'vs_oracle')} | "
                         f"{_f(row.get('seconds', {}).get('total'), 0)} |")
        first, start = rep.get("last_vs_first", {}), rep.get("last_vs_start", {})
        wins.append(f"| {name} | {BUDGET.get(name, BUDGET['rs'])} | {_win(first.get('combined'))} | "
                    f"{_win(first.get('oracle'))} | {_win(start.get('combined'))} | {_win(start.get('oracle'))} | "
                    f"{_f(rep.get('seconds_total'), 0)} |")
    return "\n".join(lines) + "\n\n" + "\n".join(wins) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name", choices=sorted(EXPERIMENTS))
    r.add_argument("--start", type=Path, required=True, help="registry holding base and sft (a demo-rounds one)")
    r.add_argument("--root", type=Path, required=True, help="folder of the experiments' registries and runs")
    r.add_argument("overrides", nargs="*", help="more key=value overrides")
    t = sub.add_parser("table")
    t.add_argument("--root", type=Path, required=True)
    t.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "run":
        run(args.name, args.start, args.root, args.overrides)
    else:
        print(table(args.root, args.names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
