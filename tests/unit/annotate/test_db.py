"""The SQLite layer: queue rules (K, never twice), per-annotator order, skip/undo, durability, races."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import pytest

from camelid.eval.annotate.db import AnnotationDB, Conflict, InvalidInput, NotFound


def label(db, user, served, *, good: bool = True, strength="better"):
    """Prefer the GOOD response (response_a) or the bad one, whichever side it is on."""
    good_left = "GOOD" in served.left
    side = "left" if good_left == good else "right"
    db.submit(user, served.pair_id, preferred=side, strength=strength, left_safe=True, right_safe=False)


def test_wal_mode_and_schema(db):
    conn = sqlite3.connect(db.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError):  # the unique constraint exists below the Python checks
        conn.execute("INSERT INTO annotations (pair_id, user_id, preferred, strength, a_safe, b_safe, left_is_a,"
                     " created) VALUES (1, 1, 'a', 'better', 1, 1, 1, 0), (1, 1, 'b', 'better', 1, 1, 1, 0)")


def test_k_annotators_per_pair_and_never_twice(db, users, items):
    db.add_pairs(items(2), k=2)
    ann, bob, cat = (users[n][0] for n in ("ann", "bob", "cat"))
    seen = {}
    for u in (ann, bob):
        ids = []
        while (s := db.next_pair(u)) is not None:
            ids.append(s.pair_id)
            label(db, u, s)
        seen[u.name] = ids
    assert sorted(seen["ann"]) == sorted(seen["bob"]) and len(seen["ann"]) == 2  # each pair once per annotator
    assert db.next_pair(cat) is None  # both pairs have their K=2 labels
    assert db.progress(cat) == {"done": 0, "skipped": 0, "remaining": 0}
    assert db.counts()["complete_pairs"] == 2


def test_reservation_counts_towards_k_until_lease_expires(tmp_path, items):
    db = AnnotationDB(tmp_path / "l.sqlite", lease_seconds=60)
    a, b = (db.user_for_token(db.add_user(n)) for n in ("a", "b"))
    db.add_pairs(items(1), k=1)
    s = db.next_pair(a, now=1000.0)
    assert db.next_pair(b, now=1010.0) is None  # reserved by a
    s2 = db.next_pair(b, now=1000.0 + 61)  # a walked away: the lease ran out
    assert s2 is not None and s2.pair_id == s.pair_id


def test_order_is_random_per_annotator_stored_and_mapped_back(fast_dir, items):
    db = AnnotationDB(fast_dir / "o.sqlite")
    db.add_pairs(items(40), k=1)
    u = db.user_for_token(db.add_user("u"))
    lefts = []
    for _ in range(40):
        s = db.next_pair(u)
        again = db.next_pair(u)  # a page reload shows the same pair in the same order
        assert (again.pair_id, again.left, again.right) == (s.pair_id, s.left, s.right)
        lefts.append(s.left_is_a)
        # Pick whatever is on the RIGHT; the stored label must name the canonical side correctly.
        db.submit(u, s.pair_id, preferred="right", strength="better", left_safe=True, right_safe=False)
    assert 5 < sum(lefts) < 35  # both orders occur (P(fail) ~ 1e-6)
    for lab, left_is_a in zip(db.labels(), lefts):
        assert lab["preferred"] == ("b" if left_is_a else "a")
        assert (lab["a_safe"], lab["b_safe"]) == ((True, False) if left_is_a else (False, True))


def test_submit_validation_and_conflicts(db, users, items):
    db.add_pairs(items(2), k=1)
    ann, bob = users["ann"][0], users["bob"][0]
    s = db.next_pair(ann)
    ok = {"preferred": "left", "strength": "better", "left_safe": True, "right_safe": True}
    with pytest.raises(NotFound):
        db.submit(ann, 999, **ok)
    with pytest.raises(Conflict, match="not served"):
        db.submit(bob, s.pair_id, **ok)
    for bad in ({"strength": "much_better"}, {"preferred": "middle"}, {"note": "x" * 2001}, {"left_safe": "yes"}):
        with pytest.raises(InvalidInput):
            db.submit(ann, s.pair_id, **(ok | bad))
    db.submit(ann, s.pair_id, **ok, note="x" * 2000)
    with pytest.raises(Conflict, match="already labelled"):
        db.submit(ann, s.pair_id, **ok)
    assert len(db.labels()) == 1


def test_skip_and_undo(db, users, items):
    db.add_pairs(items(3), k=1)
    ann = users["ann"][0]
    first = db.next_pair(ann)
    label(db, ann, first)
    second = db.next_pair(ann)
    db.skip(ann, second.pair_id)
    with pytest.raises(Conflict):
        db.skip(ann, second.pair_id)
    third = db.next_pair(ann)
    assert third.pair_id not in (first.pair_id, second.pair_id)
    assert db.progress(ann) == {"done": 1, "skipped": 1, "remaining": 1}

    assert db.undo(ann) == {"kind": "skip", "pair_id": second.pair_id}
    assert db.next_pair(ann).pair_id == second.pair_id  # the undone pair comes back first
    assert db.undo(ann) == {"kind": "label", "pair_id": first.pair_id}
    back = db.next_pair(ann)
    assert (back.pair_id, back.left) == (first.pair_id, first.left)  # same order as before
    assert db.labels() == []
    label(db, ann, back)  # may be labelled again after the undo
    assert len(db.labels()) == 1
    db.undo(ann)
    with pytest.raises(Conflict, match="nothing to undo"):
        db.undo(ann)


def test_users(db):
    token = db.add_user("alice")
    assert db.user_for_token(token).name == "alice"
    assert db.user_for_token("nope") is None and db.user_for_token("") is None
    with pytest.raises(Conflict):
        db.add_user("alice")
    new = db.add_user("alice", reset_token=True)
    assert db.user_for_token(token) is None and db.user_for_token(new).name == "alice"
    for bad in ("", "../x", "a b", "x" * 65):
        with pytest.raises(InvalidInput):
            db.add_user(bad)
    raw = sqlite3.connect(db.path).execute("SELECT token_sha256 FROM users").fetchone()[0]
    assert new not in raw  # only a hash is stored


def test_restart_loses_nothing(tmp_path, items):
    path = tmp_path / "r.sqlite"
    db = AnnotationDB(path)
    u = db.user_for_token(db.add_user("u"))
    db.add_pairs(items(3), k=1)
    s1 = db.next_pair(u)
    label(db, u, s1)
    open_pair = db.next_pair(u)
    db2 = AnnotationDB(path)  # a new process would do exactly this
    assert len(db2.labels()) == 1
    again = db2.next_pair(u)
    assert (again.pair_id, again.left) == (open_pair.pair_id, open_pair.left)


def test_concurrent_annotators_exact_counts(fast_dir, items):
    """8 annotators x 200 labels in parallel threads, plus a replay of every label: exactly 1600 stored."""
    db = AnnotationDB(fast_dir / "c.sqlite")
    n_users, n_pairs = 8, 200
    db.add_pairs(items(n_pairs), k=n_users)
    users = [db.user_for_token(db.add_user(f"u{i}")) for i in range(n_users)]
    conflicts = Counter()
    errors = []

    def work(u):
        try:
            while (s := db.next_pair(u)) is not None:
                args = {"preferred": "left", "strength": "better", "left_safe": True, "right_safe": True}
                db.submit(u, s.pair_id, **args)
                try:
                    db.submit(u, s.pair_id, **args)  # a replay must never count twice
                except Conflict:
                    conflicts[u.name] += 1
        except Exception as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    labels = db.labels()
    assert len(labels) == n_users * n_pairs
    assert Counter(lab["annotator"] for lab in labels) == {u.name: n_pairs for u in users}
    assert len({(lab["pair_id"], lab["annotator"]) for lab in labels}) == n_users * n_pairs
    assert sum(conflicts.values()) == n_users * n_pairs


def test_reset_token_keeps_the_role_unless_told(db):
    old = db.add_user("lead", admin=True)
    new = db.add_user("lead", reset_token=True)
    assert db.user_for_token(old) is None and db.user_for_token(new).is_admin
    assert not db.user_for_token(db.add_user("lead", reset_token=True, admin=False)).is_admin
    assert not db.user_for_token(db.add_user("lead", reset_token=True)).is_admin
    assert db.user_for_token(db.add_user("lead", reset_token=True, admin=True)).is_admin


def test_pair_ids_sqlite_cannot_hold_are_not_found(db, users, items):
    db.add_pairs(items(1), k=1)
    ann = users["ann"][0]
    for pid in (2**63, 2**70, -(2**70)):
        with pytest.raises(NotFound):
            db.submit(ann, pid, preferred="left", strength="better", left_safe=True, right_safe=True)
        with pytest.raises(NotFound):
            db.skip(ann, pid)
