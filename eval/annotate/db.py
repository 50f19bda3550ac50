"""SQLite store for the annotation app: users, the pair queue, per-annotator order, labels, skips.

Every write runs in its own ``BEGIN IMMEDIATE`` transaction on a fresh connection, so concurrent
annotators (server threads, or several server processes on one file) serialise on SQLite's write
lock instead of racing. ``UNIQUE(pair_id, user_id)`` on labels is the last line of defence: a replayed
or double-clicked submission can never be counted twice. WAL + ``synchronous=FULL`` means a
committed label survives a killed server.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from camelid.data.records import RATINGS
from camelid.errors import CamelidError

NOTE_MAX_CHARS = 2000
# SQLite integers are signed 64-bit; a bigger id cannot name a row (and would raise OverflowError).
SQLITE_MAX_INT = 2**63 - 1
# A pair served to an annotator stays reserved (counts towards its K) for this long without a label.
LEASE_SECONDS = 30 * 60
USER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY,
    content_sha256 TEXT NOT NULL UNIQUE,
    prompt TEXT NOT NULL,            -- JSON list of {{role, content}}
    response_a TEXT NOT NULL,
    response_b TEXT NOT NULL,
    k INTEGER NOT NULL CHECK (k >= 1),
    meta TEXT NOT NULL DEFAULT '{{}}',  -- JSON: source, category, id, origin, models ...
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    left_is_a INTEGER NOT NULL CHECK (left_is_a IN (0, 1)),
    served REAL NOT NULL,
    PRIMARY KEY (pair_id, user_id)
);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    preferred TEXT NOT NULL CHECK (preferred IN ('a', 'b')),
    strength TEXT NOT NULL CHECK (strength IN ({", ".join(repr(r) for r in RATINGS)})),
    a_safe INTEGER NOT NULL CHECK (a_safe IN (0, 1)),
    b_safe INTEGER NOT NULL CHECK (b_safe IN (0, 1)),
    note TEXT NOT NULL DEFAULT '' CHECK (length(note) <= {NOTE_MAX_CHARS}),
    left_is_a INTEGER NOT NULL,
    seconds REAL,                    -- time from serving the pair to the label
    created REAL NOT NULL,
    UNIQUE (pair_id, user_id)
);
CREATE TABLE IF NOT EXISTS skips (
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    created REAL NOT NULL,
    PRIMARY KEY (pair_id, user_id)
);
CREATE INDEX IF NOT EXISTS annotations_user ON annotations (user_id, created);
CREATE INDEX IF NOT EXISTS annotations_pair ON annotations (pair_id);
CREATE INDEX IF NOT EXISTS assignments_user ON assignments (user_id, served);
"""


class NotFound(CamelidError):
    """The pair or user does not exist (HTTP 404)."""


class Conflict(CamelidError):
    """The action clashes with what is stored: duplicate, replayed, not yours, nothing to undo (409)."""


class InvalidInput(CamelidError):
    """A field has a bad value (HTTP 422)."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class Served:
    """A pair as one annotator sees it: ``left``/``right`` already in that annotator's order."""

    pair_id: int
    prompt: list[dict]
    left: str
    right: str
    left_is_a: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def pair_fingerprint(prompt: list[dict], a: str, b: str) -> str:
    """Same prompt and same two responses (in either order) = same pair."""
    blob = json.dumps([prompt, sorted([a, b])], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class AnnotationDB:
    """All reads and writes of the annotation database. Safe to share between threads."""

    def __init__(self, path: str | Path, *, lease_seconds: float = LEASE_SECONDS):
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        if self.path.parent and not self.path.parent.exists():
            raise CamelidError(f"folder {self.path.parent} does not exist (for database {self.path})")
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; takes the write lock up front so read-then-write cannot race."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._connect() as conn:
            return conn.execute(sql, args).fetchall()

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, name: str, *, admin: bool | None = None, reset_token: bool = False) -> str:
        """Create a user (or give an existing one a new token); returns the token, shown once.

        ``admin=None`` keeps an existing user's role (a new user is an annotator); True/False sets it.
        """
        if not USER_NAME_RE.match(name or ""):
            raise InvalidInput(f"user name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        token = secrets.token_urlsafe(24)
        with self._write() as conn:
            row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row and not reset_token:
                raise Conflict(f"user {name!r} exists; use --reset-token to give them a new token")
            if row:
                conn.execute("UPDATE users SET token_sha256 = ?, is_admin = COALESCE(?, is_admin) WHERE id = ?",
                             (hash_token(token), None if admin is None else int(admin), row["id"]))
            else:
                conn.execute("INSERT INTO users (name, token_sha256, is_admin, created) VALUES (?, ?, ?, ?)",
                             (name, hash_token(token), int(bool(admin)), time.time()))
        return token

    def user_for_token(self, token: str | None) -> User | None:
        if not token:
            return None
        rows = self._read("SELECT id, name, is_admin FROM users WHERE token_sha256 = ?", (hash_token(token),))
        return User(rows[0]["id"], rows[0]["name"], bool(rows[0]["is_admin"])) if rows else None

    def users(self) -> list[User]:
        with self.snapshot() as snap:
            return snap.users()

    # -- queue ----------------------------------------------------------------------------------

    def add_pairs(self, items: list[dict], *, k: int = 1) -> tuple[int, int]:
        """Queue pairs ``{prompt, response_a, response_b, meta}``; returns (added, already queued)."""
        if k < 1:
            raise InvalidInput(f"--k must be at least 1, got {k}")
        added = dup = 0
        now = time.time()
        with self._write() as conn:  # all or nothing
            for it in items:
                fp = pair_fingerprint(it["prompt"], it["response_a"], it["response_b"])
                cur = conn.execute(
                    "INSERT OR IGNORE INTO pairs (content_sha256, prompt, response_a, response_b, k, meta, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (fp, json.dumps(it["prompt"], ensure_ascii=False), it["response_a"], it["response_b"], k,
                     json.dumps(it.get("meta") or {}, ensure_ascii=False), now))
                added += cur.rowcount
                dup += 1 - cur.rowcount
        return added, dup

    _OPEN = ("NOT EXISTS (SELECT 1 FROM annotations n WHERE n.pair_id = s.pair_id AND n.user_id = s.user_id)"
             " AND NOT EXISTS (SELECT 1 FROM skips k WHERE k.pair_id = s.pair_id AND k.user_id = s.user_id)")

    def next_pair(self, user: User, *, now: float | None = None) -> Served | None:
        """The pair this annotator should label next (reserving it), or None when their queue is empty."""
        now = time.time() if now is None else now
        with self._write() as conn:
            # 1. Something already served to them and still open (page reload, or an undone label).
            row = conn.execute(
                f"SELECT s.pair_id, s.left_is_a FROM assignments s WHERE s.user_id = ? AND {self._OPEN}"
                " ORDER BY s.served DESC LIMIT 1", (user.id,)).fetchone()
            if row is None:
                # 2. The oldest pair they have never seen whose K is not yet taken by labels + live reservations.
                row = conn.execute(
                    f"""SELECT p.id AS pair_id FROM pairs p
                    WHERE NOT EXISTS (SELECT 1 FROM assignments x WHERE x.pair_id = p.id AND x.user_id = ?)
                      AND (SELECT COUNT(*) FROM annotations n WHERE n.pair_id = p.id)
                        + (SELECT COUNT(*) FROM assignments s WHERE s.pair_id = p.id AND s.served > ?
                           AND {self._OPEN}) < p.k
                    ORDER BY p.id LIMIT 1""", (user.id, now - self.lease_seconds)).fetchone()
                if row is None:
                    return None
                left_is_a = secrets.randbelow(2)
                conn.execute("INSERT INTO assignments (pair_id, user_id, left_is_a, served) VALUES (?, ?, ?, ?)",
                             (row["pair_id"], user.id, left_is_a, now))
            else:
                left_is_a = row["left_is_a"]
                conn.execute("UPDATE assignments SET served = ? WHERE pair_id = ? AND user_id = ?",
                             (now, row["pair_id"], user.id))
            p = conn.execute("SELECT prompt, response_a, response_b FROM pairs WHERE id = ?",
                             (row["pair_id"],)).fetchone()
        a, b = p["response_a"], p["response_b"]
        return Served(row["pair_id"], json.loads(p["prompt"]), a if left_is_a else b, b if left_is_a else a,
                      bool(left_is_a))

    def _assignment(self, conn: sqlite3.Connection, user: User, pair_id: int) -> sqlite3.Row:
        if not -SQLITE_MAX_INT <= pair_id <= SQLITE_MAX_INT \
                or conn.execute("SELECT 1 FROM pairs WHERE id = ?", (pair_id,)).fetchone() is None:
            raise NotFound(f"pair {pair_id} does not exist")
        row = conn.execute("SELECT left_is_a, served FROM assignments WHERE pair_id = ? AND user_id = ?",
                           (pair_id, user.id)).fetchone()
        if row is None:
            raise Conflict(f"pair {pair_id} was not served to {user.name}; fetch the next pair first")
        if conn.execute("SELECT 1 FROM annotations WHERE pair_id = ? AND user_id = ?",
                        (pair_id, user.id)).fetchone():
            raise Conflict(f"{user.name} already labelled pair {pair_id} (a repeated submission is ignored)")
        if conn.execute("SELECT 1 FROM skips WHERE pair_id = ? AND user_id = ?", (pair_id, user.id)).fetchone():
            raise Conflict(f"{user.name} skipped pair {pair_id}; undo the skip to label it")
        return row

    def submit(self, user: User, pair_id: int, *, preferred: str, strength: str, left_safe: bool,
               right_safe: bool, note: str = "", now: float | None = None) -> None:
        """Store one label. ``preferred`` is the side the annotator saw: 'left' or 'right'."""
        if preferred not in ("left", "right"):
            raise InvalidInput(f"preferred must be 'left' or 'right', got {preferred!r}")
        if strength not in RATINGS:
            raise InvalidInput(f"strength must be one of {', '.join(RATINGS)}, got {strength!r}")
        if not isinstance(left_safe, bool) or not isinstance(right_safe, bool):
            raise InvalidInput("left_safe and right_safe must be true or false")
        if not isinstance(note, str) or len(note) > NOTE_MAX_CHARS:
            raise InvalidInput(f"note must be text of at most {NOTE_MAX_CHARS} characters")
        now = time.time() if now is None else now
        with self._write() as conn:
            asg = self._assignment(conn, user, pair_id)
            left_is_a = bool(asg["left_is_a"])
            pref_a = (preferred == "left") == left_is_a
            a_safe, b_safe = (left_safe, right_safe) if left_is_a else (right_safe, left_safe)
            try:
                conn.execute(
                    "INSERT INTO annotations (pair_id, user_id, preferred, strength, a_safe, b_safe, note,"
                    " left_is_a, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (pair_id, user.id, "a" if pref_a else "b", strength, int(a_safe), int(b_safe), note.strip(),
                     int(left_is_a), max(0.0, now - asg["served"]), now))
            except sqlite3.IntegrityError as e:  # only reachable if the checks above were bypassed
                raise Conflict(f"{user.name} already labelled pair {pair_id}") from e

    def skip(self, user: User, pair_id: int, *, now: float | None = None) -> None:
        with self._write() as conn:
            self._assignment(conn, user, pair_id)
            conn.execute("INSERT INTO skips (pair_id, user_id, created) VALUES (?, ?, ?)",
                         (pair_id, user.id, time.time() if now is None else now))

    def undo(self, user: User) -> dict:
        """Take back this annotator's most recent label or skip; that pair is served to them next."""
        with self._write() as conn:
            last = conn.execute(
                "SELECT 'label' AS kind, pair_id, created FROM annotations WHERE user_id = :u"
                " UNION ALL SELECT 'skip', pair_id, created FROM skips WHERE user_id = :u"
                " ORDER BY created DESC LIMIT 1", {"u": user.id}).fetchone()
            if last is None:
                raise Conflict("nothing to undo")
            table = "annotations" if last["kind"] == "label" else "skips"
            conn.execute(f"DELETE FROM {table} WHERE pair_id = ? AND user_id = ?", (last["pair_id"], user.id))
            conn.execute("UPDATE assignments SET served = ? WHERE pair_id = ? AND user_id = ?",
                         (time.time(), last["pair_id"], user.id))
        return {"kind": last["kind"], "pair_id": last["pair_id"]}

    # -- reading --------------------------------------------------------------------------------

    def progress(self, user: User) -> dict:
        """Counts for the annotator's progress bar."""
        with self._connect() as conn:
            done = conn.execute("SELECT COUNT(*) FROM annotations WHERE user_id = ?", (user.id,)).fetchone()[0]
            skipped = conn.execute("SELECT COUNT(*) FROM skips WHERE user_id = ?", (user.id,)).fetchone()[0]
            # Pairs still open to them: not labelled or skipped by them, and K not yet reached by labels.
            left = conn.execute(
                """SELECT COUNT(*) FROM pairs p
                WHERE NOT EXISTS (SELECT 1 FROM annotations n WHERE n.pair_id = p.id AND n.user_id = :u)
                  AND NOT EXISTS (SELECT 1 FROM skips k WHERE k.pair_id = p.id AND k.user_id = :u)
                  AND ((SELECT COUNT(*) FROM annotations n WHERE n.pair_id = p.id) < p.k
                       OR EXISTS (SELECT 1 FROM assignments s WHERE s.pair_id = p.id AND s.user_id = :u))""",
                {"u": user.id}).fetchone()[0]
        return {"done": done, "skipped": skipped, "remaining": left}

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One read transaction: all reads through it see the database as of its first read, whatever
        annotators and imports commit meanwhile (WAL gives readers a fixed snapshot)."""
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                yield Snapshot(conn)
            finally:
                conn.execute("ROLLBACK")  # read only: nothing to keep

    def pairs(self) -> list[dict]:
        with self.snapshot() as snap:
            return snap.pairs()

    def labels(self) -> list[dict]:
        """Every label with its annotator's name, oldest first (canonical a/b sides)."""
        with self.snapshot() as snap:
            return snap.labels()

    def counts(self) -> dict:
        with self.snapshot() as snap:
            return snap.counts()


class Snapshot:
    """Reads from one open read transaction of an `AnnotationDB` (see `AnnotationDB.snapshot`)."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def pairs(self) -> list[dict]:
        return [{"id": r["id"], "prompt": json.loads(r["prompt"]), "response_a": r["response_a"],
                 "response_b": r["response_b"], "k": r["k"], "meta": json.loads(r["meta"])}
                for r in self._conn.execute("SELECT * FROM pairs ORDER BY id")]

    def labels(self) -> list[dict]:
        """Every label with its annotator's name, oldest first (canonical a/b sides)."""
        rows = self._conn.execute(
            "SELECT n.pair_id, u.name AS annotator, n.preferred, n.strength, n.a_safe, n.b_safe, n.note,"
            " n.seconds, n.created FROM annotations n JOIN users u ON u.id = n.user_id ORDER BY n.created, n.id")
        return [dict(r) | {"a_safe": bool(r["a_safe"]), "b_safe": bool(r["b_safe"])} for r in rows]

    def users(self) -> list[User]:
        return [User(r["id"], r["name"], bool(r["is_admin"]))
                for r in self._conn.execute("SELECT id, name, is_admin FROM users ORDER BY name")]

    def counts(self) -> dict:
        one = lambda sql: self._conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "pairs": one("SELECT COUNT(*) FROM pairs"),
            "labels": one("SELECT COUNT(*) FROM annotations"),
            "skips": one("SELECT COUNT(*) FROM skips"),
            "complete_pairs": one("SELECT COUNT(*) FROM pairs p WHERE"
                                  " (SELECT COUNT(*) FROM annotations n WHERE n.pair_id = p.id) >= p.k"),
            "annotators": one("SELECT COUNT(*) FROM users"),
        }
