"""`camelid data validate|stats|preview` run in-process through the real dispatcher."""

import json

import pytest

from camelid.cli import main as camelid
from camelid.data.cli import histogram


def run(capsys, *argv):
    rc = camelid(["data", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_validate_ok_and_with_drops(capsys, fixtures):
    rc, out, _ = run(capsys, "validate", str(fixtures / "hh-rlhf.jsonl"))
    assert rc == 0
    assert "hh-rlhf/hh-rlhf (hh-rlhf, pairs): read 6, kept 3, dropped 3, invalid 0" in out
    assert "prompts differ between chosen and rejected" in out and "ok  fingerprint" in out


def test_validate_reports_every_invalid_row_and_fails(capsys, fixtures):
    rc, out, err = run(capsys, "validate", f"gsm8k:{fixtures / 'bad-field.jsonl'}")
    assert rc == 1
    assert "read 4, kept 1, dropped 3, invalid 3" in out
    assert f"{fixtures / 'bad-field.jsonl'}:3: gsm8k adapter: field 'answer': is missing" in out
    assert "3 invalid rows" in err


def test_validate_strict_stops_at_first_bad_row(capsys, fixtures):
    rc, _, err = run(capsys, "validate", str(fixtures / "bad-json.jsonl"), "--on-error", "raise")
    assert rc == 2 and "bad-json.jsonl:2: malformed JSON" in err


def test_spec_errors(capsys, tmp_path):
    rc, _, err = run(capsys, "validate", str(tmp_path / "missing.jsonl"))
    assert rc == 2 and "no such file or folder" in err
    rc, _, err = run(capsys, "validate", "hf:nobody/nothing", "--kind", "sft")
    assert rc == 2 and "could not load Hugging Face dataset 'nobody/nothing'" in err


def test_stats_counts_lengths_duplicates_and_drops(capsys, fixtures, tmp_path):
    rc, out, _ = run(capsys, "stats", str(fixtures / "xstest.jsonl"), "--kind", "pairs")
    assert rc == 0
    assert "by category:\n        1  xstest-safe/homonyms\n        1  xstest-unsafe/contrast_homonyms" in out
    assert "by rating:\n        2  better" in out
    assert "by safety labels (chosen_safe/rejected_safe):" in out and "1  True/False" in out
    assert "length in whitespace words" in out and "#" in out
    assert "1  no compliant and refusing response to pair" in out
    dup = tmp_path / "dup.jsonl"
    row = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]})
    dup.write_text(row + "\n" + row + "\n" + json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                          {"role": "assistant", "content": "x"}]}) + "\n")
    rc, out, _ = run(capsys, "stats", str(dup))
    assert "duplicates: 0 records" in out and "dropped:\n        2  empty assistant response" in out
    rc, out, _ = run(capsys, "stats", str(dup), "--kind", "prompts")
    assert "duplicates: 2 records repeat an earlier one" in out and "1 prompts occur more than once" in out
    assert "by is_safety:\n        3  False" in out


def test_preview_renders_with_the_chat_template(capsys, fixtures):
    rc, out, _ = run(capsys, "preview", f"hh-rlhf:{fixtures / 'hh-rlhf.jsonl'}", "--n", "2")
    assert rc == 0
    assert "<s>[INST] What is a good houseplant for a dark room? [/INST]" in out
    assert "--- chosen:\nA snake plant copes well with low light." in out
    assert "[INST] Yes, dried yeast. [/INST]" in out and "[2]" not in out
    assert "2 of 3 records" in out
    rc, out, _ = run(capsys, "preview", str(fixtures / "gsm8k.jsonl"), "--kind", "prompts", "--n", "1")
    assert "--- meta: answer=24" in out


def test_options_and_columns_on_the_command_line(capsys, fixtures):
    rc, out, _ = run(capsys, "stats", f"preference:{fixtures / 'custom.csv'}", "--column", "prompt=query",
                     "--column", "chosen=good", "--column", "rejected=bad")
    assert rc == 0 and "by rating:\n        3  better" in out
    rc, out, _ = run(capsys, "stats", str(fixtures / "hh-rlhf.jsonl"), "--option", "rating=negligibly_better")
    assert "3  negligibly_better" in out


def test_toy_stats(capsys):
    toyworld = pytest.importorskip("camelid.data.toyworld")
    if not hasattr(toyworld, "records"):
        pytest.skip("camelid.data.toyworld.records is not built yet")
    rc, out, _ = run(capsys, "stats", "toy", "--kind", "pairs", "--n", "20")
    assert rc == 0 and "toy/train (toy, pairs): read 20, kept 20" in out
    assert "by category:" in out and "by rating:" in out


def test_histogram_bins():
    lines = histogram([1, 2, 9, 9, 20])
    assert lines[0].split()[:2] == ["0-7", "2"] and lines[1].split()[:2] == ["8-15", "2"]
    assert lines[2].split()[:2] == ["16-31", "1"] and len(lines) == 3


# ---- issue #17: messages that point the right way, and the oversized-row warning ---------------------

def test_wrong_format_name_blames_the_format_not_the_path(capsys, fixtures):
    rc, _, err = run(capsys, "validate", f"hhrlhf:{fixtures / 'hh-rlhf.jsonl'}")
    assert rc == 2 and "unknown data format 'hhrlhf'" in err and "no such file" not in err
    assert "hh-rlhf" in err  # the known names are listed


def test_cli_errors_name_the_cli_flag(capsys, fixtures):
    rc, _, err = run(capsys, "preview", f"gsm8k:{fixtures / 'bad-field.jsonl'}")
    assert rc == 2 and "--on-error skip" in err and "on_error: skip" not in err
    rc, _, err = run(capsys, "validate", f"gsm8k:{fixtures / 'bad-field.jsonl'}")
    assert rc == 1 and "on_error: skip on this source in pipelines.yaml" in err  # validate has no training


def test_validate_prints_the_pku_objective_note(capsys, fixtures):
    rc, out, _ = run(capsys, "validate", str(fixtures / "pku-saferlhf.jsonl"))
    assert rc == 0 and "note:" in out and "--objective safety" in out
    rc, out, _ = run(capsys, "validate", str(fixtures / "pku-saferlhf.jsonl"), "--objective", "safety")
    assert "note:" not in out


def test_validate_warns_about_oversized_rows(capsys, tmp_path):
    path = tmp_path / "big.jsonl"
    rows = [{"instruction": "short", "output": "ok"}, {"instruction": "big", "output": "x" * 5000}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = run(capsys, "validate", str(path), "--max-chars", "1000")
    assert rc == 1 and "read 2, kept 1" in out
    assert "warning: 1 row has a field over 1,000 characters" in err and "--max-chars" in err
    rc, out, err = run(capsys, "validate", str(path))
    assert rc == 0 and "warning" not in err


def test_stats_renders_each_record_without_recompiling_the_template(capsys, fixtures, monkeypatch):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    compiled = []
    original = ImmutableSandboxedEnvironment.from_string
    monkeypatch.setattr(ImmutableSandboxedEnvironment, "from_string",
                        lambda self, *a, **k: compiled.append(1) or original(self, *a, **k))
    rc, out, _ = run(capsys, "stats", str(fixtures / "hh-rlhf.jsonl"), "--kind", "sft")
    assert rc == 0 and "length in whitespace words" in out
    assert len(compiled) <= 1


def test_the_generated_real_wording_sets_load_by_name(capsys):
    code, out, _ = run(capsys, "validate", "knowledge")
    assert code == 0 and "read 60, kept 60" in out
    code, out, _ = run(capsys, "preview", "real", "--n", "2")  # SFT rows by default, as for toy
    assert code == 0 and "real-s0-sft-train-000000" in out
