"""Fixtures for the annotation app tests: a fresh database, users, and a file of pairs."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from camelid.eval.annotate.db import AnnotationDB


def make_items(n: int, *, prefix: str = "q") -> list[dict]:
    """n distinct queue items; response_a is always the 'good' one (contains 'GOOD')."""
    return [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"{prefix} {i}?"}],
             "response_a": f"GOOD answer {i}", "response_b": f"bad answer {i}",
             "meta": {"id": f"{prefix}{i}", "category": "toy"}} for i in range(n)]


@pytest.fixture
def items():
    return make_items


@pytest.fixture
def fast_dir(tmp_path):
    """A folder on tmpfs when there is one: the production fsync settings, without disk latency in tests
    that write thousands of transactions on a busy machine."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and shm.stat().st_mode & 0o002):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="camelid-annotate-", dir=shm))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def db(tmp_path) -> AnnotationDB:
    return AnnotationDB(tmp_path / "a.sqlite")


@pytest.fixture
def users(db):
    """Three annotators and an admin: {name: (User, token)}."""
    out = {}
    for name, admin in (("ann", False), ("bob", False), ("cat", False), ("root", True)):
        token = db.add_user(name, admin=admin)
        out[name] = (db.user_for_token(token), token)
    return out


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="rows.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path
    return write
