"""Instruction formats: Alpaca (with LLaMA-Factory's history), self-instruct, GSM8K, MT-Bench and Arena-Hard."""

from __future__ import annotations

import re

from camelid.data.adapters.base import Adapter, Ctx, Dropped, need, structured, text, unsupported, user
from camelid.data.records import Prompt, SFTExample
from camelid.errors import DataError


def _instruction(instruction: str, inp: str) -> str:
    return f"{instruction.strip()}\n\n{inp.strip()}" if inp and inp.strip() else instruction.strip()


def _sft_or_prompt(question: str, answer: str, ctx: Ctx, rid: str, meta: dict | None = None,
                   before: list[dict] | None = None):
    """``before``: earlier turns (a system message, earlier exchanges) that lead up to ``question``."""
    conversation = [*(before or []), *user(question)]
    if ctx.kind == "sft":
        if not answer.strip():
            return Dropped("empty output")
        return SFTExample(messages=[*conversation, {"role": "assistant", "content": answer.strip()}],
                          source=ctx.source, id=rid)
    if ctx.kind == "prompts":
        return Prompt(messages=conversation, is_safety=bool(ctx.option("is_safety", False)),
                      category=ctx.option("category"), source=ctx.source, id=rid,
                      meta={"reference": answer, **(meta or {})})
    raise unsupported(ctx.adapter, ("sft", "prompts"), ctx.kind)


def _history(row: dict) -> list[dict]:
    """LLaMA-Factory's alpaca extras: ``system`` and ``history`` ``[[user, assistant], ...]`` (e.g. LIMA)."""
    turns = []
    system = text(row, "system", required=False)
    if system.strip():
        turns.append({"role": "system", "content": system})
    for i, pair in enumerate(structured(row, "history", list, required=False) or []):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise DataError(f"field 'history[{i}]': must be a [user, assistant] pair of strings, got {pair!r:.60}")
        turns += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return turns


def convert_alpaca(row: dict, ctx: Ctx) -> list:
    question = _instruction(text(row, "instruction"), text(row, "input", required=False))
    if not question:
        raise Dropped("empty instruction")
    out = _sft_or_prompt(question, text(row, "output"), ctx, ctx.row_id(row), before=_history(row))
    if isinstance(out, Dropped):
        raise out
    return [out]


def convert_self_instruct(row: dict, ctx: Ctx) -> list:
    instruction = text(row, "instruction")
    instances = structured(row, "instances", list)
    if not instances:
        raise Dropped("no instances")
    rid = ctx.row_id(row)
    out = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise DataError(f"field 'instances[{i}]': must be an object with 'input' and 'output'")
        try:
            inp, output = text(inst, "input", required=False), text(inst, "output")
        except DataError as e:
            raise DataError(str(e).replace("field '", f"field 'instances[{i}].", 1)) from None
        out.append(_sft_or_prompt(_instruction(instruction, inp), output, ctx,
                                  rid if len(instances) == 1 else f"{rid}/{i}"))
    return out


_CALC = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"####\s*(.+?)\s*$")


def gsm8k_answer(answer: str) -> tuple[str, str]:
    """-> (worked solution without calculator notes, final answer as a plain number string)."""
    m = _FINAL.search(answer.strip())
    if not m:
        raise DataError("field 'answer': has no final '#### N' line")
    return _CALC.sub("", answer).strip(), m.group(1).replace(",", "").strip()


def convert_gsm8k(row: dict, ctx: Ctx) -> list:
    question = text(row, "question").strip()
    if not question:
        raise Dropped("empty question")
    solution, final = gsm8k_answer(text(row, "answer"))
    meta = {"answer": final}
    out = _sft_or_prompt(question, solution, ctx, ctx.row_id(row), meta)
    if isinstance(out, Prompt):
        out.category = out.category or "gsm8k"
        out.meta = {"answer": final, "solution": solution}
    return [out]


def _turns(row: dict) -> list[str]:
    """MT-Bench turns are strings; Arena-Hard's are ``{"content": ...}`` objects."""
    turns = structured(row, "turns", list)
    out = [t.get("content") if isinstance(t, dict) else t for t in turns]
    if not out or not all(isinstance(t, str) and t.strip() for t in out):
        raise DataError("field 'turns': must be a non-empty list of non-empty strings (or {content} objects)")
    return out


def convert_mt_bench(row: dict, ctx: Ctx) -> list:
    if ctx.kind != "prompts":
        raise unsupported(ctx.adapter, ("prompts",), ctx.kind)
    turns = _turns(row)
    qid = need(row, "question_id")
    category = text(row, "category", required=False)
    meta = {"question_id": qid, "turns": turns}
    if row.get("reference"):
        meta["reference"] = row["reference"]
    return [Prompt(messages=user(turns[0]), is_safety=False, category=f"mt-bench/{category}" if category else
                   "mt-bench", source=ctx.source, id=str(qid), meta=meta)]


def convert_arena_hard(row: dict, ctx: Ctx) -> list:
    """v0.1 as first published ``{question_id, category, cluster, turns: [{content}]}``; the repository's
    current v0.1 ``{uid, category, cluster, prompt}`` and v2.0 ``{uid, category, subcategory, prompt}``."""
    if ctx.kind != "prompts":
        raise unsupported(ctx.adapter, ("prompts",), ctx.kind)
    turns = _turns(row) if "turns" in row else [text(row, "prompt")]
    if not turns[0].strip():
        raise Dropped("empty prompt")
    qid = str(need(row, "question_id" if "question_id" in row else "uid"))
    labels = {k: text(row, k, required=False) for k in ("category", "cluster", "subcategory")}
    # v0.1's category is the benchmark's name and its cluster the topic; v2.0 has category/subcategory
    topic = labels["cluster"] or "/".join(v for v in (labels["category"], labels["subcategory"]) if v)
    meta = {"question_id": qid, "turns": turns, **{k: v for k, v in labels.items() if v}}
    return [Prompt(messages=user(turns[0]), is_safety=False, category=f"arena-hard/{topic}" if topic else
                   "arena-hard", source=ctx.source, id=qid, meta=meta)]


def _is_arena_hard(keys: set[str]) -> bool:
    return {"question_id", "turns", "cluster"} <= keys or (
        {"uid", "prompt"} <= keys and ("cluster" in keys or "subcategory" in keys))


ADAPTERS = [
    Adapter("alpaca", ("sft", "prompts"), convert_alpaca, lambda k: {"instruction", "output"} <= k,
            "Alpaca: {instruction, input?, output, system?, history?: [[user, assistant], ...]}"),
    Adapter("self-instruct", ("sft", "prompts"), convert_self_instruct, lambda k: {"instruction", "instances"} <= k,
            "self-instruct: {instruction, instances: [{input, output}]} (one example per instance)"),
    Adapter("gsm8k", ("sft", "prompts"), convert_gsm8k, lambda k: {"question", "answer"} <= k,
            "GSM8K: {question, answer with <<calc>> notes and a final '#### N'}; prompts carry meta.answer"),
    Adapter("mt-bench", ("prompts",), convert_mt_bench, lambda k: {"question_id", "turns"} <= k,
            "MT-Bench: {question_id, category, turns}; the first turn is the prompt, meta.turns keeps all"),
    Adapter("arena-hard", ("prompts",), convert_arena_hard, _is_arena_hard,
            "Arena-Hard question.jsonl: {question_id, category, cluster, turns: [{content}]}, or {uid, category, "
            "cluster|subcategory, prompt}"),
]
