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
    ("gsm8k.jsonl", "gsm8k"), ("mt-bench.jsonl", "mt-bench"), ("arena-hard-question.jsonl", "arena-hard"),
    ("alpaca-history.json", "alpaca"), ("lima.jsonl", "messages"), ("oasst-synthetic.jsonl", "oasst"),
    ("bracket-text.jsonl", "preference"), ("xstest-upstream", "xstest"), ("xstest-upstream/xstest_prompts.csv", "xstest"),
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


# ---- files that are not what their names say (issue #17) ----------------------------------------------

ROWS = [{"instruction": f"Say {i}.", "output": str(i)} for i in range(400)]


def _jsonl_bytes(rows=ROWS) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("name", ["data.jsonl.gz", "data.jsonl", "data.parquet", "data.csv"])
def test_git_lfs_pointer_says_what_it_is(tmp_path, name):
    path = tmp_path / name
    path.write_text("version https://git-lfs.github.com/spec/v1\n"
                    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    with pytest.raises(DataError, match=rf"^{path}: is a Git LFS pointer \(12345 bytes of data\), not the data"
                                        r".*git lfs pull"):
        load_records(DataSpec(format="alpaca", path=str(path)), "sft")


def test_truncated_gzip_is_a_clear_error_and_keeps_earlier_rows_with_skip(tmp_path):
    import gzip

    data = gzip.compress(_jsonl_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"^{path}:\d+: the gzip data ends early .*truncated.*download it again"):
        load_records(DataSpec(format="alpaca", path=str(path)), "sft")
    res = load_records(DataSpec(format="alpaca", path=str(path), on_error="skip"), "sft")
    assert 0 < res.kept < len(ROWS) and res.dropped == {"invalid: truncated gzip": 1}


def test_not_gzip_although_named_gz(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(_jsonl_bytes())
    with pytest.raises(DataError, match=rf"^{path}: is not gzip data although its name ends in .gz"):
        load_records(DataSpec(format="alpaca", path=str(path)), "sft")


@pytest.mark.parametrize("name", ["data.jsonl", "data.json", "data.csv"])
def test_gzip_data_under_a_plain_name_says_gzip(tmp_path, name):
    import gzip

    path = tmp_path / name
    path.write_bytes(gzip.compress(_jsonl_bytes()))
    with pytest.raises(DataError, match=rf"^{path}: is gzip-compressed data, but its name does not end in .gz"):
        load_records(DataSpec(format="alpaca", path=str(path), on_error="skip"), "sft")


# ---- messages that point the right way ---------------------------------------------------------------

def test_null_value_is_reported_as_null_not_missing(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "How many?", "answer": None}) + "\n")
    with pytest.raises(DataError, match=r"field 'answer': is null \(the row has the key but no value\)"):
        load_records(DataSpec(format="gsm8k", path=str(path)), "sft")


def test_csv_errors_point_at_the_first_line_of_a_multi_line_record(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('prompt,chosen,rejected,rating\nhi,a,b,better\n"two\nlines",a,"b\nc\nd",best\nyo,a,b,worse\n')
    with pytest.raises(DataError, match=rf"^{path}:3: preference adapter: field 'rating'"):
        load_records(DataSpec(format="preference", path=str(path)), "pairs")
    res = load_records(DataSpec(format="preference", path=str(path), on_error="skip"), "pairs")
    assert [s.split(": ")[0] for s in res.sample_reasons] == [f"{path}:3", f"{path}:7"]


def test_pku_without_objective_hints_at_it(fixtures):
    res = load_records(DataSpec(format="auto", path=str(fixtures / "pku-saferlhf.jsonl")), "pairs")
    assert any("objective" in n and "safety" in n and "better_response_id" in n for n in res.notes)
    assert "objective" in res.summary()
    safety = load_records(DataSpec(format="auto", path=str(fixtures / "pku-saferlhf.jsonl"), objective="safety"),
                          "pairs")
    assert safety.notes == []


def test_pipelines_hint_names_the_yaml_key(fixtures):
    with pytest.raises(DataError, match=r"set on_error: skip"):
        load_records(DataSpec(format="gsm8k", path=str(fixtures / "bad-field.jsonl")), "sft")


# ---- one oversized row -------------------------------------------------------------------------------

def test_oversized_field_is_refused_before_tokenizing_and_counted(tmp_path):
    path = tmp_path / "big.jsonl"
    rows = [{"instruction": "short", "output": "ok"}, {"instruction": "big", "output": "x" * 5000},
            {"instruction": "also short", "output": "fine"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=rf"^{path}:2: alpaca adapter: field 'messages\[1\].content': 5,000 "
                                        r"characters, over max_chars=1,000.*set on_error: skip"):
        load_records(DataSpec(format="alpaca", path=str(path), max_chars=1000), "sft")
    res = load_records(DataSpec(format="alpaca", path=str(path), max_chars=1000, on_error="skip"), "sft")
    assert res.kept == 2 and res.oversized == 1 and res.dropped == {"invalid: over max_chars": 1}
    assert load_records(DataSpec(format="alpaca", path=str(path), max_chars=None), "sft").kept == 3


def test_default_max_chars_bounds_a_huge_row(tmp_path):
    path = tmp_path / "huge.jsonl"
    rows = [{"prompt": "q", "chosen": "y" * 2_000_000, "rejected": "n"}, {"prompt": "q", "chosen": "a", "rejected": "b"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = load_records(DataSpec(format="preference", path=str(path), on_error="skip"), "pairs")
    assert res.kept == 1 and res.oversized == 1


def test_oversized_records_from_combined_rows_are_counted(fixtures):
    res = load_records(DataSpec(format="auto", path=str(fixtures / "xstest-upstream"), max_chars=30,
                                on_error="skip"), "pairs", allow_empty=True)
    assert res.kept == 0 and res.oversized == 3 and res.errors == 3
