"""After training: greedy answers to held-out prompts, scored by the toy world's oracle when it can."""

from __future__ import annotations

import json
import time
from pathlib import Path

from camelid.data.spec import DataSpec
from camelid.log import get_logger

log = get_logger("sft")


def answer_prompts(model, tokenizer, spec: DataSpec, *, max_new_tokens: int, batch_size: int = 32,
                   ) -> tuple[dict, list[dict], str]:
    """-> (oracle metrics or {}, generation rows, prompts fingerprint). Greedy (temperature 0)."""
    from camelid.data.load import load_records
    from camelid.models import generate

    loaded = load_records(spec, "prompts")
    prompts = loaded.records
    answers = generate(model, tokenizer, [p.messages for p in prompts], max_new_tokens=max_new_tokens,
                       temperature=0.0, batch_size=batch_size)
    rows = [{"messages": p.messages, "response": a, "is_safety": p.is_safety, "category": p.category,
             "source": p.source} for p, a in zip(prompts, answers)]
    metrics: dict = {}
    from camelid.data.toyworld import all_toy_prompts, evaluate

    if all_toy_prompts(prompts):  # checkable answers: the oracle scores them; real prompts only get stored
        metrics = dict(evaluate(prompts, answers))
    return metrics, rows, loaded.fingerprint


def format_metrics(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                     if isinstance(v, int | float))


def held_out_answers(model, tokenizer, spec: DataSpec | None, *, max_new_tokens: int, sharded: bool, is_main: bool,
                     metrics: dict, fingerprints: dict) -> list[dict]:
    """The held-out prompt answers a policy stage (sft, rs, dpo) publishes after training; -> the generation rows.

    Main process only, and not on sharded weights (FSDP / ZeRO-3: the metrics say it was skipped; compare the
    published model instead). Fills ``metrics`` (oracle, eval_prompts_seconds) and ``fingerprints``
    (eval_prompts) in place."""
    if spec is not None and sharded:
        log.info("sharded weights (FSDP / ZeRO-3): skipping the held-out prompt answers; run `camelid compare` "
                 "on the published model for them")
        metrics["eval_prompts_skipped"] = "sharded weights (FSDP / ZeRO-3)"
        return []
    if spec is None or not is_main:
        return []
    t0 = time.perf_counter()
    oracle, generations, fingerprints["eval_prompts"] = answer_prompts(model, tokenizer, spec,
                                                                       max_new_tokens=max_new_tokens)
    if oracle:
        metrics["oracle"] = oracle
        log.info("oracle on %d held-out prompts (greedy): %s", len(generations), format_metrics(oracle))
    else:
        log.info("answered %d held-out prompts (stored in generations.jsonl; no oracle for this data)",
                 len(generations))
    metrics["eval_prompts_seconds"] = round(time.perf_counter() - t0, 1)
    return generations


def write_generations(folder: Path, generations: list[dict]) -> None:
    """generations.jsonl in a published policy's folder (nothing when there are none)."""
    if generations:
        with open(folder / "generations.jsonl", "w", encoding="utf-8") as f:
            for row in generations:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
