"""Request guards of the annotation app: the Origin check, body limits, security headers, and a limit on
wrong tokens per client address."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Wrong tokens one client address may send per window before every token it sends is refused (429).
# A token is 192 random bits, so this is defence in depth: it turns a flood of guesses into a trickle.
MAX_FAILED_LOGINS = 10
FAILED_LOGIN_WINDOW_S = 300.0


def _without_default_port(netloc: str) -> str:
    netloc = netloc.lower()
    for port in (":80", ":443"):
        if netloc.endswith(port):
            return netloc[: -len(port)]
    return netloc


def foreign_origin(request: Request) -> str | None:
    """The request's ``Origin`` when it names another site than the host it was sent to, else None.

    Compared with the ``Host`` header rather than a configured URL, so the app needs no setting behind
    a TLS proxy as long as the proxy passes ``Host`` through (the scheme may differ there: not compared).
    """
    origin = request.headers.get("origin")
    if origin is None:
        return None
    try:
        parts = urlsplit(origin)
    except ValueError:
        return origin
    host = request.headers.get("host", "")
    same = parts.scheme in ("http", "https") and parts.netloc and not parts.path \
        and _without_default_port(parts.netloc) == _without_default_port(host)
    return None if same else origin


def refusal(request: Request) -> Response | None:
    """Why the request is refused before it reaches a route, as a response; None lets it through."""
    # Browsers send Origin on every POST and on every cross-site fetch. A present Origin that is not this
    # site is another page driving the annotator's browser: refused, even where SameSite=Strict would already
    # keep the cookie off the request. A missing Origin (curl, scripts, test clients, old browsers) falls back
    # to those other guards: the SameSite=Strict cookie, JSON-only bodies and the token itself.
    if request.method not in SAFE_METHODS or request.url.path.startswith("/api/"):
        origin = foreign_origin(request)
        if origin is not None:
            return JSONResponse({"detail": f"refused: Origin {origin!r} is not this site; open the app at "
                                           "its own address"}, 403)
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return JSONResponse({"detail": f"request body missing or over {MAX_BODY_BYTES} bytes"}, 413)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"detail": "POST bodies must be application/json"}, 415)
    return None


def install_guards(app: FastAPI) -> None:
    """Refuse foreign, oversized and non-JSON requests; put the security headers on every response."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        response = refusal(request) or await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response


class FailedLoginLimiter:
    """Wrong tokens per client address in a sliding window. Past ``max_failures`` every token from that
    address is refused until its oldest failure ages out, the right one too (or the limit would still
    confirm a lucky guess). Requests in flight when the limit is reached still finish, so a burst gets
    at most the server's worker count past it. Behind a proxy, run uvicorn with --forwarded-allow-ips so
    the address is the client's, not the proxy's."""

    def __init__(self, max_failures: int = MAX_FAILED_LOGINS, window_s: float = FAILED_LOGIN_WINDOW_S, *,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self.max_clients, self.clock = max_failures, window_s, max_clients, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def _live(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if times is not None and not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try a token again; 0 when it may now."""
        with self._lock:
            now = self.clock()
            times = self._live(client, now)
            if times is None or len(times) < self.max_failures:
                return 0.0
            return times[-self.max_failures] + self.window_s - now

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._live(client, now) or self._failures.setdefault(client, deque())
            times.append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:  # bounded memory under a spray of addresses
                self._failures.popitem(last=False)

    def tracked(self) -> int:
        """How many client addresses have failures on record."""
        with self._lock:
            return len(self._failures)


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
