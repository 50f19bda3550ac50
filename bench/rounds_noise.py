"""#16: do reward models trained on clean labels rank the next round's pairs better than on 20%-noisy ones?

    python bench/rounds_noise.py run --start DEMO_REGISTRY --root DIR [--seeds 0 1 2 3] [--base-data false true]
                                     [--train-prompts 512 --train-offset 6000] [--eval-prompts 1024]
    python bench/rounds_noise.py table --root DIR

A paired, controlled version of rounds_experiments.py's noise0 / noise20 runs. One set of answer pairs (round 1:
two answers per new prompt from sft, `--train-prompts` of them) is labelled by one simulated annotator at 0% and at
20% noise (EXPERIMENTS noise0 / noise20) with each annotator seed: for a seed, the two label sets draw the same
random numbers, so they differ only where the 20% annotator flips a preference, moves a strength or mislabels
safety. Both RMs are retrained on each label set as a round retrains them (camelid.rounds.plan.reward_job: from
sft, on the RM's own toy data + the pairs with rounds.base_data=true, on the pairs alone with false) and scored
on the NEXT round's new pairs: `--eval-prompts` new prompts answered by the start registry's round-1 policy
(rs-r1 of a `make demo-rounds` registry), against the toy oracle's preference with its ties left out (the report's
RM-vs-oracle measure; the safety RM under its drop rule). The RM init and training order are the same for every
run, so within a seed only the labels differ.

`table` gives per setting and RM the accuracy per seed at 0% and 20%, their mean and standard deviation over
seeds, and the mean paired difference with two 95% bootstrap intervals: one resamples the evaluation pairs (the
same draw for every run: which pairs were evaluated), the other resamples seeds and pairs together (also the
spread between seeds that the labels' and the training's randomness make).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds_experiments import EXPERIMENTS  # noqa: E402  (bench/ is not a package)

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ("helpfulness", "safety")
NOISE = ("noise0", "noise20")
TRAIN_OFFSET, EVAL_OFFSET = 6000, 7000  # toy ppo prompts the demo's rounds (5000-5383), rs and ppo never use


def config(root: Path, *overrides: str):
    from camelid.config import load_config

    return load_config(REPO / "pipelines.yaml", "tiny", [f"registry={root / 'registry'}",
                                                         f"runs_dir={root / 'runs'}", *overrides])


def eval_set(root: Path, registry, n: int, policy: str):
    """The next round's pairs: ``n`` new prompts answered by ``policy``, labelled without noise (only their
    safety labels are read, by the safety RM's drop rule); with the oracle's preference per pair."""
    from camelid.rounds.cmd import ensure
    from camelid.rounds.plan import label_job, sample_job
    from camelid.rounds.report import oracle_truth, read_pairs, round_prompts

    cfg = config(root, f"rounds.prompt_offset={EVAL_OFFSET - n}", f"rounds.pairs_per_round={n}", *EXPERIMENTS["noise0"])
    answers = ensure(cfg, sample_job(cfg, 2, policy), registry=registry)
    pairs = ensure(cfg, label_job(cfg, 2, answers.ref), registry=registry)
    records = read_pairs(pairs)
    return pairs, records, oracle_truth(records, round_prompts(pairs, registry))


def right_vs_oracle(registry, rm, records, truth, objective: str) -> tuple[list[bool], dict]:
    """Per evaluation pair with an oracle gap (and, for safety, kept by the drop rule): does ``rm`` score the
    oracle's better answer higher? With the report's accuracy_vs_oracle of the same scores (per level)."""
    from camelid.reward.rules import is_unsafe_chosen
    from camelid.reward.scoring import load_reward_model
    from camelid.rounds.report import accuracy_vs_oracle

    keep = [i for i, (p, t) in enumerate(zip(records, truth, strict=True))
            if t is not None and not (objective == "safety" and is_unsafe_chosen(p))]
    model = load_reward_model(rm, registry, device="cpu")
    prompts = [records[i].prompt for i in keep]
    rc = model.score(prompts, [records[i].chosen for i in keep], raw=True)
    rr = model.score(prompts, [records[i].rejected for i in keep], raw=True)
    right = [bool((rc[j] > rr[j]) == truth[i][0]) for j, i in enumerate(keep)]
    return right, accuracy_vs_oracle(rc, rr, [truth[i] for i in keep])


def one_run(root: Path, registry, answers, ev, noise: str, seed: int, base_data: bool) -> dict:
    """Label the training answers at ``noise`` with ``seed``, retrain both RMs as a round does, score them."""
    from camelid.rounds.cmd import ensure
    from camelid.rounds.plan import base_size, label_job, reward_job
    from camelid.rounds.report import label_agreement, oracle_truth, read_pairs, round_prompts

    cfg = config(root, *EXPERIMENTS[noise], f"rounds.annotation.seed={seed}", f"rounds.base_data={str(base_data).lower()}")
    pairs = ensure(cfg, label_job(cfg, 1, answers.ref), registry=registry)
    train = read_pairs(pairs)
    sizes = {o: base_size(getattr(cfg.stages.reward, o).data) for o in OBJECTIVES} if base_data else {}
    out = {"noise": noise, "seed": seed, "base_data": base_data, "pairs": pairs.ref, "n_train": len(train),
           "labels_vs_oracle": label_agreement(oracle_truth(train, round_prompts(pairs, registry))), "rms": {}}
    _, records, truth = ev
    for o in OBJECTIVES:
        t0 = time.perf_counter()
        rm = ensure(cfg, reward_job(cfg, 1, o, [pairs], sizes), registry=registry)
        right, levels = right_vs_oracle(registry, rm, records, truth, o)
        out["rms"][o] = {"ref": rm.ref, "right": right, "accuracy": levels["overall"], "levels": levels["levels"],
                         "heldout": rm.manifest["metrics"].get("eval", {}).get("accuracy", {}).get(o),
                         "seconds": round(time.perf_counter() - t0, 1)}
    return out


def run(args) -> None:
    from camelid.registry import Registry, set_default_root
    from camelid.rounds.cmd import ensure
    from camelid.rounds.plan import sample_job

    root = args.root.resolve()
    if not (root / "registry").exists():
        shutil.copytree(args.start, root / "registry")
    set_default_root(root / "registry")  # where the RMs' `registry:pairs-r1@vN` data resolves (as the CLI sets it)
    registry = Registry(root / "registry")
    if args.train_offset < EVAL_OFFSET + args.eval_prompts and EVAL_OFFSET < args.train_offset + args.train_prompts:
        raise SystemExit(f"training prompts {args.train_offset}..{args.train_offset + args.train_prompts - 1} overlap "
                         f"the evaluation's {EVAL_OFFSET}..{EVAL_OFFSET + args.eval_prompts - 1}: move --train-offset")
    cfg = config(root, f"rounds.prompt_offset={args.train_offset}", f"rounds.pairs_per_round={args.train_prompts}")
    answers = ensure(cfg, sample_job(cfg, 1, "sft"), registry=registry)
    ev = eval_set(root, registry, args.eval_prompts, registry.resolve(args.eval_policy).ref)
    results = root / "results.json"
    done = json.loads(results.read_text()) if results.exists() else {"runs": []}
    done["eval"] = {"pairs": ev[0].ref, "n": len(ev[1]), "oracle_gap": sum(t is not None for t in ev[2]),
                    "policy": args.eval_policy, "train_answers": answers.ref}
    have = {(r["noise"], r["seed"], r["base_data"], r["pairs"]) for r in done["runs"]}
    for base_data in (b == "true" for b in args.base_data):
        for seed in args.seeds:
            for noise in NOISE:
                t0 = time.perf_counter()
                res = one_run(root, registry, answers, ev, noise, seed, base_data)
                if (noise, seed, base_data, res["pairs"]) not in have:
                    done["runs"].append(res)
                results.write_text(json.dumps(done, indent=1))
                print(f"base_data={base_data} seed {seed} {noise}: " + ", ".join(
                    f"{o} {r['accuracy']:.3f}" for o, r in res["rms"].items()) + f" ({time.perf_counter() - t0:.0f}s)",
                    flush=True)


def paired(runs: list[dict], objective: str, draws: int = 2000, rng_seed: int = 0) -> dict:
    """0% and 20% accuracies per seed, and the mean over seeds of (0% - 20%) with two bootstrap intervals: over
    the evaluation pairs (``lo``/``hi``), and over seeds and pairs together (``lo2``/``hi2``: also the spread
    that the labels' and the training's randomness put between seeds)."""
    by = {(r["seed"], r["noise"]): np.array(r["rms"][objective]["right"], dtype=float) for r in runs}
    seeds = sorted({s for s, _ in by if (s, "noise0") in by and (s, "noise20") in by})
    zero, twenty = np.stack([by[s, "noise0"] for s in seeds]), np.stack([by[s, "noise20"] for s in seeds])
    per_seed = zero - twenty                # (seeds, pairs): right at 0% - right at 20%, same pair, same seed
    diff = per_seed.mean(axis=0)            # (pairs,)
    rng = np.random.default_rng(rng_seed)
    n_s, n_p = per_seed.shape
    boot = [diff[rng.integers(0, n_p, n_p)].mean() for _ in range(draws)]
    boot2 = [per_seed[rng.integers(0, n_s, n_s)][:, rng.integers(0, n_p, n_p)].mean() for _ in range(draws)]
    acc0, acc20 = zero.mean(axis=1), twenty.mean(axis=1)
    return {"seeds": seeds, "n": len(diff), "acc0": acc0.tolist(), "acc20": acc20.tolist(),
            "mean0": float(acc0.mean()), "sd0": float(np.std(acc0, ddof=1)) if len(seeds) > 1 else 0.0,
            "mean20": float(acc20.mean()), "sd20": float(np.std(acc20, ddof=1)) if len(seeds) > 1 else 0.0,
            "diff": float(diff.mean()), "lo": float(np.percentile(boot, 2.5)), "hi": float(np.percentile(boot, 97.5)),
            "lo2": float(np.percentile(boot2, 2.5)), "hi2": float(np.percentile(boot2, 97.5)),
            "seeds_0_ahead": int((acc0 > acc20).sum())}


def table(root: Path) -> str:
    done = json.loads((root / "results.json").read_text())
    ev = done["eval"]
    lines = [f"evaluation: {ev['n']} pairs ({ev['pairs']}, answers of {ev['policy']}), {ev['oracle_gap']} with an "
             f"oracle gap; training answers {ev['train_answers']}", "",
             "| RMs' data | RM | eval pairs | 0%: per seed | mean (sd) | 20%: per seed | mean (sd) | 0% - 20% | 95% CI, "
             "pairs | 95% CI, seeds + pairs | seeds with 0% ahead |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for base_data in (True, False):
        runs = [r for r in done["runs"] if r["base_data"] == base_data]
        if not runs:
            continue
        for o in OBJECTIVES:
            p = paired(runs, o)
            lines.append(f"| {'toy data + pairs' if base_data else 'pairs only'} | {o} | {p['n']} | "
                         f"{' / '.join(f'{a:.3f}' for a in p['acc0'])} | {p['mean0']:.3f} ({p['sd0']:.3f}) | "
                         f"{' / '.join(f'{a:.3f}' for a in p['acc20'])} | {p['mean20']:.3f} ({p['sd20']:.3f}) | "
                         f"{p['diff']:+.3f} | [{p['lo']:+.3f}, {p['hi']:+.3f}] | [{p['lo2']:+.3f}, {p['hi2']:+.3f}] | "
                         f"{p['seeds_0_ahead']} of "
                         f"{len(p['seeds'])} |")
    lines += ["", "| RMs' data | noise | training pairs | labels agree with oracle (gap pairs) | held-out help / safety "
              "(mean over seeds) | s per run |", "|---|---|---|---|---|---|"]
    for base_data in (True, False):
        for noise in NOISE:
            runs = [r for r in done["runs"] if r["base_data"] == base_data and r["noise"] == noise]
            if not runs:
                continue
            held = [statistics.mean(r["rms"][o]["heldout"]["overall"] for r in runs) for o in OBJECTIVES]
            agree = statistics.mean(r["labels_vs_oracle"]["agreement"] for r in runs)
            secs = statistics.mean(sum(x["seconds"] for x in r["rms"].values()) for r in runs)
            lines.append(f"| {'toy data + pairs' if base_data else 'pairs only'} | {noise} | {runs[0]['n_train']} | "
                         f"{agree:.3f} (n {runs[0]['labels_vs_oracle']['n']}) | {held[0]:.3f} / {held[1]:.3f} | "
                         f"{secs:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--start", type=Path, required=True, help="a `make demo-rounds` registry (base, sft, rs-r1)")
    r.add_argument("--root", type=Path, required=True, help="folder of the experiment's registry and runs")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    r.add_argument("--base-data", nargs="+", choices=("true", "false"), default=["false", "true"])
    r.add_argument("--train-prompts", type=int, default=512)
    r.add_argument("--train-offset", type=int, default=TRAIN_OFFSET, help="first toy ppo prompt of the training pairs")
    r.add_argument("--eval-prompts", type=int, default=1024)
    r.add_argument("--eval-policy", default="rs-r1", help="the policy the next round samples from")
    t = sub.add_parser("table")
    t.add_argument("--root", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "run":
        run(args)
    else:
        print(table(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
