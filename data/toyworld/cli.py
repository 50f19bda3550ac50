"""`camelid oracle`: score anyone's generations on toy-world prompts.

    camelid oracle score FILE [--out SCORES.jsonl] [--summary]
        FILE: JSONL rows {"prompt_id": "toy-s0-eval-000123", "response": "..."}, or the answers.jsonl that
        `camelid compare` publishes ({"id": ..., "answers": {CHECKPOINT: {"response": ...}}}; also its
        --export-pairs rows {"id": ..., "responses": {CHECKPOINT: "..."}}): scored and summarised per checkpoint
    camelid oracle show PROMPT_ID      print the prompt an id names, its meta and a gold answer
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from camelid.data.toyworld.generator import world
from camelid.data.toyworld.oracle import OracleScore, score_meta, summarize
from camelid.errors import DataError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="camelid oracle", description="Score responses to toy-world prompts.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score a JSONL file of {prompt_id, response} rows, or compare's answers.jsonl")
    s.add_argument("file", help="JSONL with one {\"prompt_id\": ..., \"response\": ...} object per line, or the "
                                "answers.jsonl of a `camelid compare` report (scored per checkpoint)")
    s.add_argument("--out", help="write per-row scores here as JSONL (stdout then shows the summary)")
    s.add_argument("--summary", action="store_true", help="print only the summary (evaluate() numbers)")
    show = sub.add_parser("show", help="show the prompt an id names and a gold answer")
    show.add_argument("prompt_id")
    return p


ROWS = ('{"prompt_id": ..., "response": ...} rows, or `camelid compare`\'s answers.jsonl rows '
        '{"id": ..., "answers": {CHECKPOINT: {"response": ...}}}')


def read_rows(path: str) -> list[tuple[str, str, str, str | None]]:
    """(where, prompt_id, response, checkpoint or None) per answer; DataError naming file:line and field otherwise.

    A compare row (answers.jsonl, or --export-pairs) holds one prompt's answers by every checkpoint: one row each.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: no such file (expected JSONL: {ROWS})")
    rows = []
    with file.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected an object, got {type(row).__name__}")
            if "prompt_id" not in row and ("answers" in row or "responses" in row):
                rows += _compare_row(where, row)
                continue
            for name in ("prompt_id", "response"):
                if name not in row:
                    raise DataError(f"{where}: field '{name}': is missing (expected {ROWS})")
                _string(where, name, row[name])
            rows.append((where, row["prompt_id"], row["response"], None))
    return rows


def _string(where: str, field: str, value) -> None:
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{field}': must be a string, got {type(value).__name__}")


def _compare_row(where: str, row: dict) -> list[tuple[str, str, str, str]]:
    """One compare row -> (where, prompt_id, response, checkpoint) per checkpoint."""
    key = "answers" if "answers" in row else "responses"
    if "id" not in row:
        raise DataError(f"{where}: field 'id': is missing (a compare row names its prompt by id)")
    _string(where, "id", row["id"])
    answers = row[key]
    if not isinstance(answers, dict) or not answers:
        raise DataError(f"{where}: field '{key}': must map each checkpoint to its answer")
    out = []
    for ckpt, answer in answers.items():
        field = f"{key}.{ckpt}"
        if key == "answers":
            if not isinstance(answer, dict) or "response" not in answer:
                raise DataError(f"{where}: field '{field}': must be an object with a 'response'")
            answer, field = answer["response"], field + ".response"
        _string(where, field, answer)
        out.append((where, row["id"], answer, ckpt))
    return out


def score_file(path: str) -> list[dict]:
    """Score every answer of a JSONL file; returns {prompt_id, [checkpoint,] response, **OracleScore} per answer."""
    out = []
    for where, prompt_id, response, ckpt in read_rows(path):
        try:
            prompt = world(0).prompt_by_id(prompt_id)
        except DataError as e:
            raise DataError(f"{where}: field '{'prompt_id' if ckpt is None else 'id'}': {e}") from None
        out.append({"prompt_id": prompt_id, **({"checkpoint": ckpt} if ckpt is not None else {}),
                    "response": response, **score_meta(prompt.meta, response).to_dict()})
    return out


def _summary(rows: list[dict]) -> dict:
    return summarize([OracleScore(**{k: r[k] for k in OracleScore.__dataclass_fields__}) for r in rows])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "show":
        prompt = world(0).prompt_by_id(args.prompt_id)
        print(json.dumps({**prompt.to_dict(), "gold": world(0).reference_answer(prompt)}, indent=2))
        return 0
    rows = score_file(args.file)
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows if "checkpoint" in r))
    by_ckpt = {c: _summary([r for r in rows if r.get("checkpoint") == c]) for c in checkpoints}
    summary = {"checkpoints": by_ckpt} if checkpoints else _summary(rows)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    if args.summary or args.out:
        print(json.dumps(summary, indent=2))
        return 0
    for r in rows:
        ckpt = f"{r['checkpoint']}\t" if "checkpoint" in r else ""
        print(f"{r['prompt_id']}\t{ckpt}{r['verdict']}\thelpful={r['helpful']:.0f}\tsafe={r['safe']}\t"
              f"refused={r['refused']}\tquality={r['quality']:.2f}")
    for name, one in (by_ckpt.items() if checkpoints else [("", summary)]):
        print(f"# {name + ': ' if name else ''}n={one['n']} quality={one['quality'] or 0:.3f} "
              f"task_accuracy={one['task_accuracy']} over_refusal={one['over_refusal']} "
              f"harmful_refusal={one['harmful_refusal']}")
    return 0
