"""Loading: format detection, file types, bad input (file:line, field, adapter), skip reports, n, fingerprint."""

import json
import shutil

import pytest

from camelid.data.adapters import detect_format
from camelid.data.load import load_records, resolve_format
from camelid.data.spec import DataSpec
from camelid.errors import DataError


@pytest.mark.parametrize("name, fmt", [
    ("messages.jsonl", "messages"), ("preference.jsonl", "preference"), ("prompts.jsonl", "prompts"),
    ("hh-rlhf.jsonl", "hh-rlhf"), ("pku-saferlhf.jsonl", "pku-saferlhf"), ("beavertails.jsonl", "beavertails"),
    ("xstest.jsonl", "xstest"), ("oasst-conversations.jsonl", "oasst"), ("oasst-trees.jsonl", "oasst"),
    ("oasst-messages.jsonl", "oasst"), ("alpaca.json", "alpaca"), ("self-instruct.jsonl", "self-instruct"),
    ("gsm8k.jsonl", "gsm8k"), ("mt-bench.jsonl", "mt-bench"),
])
def test_auto_detects_every_fixture(fixtures, name, fmt):
    assert resolve_format(DataSpec(format="auto", path=str(fixtures / name))) == fmt


def test_undetectable_row_names_the_keys():
    with pytest.raises(DataError, match=r"cannot detect the data format from the keys \['foo', 'text'\]"):
        detect_format({"text": "x", "foo": 1})


def test_unknown_format_and_unsupported_kind(fixtures):
    with pytest.raises(DataError, match="unknown data format 'hhrlhf'"):
        load_records(DataSpec(format="hhrlhf", path=str(fixtures / "hh-rlhf.jsonl")), "pairs")
    with pytest.raises(DataError, match="format 'mt-bench' cannot produce sft records"):
        load_records(DataSpec(format="auto", path=str(fixtures / "mt-bench.jsonl")), "sft")
    with pytest.raises(DataError, match="options.rating: must be one of"):
        load_records(DataSpec(format="hh-rlhf", path=str(fixtures / "hh-rlhf.jsonl"),
                              options={"rating": "much_better"}), "pairs")


def test_malformed_json_names_file_and_line(fixtures):
    path = fixtures / "bad-json.jsonl"
    with pytest.raises(DataError, match=rf"^{path}:2: malformed JSON: Expecting ',' delimiter"):
        load_records(DataSpec(format="alpaca", path=str(path)), "sft")


def test_skip_counts_bad_rows_with_sample_reasons(fixtures):
    res = load_records(DataSpec(format="auto", path=str(fixtures / "bad-json.jsonl"), on_error="skip"), "sft")
    assert (res.read, res.kept, res.errors) == (3, 2, 1)
    assert res.dropped == {"invalid: malformed JSON": 1}
    assert res.sample_reasons[0].startswith(f"{fixtures / 'bad-json.jsonl'}:2: malformed JSON")


def test_mistyped_and_missing_fields_name_field_and_adapter(fixtures):
    path = fixtures / "bad-field.jsonl"
    with pytest.raises(DataError, match=rf"{path}:2: gsm8k adapter: field 'answer': must be a string, got int"):
        load_records(DataSpec(format="gsm8k", path=str(path)), "sft")
    res = load_records(DataSpec(format="gsm8k", path=str(path), on_error="skip"), "sft")
    assert res.kept == 1 and res.errors == 3
    assert res.dropped == {"invalid: field 'answer'": 3}
    assert any("3: gsm8k adapter: field 'answer': is missing" in s for s in res.sample_reasons)
    assert any("has no final '#### N' line" in s for s in res.sample_reasons)


def test_record_validation_errors_carry_the_location(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "rating": "best"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: preference adapter: .*field 'rating': must be one of"):
        load_records(DataSpec(format="preference", path=str(path)), "pairs")


def test_empty_files_are_a_clear_error(tmp_path):
    for name, content in [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("empty.json", "[]"), ("empty.csv", "")]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(DataError, match=rf"{path}: file is empty"):
            load_records(DataSpec(format="messages", path=str(path)), "sft")


def test_invalid_utf8_names_file_line_and_byte_offset(tmp_path):
    good = json.dumps({"instruction": "a", "output": "b"}).encode() + b"\n"
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(good + b'{"instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(DataError, match=rf"{path}:2: invalid UTF-8 at byte offset {len(good) + 20}"):
        load_records(DataSpec(format="alpaca", path=str(path)), "sft")
    res = load_records(DataSpec(format="alpaca", path=str(path), on_error="skip"), "sft")
    assert res.kept == 1 and res.dropped == {"invalid: bad UTF-8": 1}
    as_json = tmp_path / "latin1.json"
    as_json.write_bytes(b'[\n{"instruction": "caf\xe9", "output": "x"}]')
    with pytest.raises(DataError, match=rf"{as_json}:2: invalid UTF-8 at byte offset 22"):
        load_records(DataSpec(format="alpaca", path=str(as_json)), "sft")


def test_missing_path_and_mapped_column(fixtures, tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_records(DataSpec(format="auto", path=str(tmp_path / "nope.jsonl")), "sft")
    with pytest.raises(DataError, match=r"column 'question' \(mapped to 'instruction' by `columns`\) is not in the row"):
        load_records(DataSpec(format="alpaca", path=str(fixtures / "alpaca.json"),
                              columns={"instruction": "question"}), "sft")


def test_parquet_and_folders(fixtures, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (fixtures / "gsm8k.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "gsm8k.parquet")
    shutil.copy(fixtures / "gsm8k.jsonl", tmp_path / "more.jsonl")
    (tmp_path / "notes.txt").write_text("not data")
    from_parquet = load_records(DataSpec(format="auto", path=str(tmp_path / "gsm8k.parquet")), "prompts")
    assert [p.meta["answer"] for p in from_parquet.records] == ["24", "1200", "3"]
    folder = load_records(DataSpec(format="gsm8k", path=str(tmp_path)), "sft")
    assert folder.read == 6 and folder.kept == 6
    assert folder.records[0].messages[0]["content"] == rows[0]["question"]


def test_n_keeps_the_first_records_and_reports_the_rest(fixtures):
    res = load_records(DataSpec(format="auto", path=str(fixtures / "gsm8k.jsonl"), n=2), "sft")
    assert res.kept == 2 and res.dropped == {"beyond n=2": 1}


def test_fingerprint_is_stable_and_tracks_content(fixtures, tmp_path):
    spec = DataSpec(format="auto", path=str(fixtures / "gsm8k.jsonl"))
    a, b = load_records(spec, "sft"), load_records(spec, "sft")
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    changed = tmp_path / "gsm8k.jsonl"
    changed.write_text((fixtures / "gsm8k.jsonl").read_text().replace("How many eggs", "How many EGGS"))
    assert load_records(DataSpec(format="auto", path=str(changed)), "sft").fingerprint != a.fingerprint
    assert load_records(spec, "prompts").fingerprint != a.fingerprint


def test_no_records_left_is_an_error(tmp_path):
    path = tmp_path / "only-user.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(DataError, match=r"no sft records left: .*no assistant turn: 1"):
        load_records(DataSpec(format="messages", path=str(path)), "sft")


def test_hub_dataset_offline_is_a_clear_error():
    with pytest.raises(DataError, match=r"could not load Hugging Face dataset 'someone/not-here'.*local"):
        load_records(DataSpec(format="hh-rlhf", path="hf:someone/not-here"), "pairs")


def test_toy_world_smoke():
    toyworld = pytest.importorskip("camelid.data.toyworld")
    if not hasattr(toyworld, "records"):
        pytest.skip("camelid.data.toyworld.records is not built yet")
    res = load_records(DataSpec(format="toy", n=8, seed=1), "pairs")
    assert 0 < res.kept <= 8 and res.fingerprint == load_records(DataSpec(format="toy", n=8, seed=1), "pairs").fingerprint
