"""Peak memory of the log-prob / loss computations on a real vocabulary: full logits vs chunked LM heads (#18).

    python bench/memory.py --model /work/bench-reg/smollm2/v1/model      # SmolLM2-135M, 49,152-token vocab
    python bench/memory.py --model PATH --batch 8 --prompt 96 --response 64 --no-append

Each measurement is its own process: load the model (fp32, CPU), build one batch of ``batch`` rows of
``prompt`` + ``response`` real tokens, reset the kernel's peak-RSS mark (/proc/self/clear_refs), run the job
once (after a 4-token warm-up forward that pages the memory-mapped weights in), and report VmHWM - VmRSS
before the job: the extra resident memory the job needed at its peak. glibc's
mmap threshold is pinned so large tensors are returned to the system when freed (no allocator slack).

  reference      log pi_ref of the response tokens without gradients (the experience's reference forward)
  training       the policy's log-probs and entropy with gradients, then backward (one PPO policy step's
                 forward + backward on the same batch; no optimizer state)

  sft            SFT's loss on the response tokens (the prompt's labels are -100), then backward

  padded         reference / training: `sequence_logprobs` / `action_logits`, the model's (B, T, V) logits,
                 sliced to the responses; sft: the model's own loss from its full logits (`labels=`)
  packed         reference / training: `action_logprobs` on `pack_rows`: hidden states, then the LM head on
                 response tokens only, LOGPROB_CHUNK_BYTES of logits at a time (recomputed in the backward pass
                 when chunked); sft: TRL's fused LM head (`trl.trainer.utils.add_fused_lm_head`, what
                 SFTTrainer and so camelid sft train through) over the labelled positions only, which camelid
                 turns on for CPUs (`camelid.sft.batching.score_labelled_positions_only`)
  trl            sft only: TRL's fused LM head as it ships, which off Triton devices scores every position
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import common
import torch

SCRIPT = Path(__file__).resolve()
JOBS = ("reference", "training", "sft")
PATHS = {"reference": ("padded", "packed"), "training": ("padded", "packed"), "sft": ("padded", "trl", "packed")}


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2 ** 10  # kB -> MB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _batch(a: argparse.Namespace, vocab: int):
    """Left-padded layout as the rollout makes it: every row has prompt + response real tokens (no padding)."""
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(10, vocab, (a.batch, a.prompt + a.response), generator=g)
    attn = torch.ones_like(seq)
    return seq, attn, torch.ones(a.batch, a.response, dtype=torch.long)


def _job(model, path: str, job: str, seq, attn, amask) -> None:
    from camelid.ppo.losses import entropy_from_logits
    from camelid.ppo.rollout import action_logits, action_logprobs, gather_logprobs, pack_rows

    a = amask.shape[1]
    if job == "sft":
        labels = seq.masked_fill(torch.arange(seq.shape[1]) < seq.shape[1] - a, -100)
        if path == "padded":
            loss = model(input_ids=seq, labels=labels, use_cache=False).loss
        else:
            out = model(input_ids=seq, labels=labels, use_cache=False, fused_lm_head=True)
            loss = -out.log_probs.sum() / out.label_mask.sum()
        loss.backward()
        return
    with torch.set_grad_enabled(job == "training"):
        if path == "padded":
            logits = action_logits(model, seq, attn, a)
            lp = gather_logprobs(logits, seq[:, -a:])
            with torch.no_grad():
                ent = entropy_from_logits(logits)
        else:
            lp, ent = action_logprobs(model, pack_rows(seq, attn, a), seq[:, -a:], amask, entropy=job == "training")
        if job == "training":
            (-(lp * amask).sum() / amask.sum()).backward()
    del lp, ent


def run_worker(a: argparse.Namespace) -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    model.train(a.job != "reference")
    model.config.use_cache = False
    if a.job == "sft" and a.path != "padded":
        from trl.trainer.utils import add_fused_lm_head

        from camelid.sft.batching import score_labelled_positions_only

        add_fused_lm_head(model)
        if a.path == "packed":
            score_labelled_positions_only()
    seq, attn, amask = _batch(a, model.config.vocab_size)
    with torch.no_grad():  # page in every weight (safetensors are memory-mapped) and warm up, on 4 tokens
        model(input_ids=seq[:1, :4], use_cache=False)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status("VmRSS")
    t0 = time.perf_counter()
    _job(model, a.path, a.job, seq, attn, amask)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - before
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    _job(model, a.path, a.job, seq, attn, amask)  # a second, timed-only pass (the first one pays warm-up)
    common.emit({"extra_peak_mb": peak, "seconds_first": seconds, "seconds": time.perf_counter() - t0,
                 "params": sum(p.numel() for p in model.parameters()), "vocab": model.config.vocab_size})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a causal LM folder (e.g. the registry's smollm2/v1/model)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt", type=int, default=96, help="prompt tokens per row")
    p.add_argument("--response", type=int, default=64, help="response tokens per row")
    p.add_argument("--repeats", type=int, default=1, help="rounds of alternating runs")
    p.add_argument("--no-append", dest="append", action="store_false", help="do not append to bench/RESULTS.md")
    common.add_worker_args(p, workers=("memory",), strings=("--path", "--job"))
    a = p.parse_args(argv)
    info = common.worker_or_machine(a, run_worker)
    if info is None:
        return 0
    shared = ["--worker", "memory", "--model", a.model, "--batch", str(a.batch), "--prompt", str(a.prompt),
              "--response", str(a.response)]
    variants = {f"{job}, {path}": [*shared, "--job", job, "--path", path] for job in JOBS for path in PATHS[job]}
    env = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}  # freed tensors leave the RSS
    results = common.alternate(variants, SCRIPT, a.repeats, envs=dict.fromkeys(variants, env),
                               describe=lambda r: f"extra peak {r['extra_peak_mb']:.0f} MB, {r['seconds']:.1f} s")
    vocab = results[next(iter(variants))][0]["vocab"]
    logits_mb = a.batch * (a.prompt + a.response) * vocab * 4 / 2 ** 20
    rows = []
    for job in JOBS:
        base = results[f"{job}, padded"]
        for path in PATHS[job]:
            runs = results[f"{job}, {path}"]
            peak = statistics.median(r["extra_peak_mb"] for r in runs)
            rows.append({"job": job, "path": path, "extra peak MB": f"{peak:.0f}",
                         "vs padded": f"{peak / statistics.median(r['extra_peak_mb'] for r in base):.2f}",
                         "seconds (2nd pass)": common.spread([r["seconds"] for r in runs]),
                         "time vs padded": common.spread(common.ratios(runs, base, "seconds"))})
    print()
    print(common.markdown_table(rows))
    if a.append:
        notes = [f"model {a.model} ({results[next(iter(variants))][0]['params'] / 1e6:.1f}M parameters, vocab "
                 f"{vocab:,}), fp32, batch {a.batch} x ({a.prompt} prompt + {a.response} response) tokens, every "
                 f"token real; one full (B, T, V) fp32 logits tensor = {logits_mb:.0f} MB",
                 "extra peak = VmHWM - VmRSS before the job, in a fresh process per measurement (peak reset through "
                 "/proc/self/clear_refs; glibc mmap threshold pinned at 64 KiB so freed tensors leave the RSS); the "
                 "model's own weights are not counted (paged in by a 4-token forward first); training and sft include "
                 "the 538 MB of fp32 gradients",
                 "reference = response log-probs without gradients; training = log-probs + entropy with gradients "
                 "and the backward pass (no optimizer); padded = full logits then slice; packed = hidden states, "
                 "LM head on response tokens only, in chunks (ppo.rollout.LOGPROB_CHUNK_BYTES), recomputed in "
                 "backward when chunked; sft = the loss on the response tokens + backward: padded = the model's "
                 "loss from full logits, trl = TRL's fused LM head as it ships (every position scored off Triton devices), "
                 "packed = the same head over labelled positions only (what camelid sft runs on CPU)",
                 f"time = seconds of a second pass in the same process; {a.repeats} round(s)"]
        path = common.append_results("Memory: PPO log-probs and SFT loss on a real vocabulary, full vs chunked logits", rows,
                                     info=info, notes=notes)
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
