"""After training: greedy answers to held-out prompts, scored by the toy world's oracle when it can."""

from __future__ import annotations

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
