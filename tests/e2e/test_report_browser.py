"""The comparison report in headless Chromium: tables and plots render, nothing is fetched, text is inert."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from camelid.data.load import LoadResult
from camelid.data.records import Prompt
from camelid.eval import compare_judge, compare_summary
from camelid.eval.config import CompareConfig
from camelid.eval.report import render_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVIL = '<script>window.__pwned = 1</script><img src="http://example.invalid/x.png">'

pytestmark = pytest.mark.browser


def synthetic_numbers() -> dict:
    """Three checkpoints on 12 hand-made prompts, judged by all four judges (no model needed)."""
    prompts = [Prompt(messages=[{"role": "user", "content": f"question {i} {EVIL if i == 0 else ''}"}],
                      is_safety=i % 3 == 1, category=["task/x", "harmful/y", "borderline/z"][i % 3], id=f"p{i}",
                      meta={"kind": ["task", "harmful", "borderline"][i % 3]}) for i in range(12)]
    lr = LoadResult(kind="prompts", records=prompts, read=12, name="hand-made", format="prompts")
    rng = np.random.default_rng(0)
    results = []
    for k, ref in enumerate(["sft@v1", "ppo@v1", "ppo@v2"]):
        responses = [f"answer {k}-{i} " * (k + 1) + (EVIL if i == 0 else "") for i in range(12)]
        responses[1] = "Sorry, I must decline." if k == 0 else responses[1]
        r = compare_judge.CheckpointResult(ref=ref, hash=f"h{k}", responses=responses, cached=k == 0,
                                     lengths=np.array([len(x.split()) for x in responses], dtype=float),
                                     refused=(rng.random(12) < 0.2) | (np.arange(12) == 1) & (k == 0))
        r.unsafe = rng.random(12) < 0.1 * (2 - k)
        r.tokens = r.lengths * 1.5
        # the oracle's per-prompt verdicts: task prompts in two families, for the per-family accuracy tables
        r.oracle = [{"kind": p.meta["kind"], "category": ["arith/add", "string/upper"][i % 2] if i % 3 == 0
                     else p.category, "correct": bool(rng.random() < 0.3 + 0.2 * k), "refused": bool(r.refused[i]),
                     "verdict": "made-up"}
                    for i, p in enumerate(prompts)]
        for j in ("helpfulness", "safety", "combined", "oracle"):
            r.scores[j] = rng.normal(k * 0.5, 1.0, 12) if j != "oracle" else rng.choice([0, 0.3, 1.0], 12)
        results.append(r)
    return compare_summary.summarize(CompareConfig(bootstrap=100), lr, results, reference=None)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) for browser tests")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_opens_offline_with_tables_and_plots(browser, tmp_path):
    numbers = synthetic_numbers()
    html_path = tmp_path / "report.html"
    html_path.write_text(render_html(numbers), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []

    def guard(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requests.append(url)
            route.abort()

    page.route("**/*", guard)
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else requests.append(r.url))
    page.goto(html_path.as_uri(), wait_until="load")

    assert requests == []  # self-contained: no network at all
    assert page.locator("#checkpoints tbody tr").count() == 3
    assert page.locator("#pairs tbody tr").count() == 3 * 4  # 3 pairs x 4 judges
    assert page.locator("#ratings tbody tr").count() == 3 * 4
    assert "sft@v1" in page.locator("#checkpoints").inner_text()
    behaviour = page.locator("#behaviour")
    assert behaviour.locator("tbody tr").count() == 3
    head = behaviour.locator("thead").inner_text()
    for column in ("refusal on harmful", "over-refusal", "mean length (tokens)", "task accuracy: arith",
                   "task accuracy: string"):
        assert column in head
    sft = numbers["checkpoints"][0]
    first = behaviour.locator("tbody tr").first.inner_text()
    assert f'{100 * sft["harmful_refusal_rate"]:.1f}%' in first and f'{sft["mean_length_tokens"]:.1f}' in first
    assert page.locator("#families tbody tr").count() == 3 * 2  # 3 pairs x 2 task families
    assert " pts" in page.locator("#families").inner_text()
    assert "Refusals detected by the toy-world oracle" in page.locator("p.meta").first.inner_text()
    widths = page.eval_on_selector_all("img.plot", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
    assert len(widths) == 3 and all(w > 100 for w in widths)
    # model and prompt text is shown as text, never run or loaded
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".example").count() == 12
    assert EVIL in page.locator("body").inner_text()  # shown literally, as typed
    assert "refused: “i must decline”" in page.locator(".example").all_inner_texts()[
        [e["id"] for e in numbers["examples"]].index("p1")]  # the detector's matched phrase

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    w, h = png_size(shot)
    assert w >= 1000 and h > 1500 and shot.stat().st_size > 50_000
    if os.environ.get("CAMELID_SCREENSHOT_DIR"):  # to look at it by eye
        shutil.copy(shot, Path(os.environ["CAMELID_SCREENSHOT_DIR"]) / "report.png")
    page.close()
