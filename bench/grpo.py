"""Critic-free RL throughput (#26): camelid grpo vs TRL GRPOTrainer, camelid rloo vs TRL RLOOTrainer, side by side.

    python bench/grpo.py                                   # tiny profile, 1 + 12 iterations per run, 3 rounds
    python bench/grpo.py --iterations 3 --repeats 1 --sft-steps 40 --rm-steps 10   # a quick look
    python bench/grpo.py --model smol                      # SmolLM2-135M-Instruct (smol profile; long on a CPU)

The four variants train the same policy (bench/ppo.py's scratch registry: a short camelid SFT of the toy base
or SmolLM2 as imported, both reward models trained briefly from it) on the same prompts with the profile's
rollout batch (episodes per iteration), minibatch size, max_new_tokens, temperature 1, one epoch, clip range,
kl_coef as beta, fp32 on CPU, and --num-generations responses per prompt (rollout batch / G prompts):

  camelid grpo / rloo   `camelid ppo` with stages.ppo.advantage=grpo|rloo, samples_per_prompt=G: its recipe's
                        setup() and trainer; Llama 2's combined reward from BOTH reward models; no value model.
  TRL GRPO / RLOO       this venv's GRPOTrainer / RLOOTrainer with a reward callable that scores with BOTH
                        reward models combined by camelid's rule (camelid.reward.combined), run by bench/ppo.py's
                        TRL runner (its RLOO variant's); TRL's defaults otherwise (GRPO: loss_type dapo,
                        scale_rewards group).

Runs alternate (A B C D A B C D ...), each its own process; the first iteration is an untimed warm-up. Reported:
episodes/s, generated tokens/s, time split per iteration, peak memory (the worker's VmHWM), MFU, and
camelid / TRL episodes/s per round for each pair. Appends to bench/RESULTS.md (--no-append: only prints).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import sys
from pathlib import Path

import common

SCRIPT = Path(__file__).resolve()
_spec = importlib.util.spec_from_file_location("bench_ppo", SCRIPT.parent / "ppo.py")
bench_ppo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ppo)  # the workers, the scratch pipeline, the command line
WARMUP, PHASES = bench_ppo.WARMUP, bench_ppo.PHASES

VARIANTS = {"camelid grpo": "camelid-grpo", "TRL GRPO": "trl-grpo", "camelid rloo": "camelid-rloo",
            "TRL RLOO": "trl-rloo"}
PAIRS = {"TRL GRPO": "camelid grpo", "TRL RLOO": "camelid rloo"}  # TRL variant -> the camelid run it is compared to


def _estimator_overrides(a: argparse.Namespace, name: str) -> list[str]:
    return [f"stages.ppo.advantage={name}", f"stages.ppo.samples_per_prompt={a.num_generations}"]


def worker_camelid(a: argparse.Namespace, name: str) -> dict:
    """camelid's recipe setup() and trainer with ``advantage: name`` (no value model), as `camelid ppo` runs them:
    bench/ppo.py's camelid worker with the estimator's overrides."""
    return bench_ppo.worker_camelid(a, _estimator_overrides(a, name))


WORKERS = {"camelid-grpo": lambda a: worker_camelid(a, "grpo"), "camelid-rloo": lambda a: worker_camelid(a, "rloo"),
           "trl-grpo": lambda a: bench_ppo.worker_trl_critic_free(a, "grpo"),
           "trl-rloo": lambda a: bench_ppo.worker_trl_critic_free(a, "rloo")}


def report(results: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for name, runs in results.items():
        split = {k: statistics.median(r["time_split"][k] for r in runs) for k in runs[0]["time_split"]}
        total = sum(split.values())
        base = results.get(PAIRS.get(name, ""))
        ratio = ("-" if base is None else
                 common.spread([b["episodes_per_s"] / r["episodes_per_s"] for b, r in zip(base, runs)]))
        rows.append({
            "variant": name,
            "episodes/s": common.spread([r["episodes_per_s"] for r in runs]),
            "camelid / this": ratio if name in PAIRS else "1",
            "gen tok/s": common.spread([r["gen_tokens_per_s"] for r in runs]),
            "mean len": f"{statistics.median(r['mean_response_tokens'] for r in runs):.1f}",
            "s/iteration: gen / rm / ref / train / other": " / ".join(f"{split[k]:.2f}" for k in PHASES),
            "train share": f"{split['training'] / total:.0%}",
            "peak MB": f"{statistics.median(r['peak_mb'] for r in runs):.0f}",
            "MFU": f"{statistics.median(r['mfu'] for r in runs):.2%}",
        })
    print()
    print(common.markdown_table(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    a = bench_ppo.parse_args(argv, __doc__, VARIANTS, WORKERS, "responses per prompt (G) for all four variants")
    info = common.worker_or_machine(a, functools.partial(bench_ppo.run_worker, workers=WORKERS))
    if info is None:
        return 0

    wanted = {name: w for name, w in VARIANTS.items() if w in (a.only or VARIANTS.values())}
    with bench_ppo.scratch_pipeline(a, wanted, "camelid-bench-grpo-") as variants:
        pc = bench_ppo.load_cfg(a).stages.ppo
        print(f"{a.profile} profile: rollout batch {pc.rollout_batch_size} episodes = "
              f"{pc.rollout_batch_size // a.num_generations} prompts x {a.num_generations}, minibatch "
              f"{pc.minibatch_size}, max_new_tokens {pc.max_new_tokens}; {WARMUP} + {a.iterations} iterations per run, "
              f"{a.repeats} rounds of {len(variants)} runs", flush=True)
        results = common.alternate(variants, SCRIPT, a.repeats, describe=bench_ppo.describe)

    rows = report(results)
    if a.append:
        notes = [
            f"profile {a.profile}; policy = " + ("SmolLM2-135M-Instruct as imported (no SFT)" if a.model == "smol" else
                                                 f"camelid SFT of the toy base for {a.sft_steps} steps") +
            f", RMs {a.rm_steps} steps each from it (scratch registry, bench/ppo.py's); rollout batch "
            f"{pc.rollout_batch_size} episodes per iteration = {pc.rollout_batch_size // a.num_generations} prompts x "
            f"{a.num_generations} generations, minibatch {pc.minibatch_size}, {pc.ppo_epochs} epoch, max_new_tokens "
            f"{pc.max_new_tokens}, temperature {pc.temperature}, beta = kl_coef {pc.kl_coef}, fp32, {WARMUP} untimed + "
            f"{a.iterations} timed iterations per run, {a.repeats} alternating rounds, one process per run",
            "camelid grpo / rloo: `camelid ppo` stages.ppo.advantage=grpo|rloo (no value model), both RMs combined by "
            "Llama 2's rule, reward whitening, KL k3 as a loss term (grpo) or k1 in the sequence reward (rloo). TRL "
            "GRPO / RLOO: this venv's trainers with a reward callable = camelid.reward.combined's scorer (both RMs, "
            "Llama 2's rule); TRL's defaults otherwise",
            "episodes/s = completions trained on per second of the timed iterations; camelid / this = the camelid "
            "run's episodes/s over the TRL run's of the same round (median [min-max]); time split as bench/ppo.py's "
            "(ref = reference forward + TRL's old-logprob forward); peak = the worker's own VmHWM",
        ]
        path = common.append_results(f"Critic-free RL: camelid grpo/rloo vs TRL GRPOTrainer/RLOOTrainer ({a.profile})",
                                     rows, info=info, notes=notes)
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
