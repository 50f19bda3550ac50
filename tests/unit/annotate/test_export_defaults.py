"""Issue #29: `annotate export` waits for a pair's own k labels unless told otherwise, and the commands that
read a database refuse one that does not exist instead of creating it empty."""

from __future__ import annotations

import pytest

from camelid.cli import main as camelid_main
from camelid.errors import CamelidError
from camelid.eval.annotate import cli
from camelid.eval.annotate.db import AnnotationDB

MSGS = [{"role": "user", "content": "Hi?"}]


def _label_once(db: AnnotationDB, token: str) -> None:
    ann = db.user_for_token(token)
    while (s := db.next_pair(ann)) is not None:
        db.submit(ann, s.pair_id, preferred="left", strength="better", left_safe=True, right_safe=True)


def test_export_waits_for_the_k_labels_a_pair_was_queued_with(tmp_path, write_jsonl, capsys):
    dbp = str(tmp_path / "k.sqlite")
    assert cli.main(["import", str(write_jsonl([{"prompt": MSGS, "response_a": "A", "response_b": "B"}])),
                     "--k", "2", "--db", dbp]) == 0
    assert cli.main(["import", str(write_jsonl([{"prompt": MSGS, "response_a": "C", "response_b": "D"}], "one.jsonl")),
                     "--k", "1", "--db", dbp]) == 0
    assert cli.main(["add-user", "ann", "--db", dbp]) == 0
    _label_once(AnnotationDB(dbp), capsys.readouterr().out.strip().splitlines()[-1])
    out = tmp_path / "prefs.jsonl"
    assert cli.main(["export", "--db", dbp, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 1  # the k=1 pair; the k=2 pair has 1 label of 2
    assert "held back 1 labelled pair(s) without the k labels it was queued with yet" in said
    assert cli.main(["export", "--db", dbp, "--out", str(out), "--min-votes", "1"]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert "warning: 1 exported pair(s) have fewer labels than the k" in capsys.readouterr().err


def test_export_with_only_unfinished_pairs_says_why_and_how(tmp_path, write_jsonl, capsys):
    dbp = str(tmp_path / "k.sqlite")
    cli.main(["import", str(write_jsonl([{"prompt": MSGS, "response_a": "A", "response_b": "B"}])), "--k", "2",
              "--db", dbp])
    cli.main(["add-user", "ann", "--db", dbp])
    _label_once(AnnotationDB(dbp), capsys.readouterr().out.strip().splitlines()[-1])
    with pytest.raises(CamelidError, match=r"no pair has the k labels it was queued with .*1 labelled pair\(s\) "
                                           r"wait for more labels; --min-votes 1 exports them now"):
        cli.main(["export", "--db", dbp, "--out", str(tmp_path / "x.jsonl")])
    with pytest.raises(CamelidError, match="--min-votes must be 1 or more"):
        cli.main(["export", "--db", dbp, "--out", str(tmp_path / "x.jsonl"), "--min-votes", "0"])


@pytest.mark.parametrize("command", [["serve"], ["export", "--out", "x.jsonl"], ["stats"], ["users"]])
def test_a_missing_database_is_refused_not_created(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)  # serve must not get this far
    typo = tmp_path / "typo.sqlite"
    assert camelid_main(["annotate", *command, "--db", str(typo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"camelid annotate: error: annotation database {typo} does not exist; create it with `camelid "
                   f"annotate import FILE --db {typo}` (pairs to label) and `camelid annotate add-user NAME --db "
                   f"{typo}` (annotators)")
    assert not typo.exists()
