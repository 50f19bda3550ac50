"""The annotation app in headless Chromium, driven with the KEYBOARD ONLY (Playwright's Python API).

Needs Debian's chromium at /usr/bin/chromium (apt-get install chromium) and the playwright package;
no Playwright-downloaded browser is used. Set CAMELID_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">Use the payload.'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not found: apt-get install chromium"),
]


@pytest.fixture
def server(tmp_path):
    uvicorn = pytest.importorskip("uvicorn")
    from camelid.eval.annotate.app import create_app
    from camelid.eval.annotate.db import AnnotationDB

    db = AnnotationDB(tmp_path / "b.sqlite")
    conv = [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"}, {"role": "user", "content": "times 3?"}]
    items = [{"prompt": conv, "response_a": "12", "response_b": "It is 13.", "meta": {"id": "p0"}},
             {"prompt": [{"role": "user", "content": "Say hi"}], "response_a": "Hi!", "response_b": XSS,
              "meta": {"id": "p1"}}]
    items += [{"prompt": [{"role": "user", "content": f"Question {i}"}], "response_a": f"Answer A{i}",
               "response_b": f"Answer B{i}", "meta": {"id": f"p{i}"}} for i in (2, 3)]
    db.add_pairs(items, k=1)
    tokens = {"ann": db.add_user("ann"), "boss": db.add_user("boss", admin=True)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app, seen = create_app(db.path), []

    @app.middleware("http")  # outermost: records what the browser sent before any guard answers
    async def record(request, call_next):
        seen.append({"path": request.url.path, "origin": request.headers.get("origin"),
                     "cookie": "camelid_token=" in request.headers.get("cookie", "")})
        return await call_next(request)

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "db": db, "tokens": tokens, "seen": seen}
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def keys(page, *presses):
    """Press keys one by one, waiting after each until the page has handled it (no request in flight)."""
    for k in presses:
        page.keyboard.press(k)
        page.wait_for_selector('body[data-busy="0"]')


def shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("CAMELID_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["CAMELID_SCREENSHOT_DIR"]) / path.name)


def current(page):
    return {"id": int(page.get_attribute("#pair", "data-pair-id")),
            "left": page.text_content("#left-text"), "right": page.text_content("#right-text")}


def test_keyboard_only_annotation_and_export(server, browser, tmp_path):
    from camelid.eval.annotate.export import export_records

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    js_errors = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    page.goto(server["url"] + "/")
    page.wait_for_selector('body[data-state="login"]')
    page.keyboard.type("not-a-token")
    page.keyboard.press("Enter")
    page.wait_for_selector("#login-error:has-text('unknown token')")
    page.keyboard.press("Control+A")
    page.keyboard.type(server["tokens"]["ann"])
    page.keyboard.press("Enter")
    page.wait_for_selector('body[data-state="ready"]')
    assert page.text_content("#whoami") == "ann"
    assert "0 done" in page.text_content("#progress") and "4 left" in page.text_content("#progress")

    # Pair 1 (multi-turn, system prompt shown): left is better, significantly; left is unsafe.
    assert page.text_content(".msg.role-system .text") == "You are a terse assistant."
    assert page.locator(".msg").count() == 4
    p1 = current(page)
    keys(page, "1", "a", "q")
    assert page.get_attribute("#left-safety", "data-safe") == "false"
    shot(page, tmp_path, "annotate")
    keys(page, "Enter")
    assert "1 done" in page.text_content("#progress")

    # Pair 2 carries a script payload: it must show as text and never run. Skip it, undo the skip, label it.
    p2 = current(page)
    assert XSS in (p2["left"], p2["right"])
    assert page.evaluate("window.__xss") is None
    assert page.locator("#pair img, #pair script").count() == 0
    keys(page, "k")
    assert current(page)["id"] != p2["id"] and "1 skipped" in page.text_content("#progress")
    keys(page, "u")
    assert current(page) == p2
    keys(page, "2", "d", "n")
    page.keyboard.type("right one has markup <b>x</b>")  # typing into the note: shortcuts are off
    keys(page, "Escape", "Enter")

    # Pair 3: submit, change our mind with undo, label it again differently.
    p3 = current(page)
    keys(page, "ArrowRight", "f", "w", "Enter")
    assert "3 done" in page.text_content("#progress")
    keys(page, "u")
    assert current(page) == p3 and "2 done" in page.text_content("#progress")
    keys(page, "1", "s", "Enter")

    # Pair 4: Enter before choosing is refused with a message; then right, better.
    p4 = current(page)
    keys(page, "Enter")
    assert "Pick the better response" in page.text_content("#message")
    assert current(page) == p4
    keys(page, "2", "s", "Enter")
    page.wait_for_selector('body[data-state="empty"]')
    assert "4 done" in page.text_content("#progress") and "0 left" in page.text_content("#progress")
    assert page.evaluate("window.__xss") is None and js_errors == []

    records = {r.id: r for r in export_records(server["db"])[0]}
    ids = {p["id"]: p["meta"]["id"] for p in server["db"].pairs()}
    r1, r2, r3, r4 = (records[ids[p["id"]]] for p in (p1, p2, p3, p4))
    assert (r1.chosen, r1.rejected, r1.rating) == (p1["left"], p1["right"], "significantly_better")
    assert (r1.chosen_safe, r1.rejected_safe) == (False, True)
    assert (r2.chosen, r2.rejected, r2.rating) == (p2["right"], p2["left"], "slightly_better")
    assert (r3.chosen, r3.rejected, r3.rating) == (p3["left"], p3["right"], "better")  # the undone label is gone
    assert (r3.chosen_safe, r3.rejected_safe) == (True, True)
    assert (r4.chosen, r4.rejected, r4.rating) == (p4["right"], p4["left"], "better")
    notes = [lab["note"] for lab in server["db"].labels()]
    assert notes.count("right one has markup <b>x</b>") == 1 and len(notes) == 4

    # The admin page, also from the keyboard: log out, log in as the admin.
    admin = browser.new_page(viewport={"width": 1280, "height": 700})
    admin.goto(server["url"] + "/admin")
    admin.wait_for_selector('body[data-state="login"]')
    admin.keyboard.type(server["tokens"]["boss"])
    admin.keyboard.press("Enter")
    admin.wait_for_selector('body[data-state="admin"]')
    row = admin.locator("#throughput tbody tr").first
    assert row.locator("td").nth(0).text_content() == "ann" and row.locator("td").nth(1).text_content() == "4"
    assert "4 labels" in admin.text_content("#admin-counts")
    shot(admin, tmp_path, "admin")
    # An annotator's token does not open the admin statistics.
    page.goto(server["url"] + "/admin")
    page.wait_for_selector("#admin-error:has-text('admins only')")


@pytest.fixture
def other_site(tmp_path):
    """A plain page served from another port of the same host: same site for cookies, another origin."""
    import functools
    import http.server

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html><body>another app</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_another_origin_cannot_post_with_the_annotators_cookie(server, browser, other_site):
    """SameSite does not separate two ports of one host; the Origin check does (403 on Chromium's own header)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server["url"] + "/")
    page.wait_for_selector('body[data-state="login"]')
    page.keyboard.type(server["tokens"]["ann"])
    page.keyboard.press("Enter")  # the page's own POST carries its own Origin: accepted
    page.wait_for_selector('body[data-state="ready"]')
    other = context.new_page()
    other.goto(other_site + "/")
    with other.expect_response(lambda r: r.url.endswith("/api/undo")) as response:
        other.evaluate("url => fetch(url, {method: 'POST', mode: 'no-cors', credentials: 'include',"
                       " headers: {'Content-Type': 'text/plain'}, body: '{}'}).catch(() => null)",
                       server["url"] + "/api/undo")
    assert response.value.status == 403  # refused for its Origin...
    sent = [r for r in server["seen"] if r["path"] == "/api/undo"]
    assert sent == [{"path": "/api/undo", "origin": other_site, "cookie": True}]  # ...though the cookie went along
    login = [r for r in server["seen"] if r["path"] == "/api/login"]
    assert login == [{"path": "/api/login", "origin": server["url"], "cookie": False}]
    context.close()
