"""Hostile inputs a user can hand the CLI end in one line that names what is wrong and where, not a
traceback: a YAML tag in `data --option`, a lone surrogate in `annotate import`, a checkpoint --resume
cannot load safely (#29)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camelid.cli import main as camelid

REPO = Path(__file__).resolve().parents[1].parent


def one_error_line(capsys, argv: list[str], command: str) -> str:
    capsys.readouterr()
    assert camelid(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"camelid {command}: error: "), err
    return err


@pytest.mark.parametrize("value", ["!!python/object/apply:os.system ['echo hacked']", "!!python/name:os.system",
                                   "[unclosed"])
def test_data_option_with_a_yaml_tag_or_bad_yaml_is_one_line_naming_the_option(capsys, tmp_path, value):
    rows = tmp_path / "prefs.jsonl"
    rows.write_text(json.dumps({"prompt": "hi", "chosen": "hello", "rejected": "go away"}) + "\n")
    err = one_error_line(capsys, ["data", "validate", str(rows), "--option", f"rating={value}"], "data")
    assert "--option rating: invalid YAML" in err and "hacked" not in capsys.readouterr().out


def test_annotate_import_of_a_lone_surrogate_names_file_line_and_field(capsys, tmp_path):
    good = {"prompt": "hi", "response_a": "hello", "response_b": "hey"}
    path = tmp_path / "pairs.jsonl"
    # json.dumps writes "\ud800" as an escape: valid JSON, not valid text
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, response_b="bad \ud800 text")) + "\n")
    err = one_error_line(capsys, ["annotate", "import", str(path), "--db", str(tmp_path / "a.sqlite")], "annotate")
    assert f"{path}:2: field 'response_b': holds the lone surrogate \\ud800 at character 4" in err
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"messages": [{"role": "user", "content": "\udcff"}]}) + "\n")
    err = one_error_line(capsys, ["annotate", "import", "--from-checkpoints", "sft", "--prompts", str(prompts),
                                  "--db", str(tmp_path / "a.sqlite")], "annotate")
    assert f"{prompts}:1: field 'messages[0].content': holds the lone surrogate \\udcff" in err
