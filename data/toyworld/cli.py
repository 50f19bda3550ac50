"""`camelid oracle`: score anyone's generations on toy-world prompts.

    camelid oracle score FILE [--out SCORES.jsonl] [--summary]
        FILE: JSONL rows {"prompt_id": "toy-s0-eval-000123", "response": "..."}
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
    s = sub.add_parser("score", help="score a JSONL file of {prompt_id, response} rows")
    s.add_argument("file", help="JSONL with one {\"prompt_id\": ..., \"response\": ...} object per line")
    s.add_argument("--out", help="write per-row scores here as JSONL (stdout then shows the summary)")
    s.add_argument("--summary", action="store_true", help="print only the summary (evaluate() numbers)")
    show = sub.add_parser("show", help="show the prompt an id names and a gold answer")
    show.add_argument("prompt_id")
    return p


def read_rows(path: str) -> list[tuple[str, str, str]]:
    """(where, prompt_id, response) per non-empty line; DataError naming file:line and field otherwise."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: no such file (expected JSONL rows {{\"prompt_id\": ..., \"response\": ...}})")
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
            for name in ("prompt_id", "response"):
                if name not in row:
                    raise DataError(f"{where}: field '{name}': is missing")
                if not isinstance(row[name], str):
                    raise DataError(f"{where}: field '{name}': must be a string, got {type(row[name]).__name__}")
            rows.append((where, row["prompt_id"], row["response"]))
    return rows


def score_file(path: str) -> list[dict]:
    """Score every row of a JSONL file; returns {prompt_id, response, **OracleScore} per row."""
    out = []
    for where, prompt_id, response in read_rows(path):
        try:
            prompt = world(0).prompt_by_id(prompt_id)
        except DataError as e:
            raise DataError(f"{where}: field 'prompt_id': {e}") from None
        out.append({"prompt_id": prompt_id, "response": response, **score_meta(prompt.meta, response).to_dict()})
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "show":
        prompt = world(0).prompt_by_id(args.prompt_id)
        print(json.dumps({**prompt.to_dict(), "gold": world(0).reference_answer(prompt)}, indent=2))
        return 0
    rows = score_file(args.file)
    summary = summarize([OracleScore(**{k: r[k] for k in OracleScore.__dataclass_fields__}) for r in rows])
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    if args.summary or args.out:
        print(json.dumps(summary, indent=2))
        return 0
    for r in rows:
        print(f"{r['prompt_id']}\t{r['verdict']}\thelpful={r['helpful']:.0f}\tsafe={r['safe']}\t"
              f"refused={r['refused']}\tquality={r['quality']:.2f}")
    print(f"# n={summary['n']} quality={summary['quality'] or 0:.3f} "
          f"task_accuracy={summary['task_accuracy']} over_refusal={summary['over_refusal']} "
          f"harmful_refusal={summary['harmful_refusal']}")
    return 0
