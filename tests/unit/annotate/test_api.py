"""HTTP API through FastAPI's TestClient: auth, the annotate flow, validation codes, page safety."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from camelid.eval.annotate.app import STATIC, create_app

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def client(db, users, items):
    its = items(3)
    its[0]["response_b"] = XSS
    db.add_pairs(its, k=2)
    return TestClient(create_app(db.path))


def auth(users, name):
    return {"Authorization": f"Bearer {users[name][1]}"}


def good(pair, **kw):
    return {"pair_id": pair["id"], "preferred": "left", "strength": "better", "left_safe": True,
            "right_safe": True} | kw


def test_every_api_call_needs_a_token(client, users):
    for method, path in (("GET", "/api/me"), ("GET", "/api/next"), ("POST", "/api/submit"), ("POST", "/api/skip"),
                         ("POST", "/api/undo"), ("GET", "/api/admin/stats")):
        r = client.request(method, path, json={})
        assert r.status_code == 401, path
    assert client.get("/api/me", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/me", headers={"X-Camelid-Token": users["bob"][1]}).json()["name"] == "bob"
    assert client.get("/api/me", headers=auth(users, "ann")).json() == {"name": "ann", "admin": False}


def test_login_sets_an_httponly_cookie_and_logout_clears_it(client, users):
    assert client.post("/api/login", json={"token": "nope"}).status_code == 401
    r = client.post("/api/login", json={"token": users["ann"][1]})
    assert r.status_code == 200 and r.json()["name"] == "ann"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/me").json()["name"] == "ann"  # the cookie alone authenticates
    client.post("/api/logout", json={})
    assert client.get("/api/me").status_code == 401


def test_admin_page_is_admin_only(client, users):
    assert client.get("/api/admin/stats", headers=auth(users, "ann")).status_code == 403
    stats = client.get("/api/admin/stats", headers=auth(users, "root")).json()
    assert stats["counts"]["pairs"] == 3 and "fleiss_kappa" in stats["agreement"]


def test_annotate_flow_replay_and_errors(client, users):
    h = auth(users, "ann")
    pair = client.get("/api/next", headers=h).json()["pair"]
    assert pair["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert set(pair) == {"id", "prompt", "left", "right"}  # the canonical a/b order is not exposed
    r = client.post("/api/submit", headers=h, json=good(pair, note="  fine  "))
    assert r.status_code == 200 and r.json()["progress"]["done"] == 1
    replay = client.post("/api/submit", headers=h, json=good(pair))
    assert replay.status_code == 409 and "already labelled" in replay.json()["detail"]
    assert client.post("/api/submit", headers=h, json=good(pair) | {"pair_id": 9999}).status_code == 404
    other = client.get("/api/next", headers=auth(users, "bob")).json()["pair"]
    nxt = client.get("/api/next", headers=h).json()["pair"]
    assert nxt["id"] != pair["id"]
    # bob has not been served ann's next pair yet -> conflict, not a stolen label
    if other["id"] != nxt["id"]:
        assert client.post("/api/submit", headers=auth(users, "bob"), json=good(nxt)).status_code == 409


@pytest.mark.parametrize("change, fragment", [
    ({"note": "x" * 2001}, "note: String should have at most 2000 characters"),
    ({"strength": "much_better"}, "strength"),
    ({"preferred": "up"}, "preferred"),
    ({"left_safe": "yes"}, "left_safe"),
    ({"pair_id": "abc"}, "pair_id"),
    ({"extra": 1}, "extra"),
])
def test_bad_input_is_422_with_a_message(client, users, change, fragment):
    h = auth(users, "ann")
    pair = client.get("/api/next", headers=h).json()["pair"]
    r = client.post("/api/submit", headers=h, json=good(pair) | change)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]
    assert client.get("/api/next", headers=h).json()["progress"]["done"] == 0


def test_post_must_be_json_and_small(client, users):
    h = auth(users, "ann")
    r = client.post("/api/undo", headers=h | {"Content-Type": "text/plain"}, content=b"{}")
    assert r.status_code == 415
    r = client.post("/api/submit", headers=h, content=b"{" + b" " * 70000 + b"}")
    assert r.status_code == 413


def test_pair_ids_out_of_range_are_422_not_500(client, users):
    h = auth(users, "ann")
    pair = client.get("/api/next", headers=h).json()["pair"]
    for pid in (2**70, 2**63, -(2**70), 0):
        r = client.post("/api/submit", headers=h, json=good(pair) | {"pair_id": pid})
        assert r.status_code == 422 and "pair_id" in r.json()["detail"], pid
        r = client.post("/api/skip", headers=h, json={"pair_id": pid})
        assert r.status_code == 422 and "pair_id" in r.json()["detail"], pid
    assert client.post("/api/submit", headers=h, json=good(pair) | {"pair_id": 2**63 - 1}).status_code == 404


def test_foreign_origin_is_refused_same_or_missing_origin_passes(client, users):
    h = auth(users, "ann")
    pair = client.get("/api/next", headers=h).json()["pair"]
    for origin in ("http://evil.example", "null", "http://testserver.evil.example", "http://testserver:8080"):
        r = client.post("/api/submit", headers=h | {"Origin": origin}, json=good(pair))
        assert r.status_code == 403 and "Origin" in r.json()["detail"], origin
        assert r.headers["x-content-type-options"] == "nosniff"
    r = client.post("/api/login", headers={"Origin": "http://evil.example"}, json={"token": users["ann"][1]})
    assert r.status_code == 403 and "set-cookie" not in r.headers  # no login CSRF either
    assert client.get("/api/next", headers=h | {"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/api/next", headers=h).json()["progress"]["done"] == 0
    r = client.post("/api/submit", headers=h | {"Origin": "http://testserver"}, json=good(pair))
    assert r.status_code == 200  # the page's own origin
    # No Origin at all (curl, scripts): the token still has to be right, as before.
    assert client.post("/api/undo", headers=h, json={}).status_code == 200


def test_wrong_tokens_are_rate_limited_per_client(db, users):
    from camelid.eval.annotate.guards import MAX_FAILED_LOGINS

    app = create_app(db.path)
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    neighbour = TestClient(app, client=("198.51.100.7", 40000))
    codes = [attacker.post("/api/login", json={"token": f"guess-{i}"}).status_code
             for i in range(MAX_FAILED_LOGINS + 3)]
    assert codes == [401] * MAX_FAILED_LOGINS + [429] * 3
    # While blocked even the right token is refused, or the limit would still confirm a lucky guess.
    r = attacker.get("/api/me", headers=auth(users, "ann"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "too many" in r.json()["detail"]
    assert attacker.post("/api/login", json={"token": users["ann"][1]}).status_code == 429
    # Other clients are not affected; asking without any token is not a guess.
    for _ in range(MAX_FAILED_LOGINS + 3):
        assert neighbour.get("/api/me").status_code == 401
    assert neighbour.get("/api/me", headers=auth(users, "ann")).json()["name"] == "ann"
    # Wrong tokens in a header count like wrong logins.
    for i in range(MAX_FAILED_LOGINS):
        assert neighbour.get("/api/me", headers={"Authorization": f"Bearer guess-{i}"}).status_code == 401
    assert neighbour.get("/api/me", headers=auth(users, "ann")).status_code == 429


def test_failed_login_limiter_forgets_after_the_window():
    from camelid.eval.annotate.guards import FailedLoginLimiter

    now = [1000.0]
    lim = FailedLoginLimiter(max_failures=3, window_s=60, max_clients=2, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("a") == 0
        now[0] += 10
        lim.failed("a")
    assert lim.retry_after("a") == pytest.approx(40)  # the first failure (at 1010) ages out at 1070
    now[0] = 1070.5
    assert lim.retry_after("a") == 0
    lim.failed("a")
    assert lim.retry_after("a") == pytest.approx(9.5)  # the second (1020) is the oldest now
    lim.failed("b")
    lim.failed("c")  # over max_clients: the stalest client ("a") is forgotten, memory stays bounded
    assert lim.retry_after("a") == 0 and lim.tracked() == 2


def test_skip_undo_over_http(client, users):
    h = auth(users, "ann")
    p1 = client.get("/api/next", headers=h).json()["pair"]
    assert client.post("/api/skip", headers=h, json={"pair_id": p1["id"]}).status_code == 200
    assert client.post("/api/skip", headers=h, json={"pair_id": p1["id"]}).status_code == 409
    r = client.post("/api/undo", headers=h, json={})
    assert r.json()["undone"] == {"kind": "skip", "pair_id": p1["id"]}
    assert client.get("/api/next", headers=h).json()["pair"]["id"] == p1["id"]
    client.post("/api/undo", headers=h, json={})
    assert client.post("/api/undo", headers=h, json={}).status_code == 409


def test_script_payload_travels_as_json_text(client, users):
    h = auth(users, "ann")
    texts = []
    while (pair := client.get("/api/next", headers=h).json()["pair"]) is not None:
        texts += [pair["left"], pair["right"]]
        client.post("/api/submit", headers=h, json=good(pair))
    assert XSS in texts


def test_page_is_self_contained_and_never_uses_innerhtml(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    for f in STATIC.iterdir():
        text = f.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), f"{f.name} loads something remote"
        assert "@import" not in text and "url(http" not in text
    js = (STATIC / "app.js").read_text()
    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|eval\(", js)
    assert "<script>" not in (STATIC / "index.html").read_text().replace('<script src="/static/app.js" defer></script>', "")
