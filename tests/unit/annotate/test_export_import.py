"""Import formats, export to canonical preference pairs, publish to the registry, the CLI end to end."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import pytest

from camelid.data.records import PreferencePair
from camelid.errors import CamelidError, DataError
from camelid.eval.annotate import cli
from camelid.eval.annotate.db import AnnotationDB
from camelid.eval.annotate.export import export_records, median_strength
from camelid.eval.annotate.importers import items_from_file

MSGS = [{"role": "user", "content": "Hi?"}]


def vote(db, user, pair_id, side: str, strength="better", a_safe=True, b_safe=True, note=""):
    """Label pair_id for user with a canonical side ('a'/'b'), whatever order they were shown."""
    while (s := db.next_pair(user)).pair_id != pair_id:
        db.skip(user, s.pair_id)
    pref = "left" if (side == "a") == s.left_is_a else "right"
    left_safe, right_safe = (a_safe, b_safe) if s.left_is_a else (b_safe, a_safe)
    db.submit(user, pair_id, preferred=pref, strength=strength, left_safe=left_safe, right_safe=right_safe,
              note=note)


def test_import_formats_and_dedup(db, write_jsonl):
    path = write_jsonl([
        {"prompt": MSGS, "chosen": "c", "rejected": "r", "rating": "slightly_better", "id": "p1", "source": "hh"},
        {"prompt": "Plain?", "response_a": "x", "response_b": "y", "category": "math"},
        {"messages": MSGS, "responses": {"sft@v1": "one", "ppo@v1": "two", "rm@v1": "three"}, "id": "c1"},
    ])
    items = items_from_file(path)
    assert len(items) == 1 + 1 + 3  # three checkpoints -> three pairs
    assert items[0]["meta"] == {"id": "p1", "source": "hh", "origin": "preference", "prior_rating": "slightly_better"}
    assert items[1]["prompt"] == [{"role": "user", "content": "Plain?"}]
    assert {(i["meta"]["model_a"], i["meta"]["model_b"]) for i in items[2:]} == {
        ("ppo@v1", "rm@v1"), ("ppo@v1", "sft@v1"), ("rm@v1", "sft@v1")}
    assert db.add_pairs(items, k=3) == (5, 0)
    swapped = dict(items[1], response_a="y", response_b="x")  # same pair in the other order
    assert db.add_pairs([items[0], swapped], k=3) == (0, 2)


@pytest.mark.parametrize("row, msg", [
    ({"prompt": MSGS, "response_a": "x"}, "rows.jsonl:1: field 'response_b'"),
    ({"prompt": [{"role": "bot", "content": "x"}], "response_a": "x", "response_b": "y"}, "role"),
    ({"prompt": MSGS, "responses": {"only": "one"}}, "at least two"),
    ({"text": "?"}, "none of chosen/rejected"),
    ({"prompt": MSGS, "chosen": "c", "rejected": "r", "rating": "meh"}, "rating"),
])
def test_import_errors_name_file_line_and_field(write_jsonl, row, msg):
    with pytest.raises(DataError, match=msg):
        items_from_file(write_jsonl([row]))


def test_majority_export(db, users, items):
    db.add_pairs(items(3), k=3)
    ann, bob, cat = (users[n][0] for n in ("ann", "bob", "cat"))
    p1, p2, p3 = (p["id"] for p in db.pairs())
    # pair 1: a wins 2-1; strengths of the a-voters: significantly_better, slightly_better -> median (weaker)
    vote(db, ann, p1, "a", "significantly_better", a_safe=True, b_safe=False)
    vote(db, bob, p1, "a", "slightly_better", a_safe=True, b_safe=False)
    vote(db, cat, p1, "b", "significantly_better", a_safe=False, b_safe=True)
    # pair 2: b wins 1-0 (one vote); pair 3: tie 1-1 -> dropped
    vote(db, ann, p2, "b", "better", a_safe=True, b_safe=True)
    vote(db, bob, p3, "a")
    vote(db, cat, p3, "b")
    records, summary = export_records(db, "majority")
    assert summary["n_ties_dropped"] == 1 and summary["n_labels"] == 6 and summary["n_pairs"] == 2
    r1, r2 = records
    assert (r1.chosen, r1.rejected, r1.rating) == ("GOOD answer 0", "bad answer 0", "slightly_better")
    assert (r1.chosen_safe, r1.rejected_safe) == (True, False)  # a safe 2-1, b unsafe 2-1
    assert r1.id == "q0" and r1.category == "toy" and r1.prompt[0]["role"] == "system"
    assert (r2.chosen, r2.rejected, r2.rating) == ("bad answer 1", "GOOD answer 1", "better")
    for r in records:  # canonical: round-trips through the validator
        PreferencePair.from_dict(json.loads(json.dumps(r.to_dict())), "export")
    records, summary = export_records(db, "majority", min_votes=2)
    assert [r.id for r in records] == ["q0"] and summary["n_below_min_votes"] == 1
    per = export_records(db, "per-annotator")[0]
    assert len(per) == 6 and {r.id for r in per} >= {"q0/ann", "q0/bob", "q0/cat"}
    assert {r.id: r.chosen for r in per}["q0/cat"] == "bad answer 0"


def test_median_strength():
    assert median_strength(["better"]) == "better"
    assert median_strength(["significantly_better", "negligibly_better", "better"]) == "better"
    assert median_strength(["significantly_better", "better"]) == "better"


def _fake_registry(tmp_path, monkeypatch, published: list):
    class Pub:
        def __init__(self, name):
            self.dir = tmp_path / "reg" / name / "v1"
            self.dir.mkdir(parents=True)
            self.metrics = {}
            self.artifact = types.SimpleNamespace(ref=f"{name}@v1")

    class Registry:
        def __init__(self, root: Path):
            self.root = root

        @contextmanager
        def publish(self, name, kind, config, inputs, data_fingerprints):
            pub = Pub(name)
            yield pub
            published.append({"name": name, "kind": kind, "config": config, "fp": data_fingerprints,
                              "metrics": pub.metrics, "files": sorted(p.name for p in pub.dir.iterdir())})

    monkeypatch.setitem(sys.modules, "camelid.registry", types.SimpleNamespace(Registry=Registry))


def test_cli_end_to_end_with_publish(tmp_path, write_jsonl, monkeypatch, capsys):
    """import -> add-user -> label -> export --out --publish, against the registry's publish() contract."""
    dbp = str(tmp_path / "cli.sqlite")
    src = write_jsonl([{"prompt": MSGS, "response_a": f"A{i}", "response_b": f"B{i}"} for i in range(4)])
    assert cli.main(["import", str(src), "--k", "2", "--db", dbp]) == 0
    assert "queued 4 pair(s) with k=2" in capsys.readouterr().out
    assert cli.main(["add-user", "ann", "--db", dbp]) == 0
    token = capsys.readouterr().out.strip()
    db = AnnotationDB(dbp)
    ann = db.user_for_token(token)
    for p in db.pairs():
        vote(db, ann, p["id"], "b", "better")
    published = []
    _fake_registry(tmp_path, monkeypatch, published)
    out = tmp_path / "prefs.jsonl"
    assert cli.main(["export", "--db", dbp, "--out", str(out), "--publish", "prefs", "--min-votes", "1",
                     "--registry", str(tmp_path / "reg")]) == 0  # one label each of the k=2 asked for (#29)
    captured = capsys.readouterr()
    assert "published prefs@v1" in captured.out
    assert "warning: 4 exported pair(s) have fewer labels than the k they were queued with" in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["chosen"] for r in rows] == ["B0", "B1", "B2", "B3"]
    assert (tmp_path / "reg/prefs/v1/pairs.jsonl").read_text() == out.read_text()
    (pub,) = published
    assert pub["kind"] == "dataset" and pub["metrics"]["n_pairs"] == 4 and pub["files"] == ["pairs.jsonl"]
    assert "pairs.jsonl" in pub["fp"]


def test_cli_user_errors_are_camelid_errors(tmp_path, capsys):
    dbp = str(tmp_path / "e.sqlite")
    AnnotationDB(dbp)
    with pytest.raises(CamelidError, match="nothing to export"):
        cli.main(["export", "--db", dbp, "--out", str(tmp_path / "x.jsonl")])
    with pytest.raises(CamelidError, match="--out FILE and/or --publish"):
        cli.main(["export", "--db", dbp])
    with pytest.raises(CamelidError, match="give a FILE"):
        cli.main(["import", "--db", dbp])
    with pytest.raises(CamelidError, match="does not exist"):
        cli.main(["users", "--db", str(tmp_path / "no/such/dir/x.sqlite")])


def test_real_registry_publish(tmp_path, db, users, items):
    registry = pytest.importorskip("camelid.registry", reason="camelid.registry is not built yet (issue #2)")
    from camelid.eval.annotate.export import publish, to_jsonl

    db.add_pairs(items(2), k=1)
    ann = users["ann"][0]
    for p in db.pairs():
        vote(db, ann, p["id"], "a")
    records, summary = export_records(db)
    ref = publish(to_jsonl(records), summary, "prefs", tmp_path / "reg", db.path, 1)
    art = registry.Registry(tmp_path / "reg").resolve(ref)
    assert ref.startswith("prefs@")
    assert art.kind == "dataset" and art.manifest["metrics"]["n_pairs"] == 2
    assert (Path(art.path) / "pairs.jsonl").read_text() == to_jsonl(records)


def test_import_from_checkpoints(tmp_path, monkeypatch, write_jsonl, capsys):
    """One ref: two temperatures of one model; two refs: one sample from each (fake models module)."""
    calls = []

    def load_causal_lm(ref, registry):
        return f"model:{ref}", "tok"

    def generate(model, tok, convs, max_new_tokens, temperature, top_p, seed):
        calls.append((model, temperature))
        return [f"{model} T{temperature} #{i}" if i else "same" for i, _ in enumerate(convs)]

    monkeypatch.setitem(sys.modules, "camelid.models",
                        types.SimpleNamespace(load_causal_lm=load_causal_lm, generate=generate))
    _fake_registry(tmp_path, monkeypatch, [])
    prompts = write_jsonl([{"messages": MSGS, "is_safety": True, "id": f"p{i}"} for i in range(3)], "prompts.jsonl")
    dbp = str(tmp_path / "g.sqlite")
    assert cli.main(["import", "--from-checkpoints", "sft@v1", "--prompts", str(prompts), "--db", dbp,
                     "--temperatures", "0.5", "1.2"]) == 0
    assert calls == [("model:sft@v1", 0.5), ("model:sft@v1", 1.2)]
    out = capsys.readouterr().out
    assert "dropped 1 prompt(s)" in out and "queued 2 pair(s)" in out  # prompt 0 gave the same text twice
    calls.clear()
    assert cli.main(["import", "--from-checkpoints", "sft@v1", "ppo@v1", "--prompts", str(prompts),
                     "--db", dbp]) == 0
    assert calls == [("model:sft@v1", 0.7), ("model:ppo@v1", 0.7)]
    pairs = AnnotationDB(dbp).pairs()
    assert len(pairs) == 4
    assert pairs[-1]["meta"]["model_a"] == "sft@v1" and pairs[-1]["meta"]["model_b"] == "ppo@v1"
    assert pairs[-1]["response_a"] == "model:sft@v1 T0.7 #2"


def test_import_from_a_real_tiny_checkpoint(tmp_path, write_jsonl, capsys):
    """The real camelid.models path: a 1-layer Llama published as sft@v1, sampled at two temperatures."""
    models = pytest.importorskip("camelid.models", reason="camelid.models is not built yet")
    registry = pytest.importorskip("camelid.registry", reason="camelid.registry is not built yet")
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = models.train_tokenizer(["what is two plus three", "name a colour please", "red green blue"] * 20, 300)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                         pad_token_id=tok.pad_token_id))
    reg_root = tmp_path / "reg"
    with registry.Registry(reg_root).publish("sft", kind="sft", config={"tiny": True}) as pub:
        model.save_pretrained(pub.dir / "model")
        tok.save_pretrained(pub.dir / "model")
    prompts = write_jsonl([{"messages": [{"role": "user", "content": "what is two plus three"}]},
                           {"prompt": "name a colour please"}], "prompts.jsonl")
    dbp = str(tmp_path / "t.sqlite")
    assert cli.main(["import", "--from-checkpoints", "sft@v1", "--prompts", str(prompts), "--registry",
                     str(reg_root), "--max-new-tokens", "8", "--temperatures", "0.7", "1.5", "--db", dbp]) == 0
    out = capsys.readouterr().out
    pairs = AnnotationDB(dbp).pairs()
    # A random model may give two identical (or empty) samples for a prompt: those are dropped, and said so.
    dropped = 2 - len(pairs)
    assert len(pairs) >= 1 and f"queued {len(pairs)} pair(s)" in out
    assert (f"dropped {dropped} prompt(s)" in out) == bool(dropped)
    assert pairs[0]["meta"]["model_a"] == "sft@v1 T=0.7" and pairs[0]["meta"]["model_b"] == "sft@v1 T=1.5"
    assert all(p["response_a"] != p["response_b"] for p in pairs)


class _FullDiskFile:
    """A file on a disk with ``room`` characters left: the write that overflows it stores what fits, then
    fails with ENOSPC, as a real full disk does."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, s):
        if len(s) > self._room:
            self._f.write(s[: self._room])
            self._f.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(s)
        return self._f.write(s)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fill_disk(monkeypatch, room: int) -> None:
    """From now on every file opened for writing has ``room`` characters of disk left."""
    real_open = io.open

    def full_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _FullDiskFile(f, room) if any(c in mode for c in "wax+") else f

    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(builtins, "open", full_open)


def test_export_out_on_a_full_disk_keeps_the_previous_file(tmp_path, db, users, items, monkeypatch):
    db.add_pairs(items(6), k=1)
    ann = users["ann"][0]
    pids = [p["id"] for p in db.pairs()]
    for pid in pids[:2]:
        vote(db, ann, pid, "a")
    out = tmp_path / "exports" / "prefs.jsonl"
    out.parent.mkdir()
    argv = ["export", "--db", str(db.path), "--out", str(out)]
    assert cli.main(argv) == 0
    previous = out.read_bytes()
    for pid in pids[2:]:
        vote(db, ann, pid, "b")
    fill_disk(monkeypatch, room=len(previous) + 10)  # a row and a bit of the new 6-row export fit
    with pytest.raises((CamelidError, OSError), match="No space left on device") as failure:
        cli.main(argv)
    monkeypatch.undo()
    assert out.read_bytes() == previous  # not a torn mix of old and new
    assert os.listdir(out.parent) == ["prefs.jsonl"]  # no temporary file left behind
    assert isinstance(failure.value, CamelidError) and str(out) in str(failure.value)
    assert cli.main(argv) == 0 and len(out.read_text().splitlines()) == 6  # with room again it works


def test_export_reads_one_snapshot_while_others_label_and_import(db, users, items, monkeypatch):
    """Before every SELECT the export runs, another process imports a pair and labels everything open."""
    db.add_pairs(items(3), k=5)
    for p in db.pairs():
        vote(db, users["ann"][0], p["id"], "a")
    other, bob = AnnotationDB(db.path), users["bob"][0]
    fresh = iter(items(40, prefix="late"))

    def import_and_label():
        other.add_pairs([next(fresh)], k=5)
        while (s := other.next_pair(bob)) is not None:
            side = "left" if "GOOD" in s.left else "right"  # agrees with ann: no ties
            other.submit(bob, s.pair_id, preferred=side, strength="better", left_safe=True, right_safe=True)

    class Interleaved:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith("SELECT"):
                import_and_label()
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    real_connect = db._connect

    @contextmanager
    def interleaved_connect():
        with real_connect() as conn:
            yield Interleaved(conn)

    monkeypatch.setattr(db, "_connect", interleaved_connect)
    per, summary = export_records(db, "per-annotator")
    assert len(per) == summary["n_labels"] and len({r.id for r in per}) == len(per)
    labelled = {r.id.split("/")[0] for r in per}
    assert labelled == {r.id[:-4] for r in per if r.id.endswith("/bob")}  # bob had labelled all of them
    majority_records, summary = export_records(db, "majority")  # a later snapshot: more pairs
    assert len(majority_records) == summary["n_pairs"] and summary["n_ties_dropped"] == 0
    assert labelled < {r.id for r in majority_records}


def test_every_stored_note_reaches_an_export(db, users, items, write_jsonl, tmp_path):
    db.add_pairs(items(3), k=3)
    ann, bob, cat = (users[n][0] for n in ("ann", "bob", "cat"))
    p1, p2, p3 = (p["id"] for p in db.pairs())
    vote(db, ann, p1, "a", note="clear win")
    vote(db, bob, p1, "a")  # no note
    vote(db, cat, p1, "b", note="a invents a source")  # outvoted, and the most useful note
    vote(db, ann, p2, "a", note="tie one")
    vote(db, bob, p2, "b", note="tie two")  # a tie: no majority record, but per-annotator keeps both
    vote(db, cat, p3, "b", note="only label")
    stored = {lab["note"] for lab in db.labels() if lab["note"]}
    assert len(stored) == 5

    per, _ = export_records(db, "per-annotator")
    assert {n["note"] for r in per for n in r.to_dict()["notes"]} == stored
    assert {r.id: r.to_dict()["notes"] for r in per}["q0/cat"] == [{"annotator": "cat", "note": "a invents a source"}]
    majority_records, _ = export_records(db, "majority")
    notes = {r.id: r.to_dict()["notes"] for r in majority_records}
    assert notes["q0"] == [{"annotator": "ann", "note": "clear win"}, {"annotator": "cat", "note": "a invents a source"}]
    assert notes["q2"] == [{"annotator": "cat", "note": "only label"}] and "q1" not in notes

    out = tmp_path / "per.jsonl"
    assert cli.main(["export", "--db", str(db.path), "--out", str(out), "--mode", "per-annotator"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {n["note"] for r in rows for n in r["notes"]} == stored
    for r in rows:  # still a canonical preference pair for every reader
        PreferencePair.from_dict(r, "export")


def test_cli_reset_token_keeps_the_role(tmp_path, capsys):
    dbp = str(tmp_path / "u.sqlite")
    assert cli.main(["add-user", "lead", "--admin", "--db", dbp]) == 0
    capsys.readouterr()
    assert cli.main(["add-user", "lead", "--reset-token", "--db", dbp]) == 0
    out = capsys.readouterr()
    assert AnnotationDB(dbp).user_for_token(out.out.strip()).is_admin
    assert out.err.startswith("admin lead")
    assert cli.main(["add-user", "lead", "--reset-token", "--no-admin", "--db", dbp]) == 0  # demote on request
    out = capsys.readouterr()
    assert not AnnotationDB(dbp).user_for_token(out.out.strip()).is_admin and out.err.startswith("annotator lead")
    assert cli.main(["add-user", "fresh", "--db", dbp]) == 0  # a new user without --admin is an annotator
    assert not AnnotationDB(dbp).user_for_token(capsys.readouterr().out.strip()).is_admin


def test_export_publish_on_a_full_disk_is_one_line_and_publishes_nothing(tmp_path, db, users, items, monkeypatch,
                                                                         capsys):
    from camelid.cli import main as camelid
    from camelid.registry import Registry

    db.add_pairs(items(4), k=1)
    for p in db.pairs():
        vote(db, users["ann"][0], p["id"], "a")
    reg = tmp_path / "registry"
    argv = ["annotate", "export", "--db", str(db.path), "--publish", "prefs", "--registry", str(reg)]
    assert camelid(argv) == 0 and Registry(reg).versions("prefs") == ["v1"]
    capsys.readouterr()
    fill_disk(monkeypatch, room=100)  # less than one exported row
    assert camelid(argv) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("camelid annotate: error: could not publish prefs to "), err
    assert "No space left on device; nothing was published (the registry is unchanged)" in err
    assert Registry(reg).versions("prefs") == ["v1"]
    assert not [p for p in (reg / ".staging").iterdir()]  # no staged leftovers
    assert camelid(argv) == 0 and Registry(reg).versions("prefs") == ["v1", "v2"]  # with room again it works
