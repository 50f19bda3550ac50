"""Where an SFT step's time goes: camelid's recipe under torch.profiler, next to a plain-torch ceiling.

    python bench/sft_profile.py --set toy_base.num_layers=16 ...   # same --set overrides as bench/sft.py

1. ceiling: the same model, a dense batch (batch_size x max_length random tokens, no padding), plain
   forward + backward + fused AdamW in a loop: the tokens/s and MFU the hardware gives this model.
2. camelid: the SFT recipe's own trainer for --steps steps; steps 3..7 run under torch.profiler and
   the top operators by self device time and by self CPU time are printed, with the step times.
Not a test and nothing is appended: it is the tool for finding a gap that bench/sft.py shows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import common
import torch


def ceiling(model_path: str, batch: int, length: int, steps: int, device, dtype) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, length), device=device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step = sorted(times[2:])[len(times[2:]) // 2]
    params = sum(p.numel() for p in model.parameters())
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"step_s": step, "tokens_per_s": batch * length / step, "params": params}


def profile_camelid(a, cfg_overrides: list[str]) -> None:
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    from camelid.config import load_config
    from camelid.registry import Registry
    from camelid.sft.recipe import SFTRecipe
    from camelid.stage import context_for
    from camelid.stages import job_for

    cfg = load_config(common.REPO / "pipelines.yaml", a.profile, cfg_overrides)
    recipe = SFTRecipe(context_for(cfg, Registry(a.registry), job_for(cfg, "sft")))
    recipe.setup()
    meter = common.LoopMeter(warmup=2)
    trainer = recipe.trainer
    trainer.data_collator = meter.wrap_collator(trainer.data_collator)
    trainer.add_callback(meter.callback())
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=activities)

    class Step(TrainerCallback):  # profile steps 3..7 (global_step counts finished steps)
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                prof.start()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 7:
                prof.stop()

    trainer.add_callback(Step())
    recipe.train()
    s = meter.summary()
    gaps = [b - a_ for a_, b in zip(meter.step_ends, meter.step_ends[1:])]
    print(f"camelid: {s['tokens_per_s']:,.0f} tok/s, padding {s['padding_fraction']:.1%}, "
          f"slots/step {sum(meter.padded) / len(meter.padded):,.0f}, step times (s): "
          + " ".join(f"{g:.3f}" for g in gaps[:12]), flush=True)
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=18), flush=True)
    if torch.cuda.is_available():
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="tiny")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    from camelid.config import load_config
    from camelid.init_cmd import run_init
    from camelid.registry import Registry

    device = common.bench_device()
    dtype = common.bench_dtype(device)
    with tempfile.TemporaryDirectory(prefix="camelid-sft-profile-") as tmp:
        a.registry = str(Path(tmp) / "registry")
        overrides = [f"registry={a.registry}", f"runs_dir={Path(tmp) / 'runs'}", f"stages.sft.max_steps={a.steps}",
                     "stages.sft.eval_data=null", "stages.sft.eval_prompts=null", "toy_base.eval_prompts=0",
                     f"stages.sft.save_steps={a.steps + 1}", *a.set]
        cfg = load_config(common.REPO / "pipelines.yaml", a.profile, overrides)
        sc = cfg.stages.sft
        cfg = load_config(common.REPO / "pipelines.yaml", a.profile,
                          [*overrides, f"stages.sft.data.n={a.steps * sc.batch_size}"])
        base = run_init(cfg, Registry(a.registry))
        flops = common.matmul_flops(device, dtype)
        c = ceiling(str(base.model_path), sc.batch_size, sc.max_length, 8, device, dtype)
        print(f"machine: {common.machine_line(common.machine())}\nmatmul: {flops / 1e12:.1f} TFLOP/s ({dtype})\n"
              f"ceiling: plain torch, dense {sc.batch_size}x{sc.max_length}: {c['step_s']:.3f} s/step, "
              f"{c['tokens_per_s']:,.0f} tok/s, MFU {common.mfu(c['params'], c['tokens_per_s'], flops):.1%}",
              flush=True)
        profile_camelid(a, [*overrides, f"stages.sft.data.n={a.steps * sc.batch_size}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
