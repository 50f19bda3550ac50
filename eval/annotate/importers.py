"""Build queue items ``{prompt, response_a, response_b, meta}`` from files or from model checkpoints.

File rows (JSONL, one object a line) may be, detected per row:
- a canonical preference pair ``{prompt, chosen, rejected, ...}`` (the old labels are kept in meta only);
- an A/B pair ``{prompt, response_a, response_b, [id, category, source]}``;
- a `camelid compare` row ``{prompt, responses: {checkpoint: text, ...}}``: every two checkpoints
  make one pair (three checkpoints give three pairs).
``prompt`` is a list of chat messages ``[{role, content}]`` ending with a user turn, or a plain string
(one user turn); ``messages`` is accepted as another name for it.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from camelid.data.adapters.sources import iter_jsonl
from camelid.data.records import PreferencePair, Prompt, validate_messages
from camelid.errors import DataError


def _prompt(row: dict, where: str) -> list[dict]:
    raw = row.get("prompt", row.get("messages"))
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    msgs = validate_messages(raw, where, "prompt")
    if msgs[-1]["role"] != "user":
        raise DataError(f"{where}: field 'prompt': must end with a user message")
    return msgs


def _text(row: dict, key: str, where: str) -> str:
    v = row.get(key)
    if not isinstance(v, str) or not v.strip():
        raise DataError(f"{where}: field '{key}': must be a non-empty string")
    return v


def _meta(row: dict, **extra) -> dict:
    meta = {k: row[k] for k in ("id", "category", "source") if row.get(k) is not None}
    return meta | extra


def items_from_row(row: dict, where: str) -> list[dict]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "chosen" in row or "rejected" in row:
        p = PreferencePair.from_dict(dict(row, prompt=_prompt(row, where)), where)
        meta = _meta(row, origin="preference", prior_rating=p.rating)
        return [{"prompt": p.prompt, "response_a": p.chosen, "response_b": p.rejected, "meta": meta}]
    if "response_a" in row or "response_b" in row:
        return [{"prompt": _prompt(row, where), "response_a": _text(row, "response_a", where),
                 "response_b": _text(row, "response_b", where), "meta": _meta(row, origin="ab")}]
    if "responses" in row:
        resp = row["responses"]
        if not isinstance(resp, dict) or len(resp) < 2:
            raise DataError(f"{where}: field 'responses': must map at least two checkpoints to their answers")
        prompt = _prompt(row, where)
        texts = {str(k): _text(resp, k, f"{where}: responses") for k in resp}
        out = []
        for ma, mb in combinations(sorted(texts), 2):
            if texts[ma] != texts[mb]:
                base = _meta(row, origin="compare", model_a=ma, model_b=mb)
                if "id" in base:
                    base["id"] = f"{base['id']}:{ma}-vs-{mb}"
                out.append({"prompt": prompt, "response_a": texts[ma], "response_b": texts[mb], "meta": base})
        return out
    raise DataError(f"{where}: row has none of chosen/rejected, response_a/response_b or responses; "
                    "see `camelid annotate import --help` for the accepted formats")


def check_text(value, where: str, field: str = "") -> None:
    """Refuse a string that is not valid Unicode (a lone surrogate escape such as "\\ud800", which JSON
    lets through but no database, tokenizer or UTF-8 file accepts), naming the row and field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = value[e.start]
            raise DataError(f"{where}: field '{field or '?'}': holds the lone surrogate \\u{ord(bad):04x} at "
                            f"character {e.start}, which is not text; fix or drop that row") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k, where, field)
            check_text(v, where, f"{field}.{k}" if field else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_text(v, where, f"{field}[{i}]")


def items_from_file(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    items = []
    for where, row in iter_jsonl(path):
        check_text(row, where)
        items += items_from_row(row, where)
    if not items:
        raise DataError(f"{path}: no pairs found (empty file?)")
    return items


def load_prompts(path: Path) -> list[Prompt]:
    """Prompts from JSONL: canonical ``{messages, ...}`` rows or ``{prompt: str | messages}``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = []
    for where, row in iter_jsonl(path):
        check_text(row, where)
        if "messages" not in row:
            row = dict(row, messages=_prompt(row, where))
        out.append(Prompt.from_dict(row, where))
    if not out:
        raise DataError(f"{path}: no prompts found")
    return out


def items_from_checkpoints(refs: list[str], prompts: list[Prompt], *, registry_root: Path,
                           temperatures: tuple[float, float], top_p: float, max_new_tokens: int,
                           seed: int) -> tuple[list[dict], int]:
    """Sample two responses per prompt, as Llama 2 did: one model at two temperatures, or one
    sample from each of two models. Returns (items, prompts dropped because both answers matched)."""
    if len(refs) not in (1, 2):
        raise DataError("--from-checkpoints takes one or two registry refs")
    from camelid.models import generate, load_causal_lm  # heavy (torch/transformers): import on use
    from camelid.registry import Registry

    registry = Registry(Path(registry_root))
    convs = [p.messages for p in prompts]
    kw = {"max_new_tokens": max_new_tokens, "top_p": top_p, "seed": seed}
    if len(refs) == 1:
        model, tok = load_causal_lm(refs[0], registry)
        outs_a = generate(model, tok, convs, temperature=temperatures[0], **kw)
        outs_b = generate(model, tok, convs, temperature=temperatures[1], **kw)
        labels = [f"{refs[0]} T={temperatures[0]}", f"{refs[0]} T={temperatures[1]}"]
    else:
        outs = []
        for ref in refs:  # one model in memory at a time
            model, tok = load_causal_lm(ref, registry)
            outs.append(generate(model, tok, convs, temperature=temperatures[0], **kw))
            del model
        outs_a, outs_b = outs
        labels = list(refs)
    items, same = [], 0
    for p, a, b in zip(prompts, outs_a, outs_b):
        if a.strip() == b.strip() or not a.strip() or not b.strip():
            same += 1
            continue
        meta = {"origin": "checkpoints", "model_a": labels[0], "model_b": labels[1],
                "source": f"annotate:{'+'.join(refs)}"}
        if p.category:
            meta["category"] = p.category
        if p.id:
            meta["id"] = str(p.id)
        items.append({"prompt": p.messages, "response_a": a, "response_b": b, "meta": meta})
    return items, same
