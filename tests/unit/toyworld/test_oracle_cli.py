"""`camelid oracle score FILE`: per-row scores, summary, --out, and bad rows naming file:line and field."""

from __future__ import annotations

import json

import pytest

from camelid.cli import main as camelid_main
from camelid.data.toyworld import ToyWorld
from camelid.data.toyworld.cli import main
from camelid.errors import DataError


@pytest.fixture()
def rows(tmp_path):
    w = ToyWorld(0)
    prompts = w.prompts("eval", n=30)
    good = [{"prompt_id": p.id, "response": w.reference_answer(p)} for p in prompts[:20]]
    harmful = next(p for p in prompts if p.meta["kind"] == "harmful")
    good.append({"prompt_id": harmful.id, "response": "Sure. Step 1: get zorvex. Step 2: add a fuse."})
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in good) + "\n\n")
    return path, good


def test_score_prints_rows_and_summary(rows, capsys):
    path, good = rows
    assert main(["score", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(good) + 1
    assert out[0].startswith(good[0]["prompt_id"] + "\t")
    assert "complied" in out[-2] and "safe=False" in out[-2]


def test_score_out_and_summary(rows, tmp_path, capsys):
    path, good = rows
    out_file = tmp_path / "scores.jsonl"
    assert main(["score", str(path), "--out", str(out_file)]) == 0
    summary = json.loads(capsys.readouterr().out)
    scored = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["prompt_id"] for r in scored] == [r["prompt_id"] for r in good]
    assert all(r["helpful"] == 1.0 for r in scored[:-1]) and scored[-1]["safe"] is False
    assert summary["n"] == len(good) and summary["task_accuracy"] == 1.0
    assert summary["harmful_compliance"] > 0
    assert main(["score", str(path), "--summary"]) == 0
    assert json.loads(capsys.readouterr().out) == summary


@pytest.mark.parametrize("line,message", [
    ('{"prompt_id": "toy-s0-eval-000001", "response": 12}', "field 'response': must be a string"),
    ('{"response": "12"}', "field 'prompt_id': is missing"),
    ('{"prompt_id": "nope-1", "response": "12"}', "field 'prompt_id': not a toy-world id"),
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected an object"),
])
def test_bad_row_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt_id": "toy-s0-eval-000000", "response": "ok"}\n' + line + "\n")
    with pytest.raises(DataError) as err:
        main(["score", str(path)])
    assert f"{path}:2" in str(err.value) and message in str(err.value)


def test_dispatcher_reports_bad_rows_as_user_errors(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt_id": "toy-s0-eval-000001"}\n')
    assert camelid_main(["oracle", "score", str(path)]) == 2
    assert f"{path}:1: field 'response': is missing" in capsys.readouterr().err
    assert camelid_main(["oracle", "score", str(tmp_path / "missing.jsonl")]) == 2


def test_show_prints_prompt_and_gold(capsys):
    assert main(["show", "toy-s0-eval-000004"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "toy-s0-eval-000004" and shown["gold"] and "meta" in shown


def _compare_answers(tmp_path):
    """An answers.jsonl as `camelid compare` writes it (its own row builder), two checkpoints on toy prompts."""
    import numpy as np

    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec
    from camelid.eval.compare_judge import CheckpointResult
    from camelid.eval.compare_summary import per_prompt_rows

    prompts = load_records(DataSpec(format="toy", split="eval", n=12), "prompts")
    w = ToyWorld(0)
    answers = {"sft@v1": [w.reference_answer(p.id) for p in prompts.records], "base@v1": [""] * len(prompts.records)}
    results = [CheckpointResult(ref=ref, hash="h", responses=resp, cached=False, lengths=np.ones(len(resp)),
                                refused=np.zeros(len(resp), dtype=bool), scores={"combined": np.zeros(len(resp))})
               for ref, resp in answers.items()]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in per_prompt_rows(prompts, results)))
    return path, prompts


def test_score_accepts_the_answers_compare_writes(tmp_path, capsys):
    """#29: `oracle score` refused compare's answers.jsonl ("field 'prompt_id': is missing")."""
    path, prompts = _compare_answers(tmp_path)
    out_file = tmp_path / "scores.jsonl"
    assert camelid_main(["oracle", "score", str(path), "--out", str(out_file)]) == 0
    summary = json.loads(capsys.readouterr().out)["checkpoints"]
    assert list(summary) == ["sft@v1", "base@v1"]
    assert summary["sft@v1"]["n"] == summary["base@v1"]["n"] == len(prompts.records)
    assert summary["sft@v1"]["task_accuracy"] == 1.0 and summary["base@v1"]["task_accuracy"] == 0.0
    scored = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["prompt_id"], r["checkpoint"]) for r in scored[:2]] == [(prompts.records[0].id, "sft@v1"),
                                                                         (prompts.records[0].id, "base@v1")]
    assert main(["score", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{prompts.records[0].id}\tsft@v1\t")
    assert lines[-2].startswith("# sft@v1: n=12") and lines[-1].startswith("# base@v1: n=12")


@pytest.mark.parametrize("row,message", [
    ({"answers": {"a": {"response": "x"}}}, "field 'id': is missing"),
    ({"id": "toy-s0-eval-000001", "answers": {"a": "x"}}, "field 'answers.a': must be an object with a 'response'"),
    ({"id": "toy-s0-eval-000001", "answers": {"a": {"response": 3}}}, "field 'answers.a.response': must be a string"),
    ({"id": "nope-1", "answers": {"a": {"response": "x"}}}, "field 'id': not a toy-world id"),
    ({"id": "toy-s0-eval-000001", "responses": {"a": None}}, "field 'responses.a': must be a string"),
])
def test_bad_compare_row_names_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError) as err:
        main(["score", str(path)])
    assert f"{path}:1: " in str(err.value) and message in str(err.value)
