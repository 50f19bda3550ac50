"""A human-annotated round end to end: `camelid round` stops with its pairs queued, a person labels them in the
annotation app in headless Chromium with the keyboard only, and `camelid round --continue` trains on exactly
those labels. Needs Debian's chromium and playwright (the harness of test_annotate_browser.py)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import sys
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_annotate_browser import CHROMIUM, FLAGS, current, keys  # noqa: E402  (the browser harness)

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not found: apt-get install chromium"),
]


@contextlib.contextmanager
def serve(db_path: Path):
    """`camelid annotate serve --db db_path` in a thread, on a free port; yields its URL."""
    uvicorn = pytest.importorskip("uvicorn")
    from camelid.eval.annotate.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(db_path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def camelid_round(root: Path, *extra: str) -> str:
    from camelid.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["round", "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
                     f"registry={root / 'registry'}", f"runs_dir={root / 'runs'}", "rounds.policy=base", "rounds.n=1",
                     "rounds.annotation.mode=human", "rounds.annotation.annotators=1",
                     "stages.reward.helpfulness.init=base", "stages.reward.safety.init=base", *extra]) == 0
    return out.getvalue()


def test_label_a_round_by_keyboard_then_continue(tmp_path, micro_base_registry, one_torch_thread):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    from camelid.eval.annotate.db import AnnotationDB
    from camelid.registry import Registry

    shutil.copytree(micro_base_registry, tmp_path / "registry")
    stdout = camelid_round(tmp_path)
    db_path = tmp_path / "runs" / "rounds" / "annotations-r1.sqlite"
    assert f"--db {db_path}" in stdout
    n = AnnotationDB(db_path).counts()["pairs"]
    assert n > 0 and f"round 1: {n} pair(s) queued" in stdout
    token = AnnotationDB(db_path).add_user("ann")

    wanted = {}  # (left, right) as shown -> (chosen, rating) the person gave
    with serve(db_path) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector('body[data-state="login"]')
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        page.wait_for_selector('body[data-state="ready"]')
        for i in range(n):  # alternate sides and strengths: the export must follow each choice
            shown = current(page)
            side, strength = ("1", "a") if i % 2 == 0 else ("2", "d")
            keys(page, side, strength, "Enter")
            wanted[(shown["left"], shown["right"])] = (shown["left"] if side == "1" else shown["right"],
                                                       "significantly_better" if strength == "a" else "slightly_better")
        page.wait_for_selector('body[data-state="empty"]')
        browser.close()

    assert camelid_round(tmp_path, "--continue").strip().splitlines()[-1] == "base@v1 -> rs-r1@v1"
    registry = Registry(tmp_path / "registry")
    pairs = registry.resolve("pairs-r1")
    rows = [json.loads(line) for line in (pairs.path / "pairs.jsonl").read_text().splitlines()]
    got = {}
    for row in rows:
        shown = next(k for k in wanted if {row["chosen"], row["rejected"]} == set(k))
        got[shown] = (row["chosen"], row["rating"])
    assert got == wanted
    assert pairs.manifest["metrics"]["annotation"] == "human" and pairs.manifest["metrics"]["n_labels"] == n
    assert {r["ref"] for r in registry.resolve("rm-helpfulness-r1").manifest["inputs"].values()} == {
        "base@v1", pairs.ref}
