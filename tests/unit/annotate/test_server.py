"""A real `camelid annotate serve` process: parallel annotators over HTTP, then kill -9 and restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from camelid.eval.annotate import cli
from camelid.eval.annotate.db import AnnotationDB

N_ANNOTATORS, N_PAIRS = 8, 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_path, port):
    proc = subprocess.Popen([sys.executable, "-m", "camelid.eval.annotate.cli", "serve", "--db", str(db_path),
                             "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/me", timeout=1).status_code == 401:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("server did not start in 20 s")


def test_parallel_annotators_then_kill_and_restart(tmp_path, fast_dir, items):
    db = AnnotationDB(fast_dir / "s.sqlite")
    db.add_pairs(items(N_PAIRS), k=N_ANNOTATORS)
    tokens = {f"u{i}": db.add_user(f"u{i}") for i in range(N_ANNOTATORS)}
    admin = db.add_user("boss", admin=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(db.path, port)
    try:
        statuses: Counter = Counter()
        errors = []

        def annotate(token):
            try:
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
                    while (pair := c.get("/api/next").json()["pair"]) is not None:
                        good_left = "GOOD" in pair["left"]
                        body = {"pair_id": pair["id"], "preferred": "left" if good_left else "right",
                                "strength": "better", "left_safe": True, "right_safe": True}
                        statuses[c.post("/api/submit", json=body).status_code] += 1
                        statuses[c.post("/api/submit", json=body).status_code] += 1  # replay
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=annotate, args=(t,)) for t in tokens.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert statuses == {200: N_ANNOTATORS * N_PAIRS, 409: N_ANNOTATORS * N_PAIRS}
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no graceful shutdown: committed labels must survive anyway
        proc.wait(10)

    proc = start_server(db.path, port)
    try:
        stats = httpx.get(f"{base}/api/admin/stats", headers={"X-Camelid-Token": admin}).json()
        assert stats["counts"]["labels"] == N_ANNOTATORS * N_PAIRS
        assert stats["counts"]["complete_pairs"] == N_PAIRS
        assert {n: t["total"] for n, t in stats["throughput"].items()} == dict.fromkeys(tokens, N_PAIRS)
        assert stats["agreement"]["fleiss_kappa"] is None  # everyone picked side a: chance agreement is 1
        assert all(v["agreement"] == 1.0 for v in stats["agreement"]["with_majority"].values())
    finally:
        proc.terminate()
        proc.wait(10)

    out = tmp_path / "per.jsonl"
    assert cli.main(["export", "--db", str(db.path), "--out", str(out), "--mode", "per-annotator"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == N_ANNOTATORS * N_PAIRS
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["chosen"].startswith("GOOD") for r in rows)
    assert cli.main(["export", "--db", str(db.path), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == N_PAIRS
