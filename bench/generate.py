"""Generation speed of `camelid compare`'s answering (camelid.models.generate) per batch size (#18).

    python bench/generate.py --model-path /work/bench-reg/smollm2/v1/model        # SmolLM2, toy eval prompts
    python bench/generate.py --model-path PATH --prompts 32 --batch-sizes 1,8,32 --no-append

Each batch size is its own process (fresh model load, same prompts, greedy as compare answers); the runs
alternate over rounds. Reported: prompts/s and generated tokens/s of the whole answering call (prompt
rendering, batching by length, the KV-cache decoding, decoding to text), and peak memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import common
import torch

SCRIPT = Path(__file__).resolve()


def run_worker(a: argparse.Namespace) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from camelid.data.toyworld import ToyWorld
    from camelid.models import generate

    model = AutoModelForCausalLM.from_pretrained(a.model_path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(a.model_path)
    prompts = [p.messages for p in ToyWorld(0).prompts(n=a.prompts, split="eval")]
    generate(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up: first-call setup
    t0 = time.perf_counter()
    answers = generate(model, tokenizer, prompts, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size)
    seconds = time.perf_counter() - t0
    tokens = sum(len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"])
    common.emit({"prompts_per_s": len(prompts) / seconds, "tokens_per_s": tokens / seconds, "seconds": seconds,
                 "mean_answer_tokens": tokens / len(prompts), "peak_mb": common.peak_rss_mb()})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", required=True, help="a causal LM folder (e.g. the registry's smollm2/v1/model)")
    p.add_argument("--prompts", type=int, default=32, help="toy eval prompts to answer")
    p.add_argument("--max-new-tokens", type=int, default=48, help="as the smol profile's compare")
    p.add_argument("--batch-sizes", default="1,4,8,16,32")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-append", dest="append", action="store_false", help="do not append to bench/RESULTS.md")
    common.add_worker_args(p, workers=("generate",), ints=("--batch-size",))
    a = p.parse_args(argv)
    info = common.worker_or_machine(a, run_worker)
    if info is None:
        return 0
    shared = ["--worker", "generate", "--model-path", a.model_path, "--prompts", str(a.prompts),
              "--max-new-tokens", str(a.max_new_tokens)]
    sizes = [int(x) for x in a.batch_sizes.split(",")]
    variants = {f"batch {b}": [*shared, "--batch-size", str(b)] for b in sizes}
    results = common.alternate(variants, SCRIPT, a.repeats, describe=lambda r: (
        f"{r['prompts_per_s']:.2f} prompts/s {r['tokens_per_s']:.1f} tok/s ({r['seconds']:.0f} s)"))
    base = results[f"batch {sizes[0]}"]
    rows = [{"batch size": name.removeprefix("batch "),
             "prompts/s": common.spread([r["prompts_per_s"] for r in runs]),
             "vs batch " + str(sizes[0]): common.spread(common.ratios(runs, base, "prompts_per_s")),
             "answer tok/s": common.spread([r["tokens_per_s"] for r in runs]),
             "mean answer tokens": f"{statistics.median(r['mean_answer_tokens'] for r in runs):.1f}",
             "peak MB": f"{statistics.median(r['peak_mb'] for r in runs):.0f}"} for name, runs in results.items()]
    print()
    print(common.markdown_table(rows))
    if a.append:
        notes = [f"model {a.model_path}, fp32; {a.prompts} toy eval prompts, greedy, max_new_tokens {a.max_new_tokens}, "
                 "camelid.models.generate (what compare calls: prompts sorted by length, left padding, KV cache); one "
                 f"process per batch size, {a.repeats} round(s); the time includes rendering and decoding to text"]
        path = common.append_results("Generation for compare: prompts/s by batch size", rows, info=info, notes=notes)
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
