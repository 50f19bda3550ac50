"""FastAPI server for the annotation app: a JSON API under /api and the static page under /.

Authentication: every /api call except /api/login needs a user token, sent as
``Authorization: Bearer <token>``, ``X-Camelid-Token: <token>`` or the ``camelid_token`` cookie that
/api/login sets (HttpOnly, SameSite=Strict). POSTs must be JSON, which with the SameSite cookie keeps
other sites from submitting on an annotator's behalf. The page is served with a strict
Content-Security-Policy (no inline script), a second guard behind rendering all text with textContent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from camelid.data.records import RATINGS
from camelid.errors import CamelidError
from camelid.eval.annotate.db import NOTE_MAX_CHARS, AnnotationDB, Conflict, InvalidInput, NotFound, User
from camelid.eval.annotate.export import admin_stats

STATIC = Path(__file__).parent / "static"
COOKIE = "camelid_token"
MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Strength = Literal[RATINGS]  # type: ignore[valid-type]


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: int
    preferred: Literal["left", "right"]
    strength: Strength
    left_safe: StrictBool
    right_safe: StrictBool
    note: str = Field("", max_length=NOTE_MAX_CHARS)


class PairRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: int


class _ApiError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def create_app(db_path: str | Path) -> FastAPI:
    if not (STATIC / "index.html").is_file():
        raise CamelidError(f"the web page is missing from this install ({STATIC}); reinstall camelid")
    db = AnnotationDB(db_path)
    app = FastAPI(title="camelid annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = db

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return JSONResponse({"detail": f"request body missing or over {MAX_BODY_BYTES} bytes"}, 413)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"detail": "POST bodies must be application/json"}, 415)
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def _error(status: int):
        return lambda request, exc: JSONResponse({"detail": str(exc)}, status)

    app.add_exception_handler(NotFound, _error(404))
    app.add_exception_handler(Conflict, _error(409))
    app.add_exception_handler(InvalidInput, _error(422))
    app.add_exception_handler(_ApiError, lambda request, exc: JSONResponse({"detail": exc.detail}, exc.status))

    @app.exception_handler(RequestValidationError)
    async def readable_422(request: Request, exc: RequestValidationError):
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            msgs.append(f"{loc}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(msgs)}, 422)

    def current_user(request: Request) -> User:
        auth = request.headers.get("authorization", "")
        token = (auth[7:].strip() if auth.lower().startswith("bearer ") else None) \
            or request.headers.get("x-camelid-token") or request.cookies.get(COOKIE)
        user = db.user_for_token(token)
        if user is None:
            raise _ApiError(401, "not logged in: enter your token on the login page")
        return user

    def admin_user(user: User = Depends(current_user)) -> User:
        if not user.is_admin:
            raise _ApiError(403, "the admin page is for admins only")
        return user

    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.get("/", include_in_schema=False)(page)
    app.get("/admin", include_in_schema=False)(page)
    app.get("/favicon.ico", include_in_schema=False)(lambda: Response(status_code=204))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.post("/api/login")
    def login(body: Login, response: Response) -> dict:
        user = db.user_for_token(body.token.strip())
        if user is None:
            raise _ApiError(401, "unknown token: ask your admin for the token `camelid annotate add-user` printed")
        response.set_cookie(COOKIE, body.token.strip(), httponly=True, samesite="strict", max_age=30 * 86400)
        return {"name": user.name, "admin": user.is_admin}

    @app.post("/api/logout")
    def logout(response: Response) -> dict:
        response.delete_cookie(COOKIE)
        return {"ok": True}

    @app.get("/api/me")
    def me(user: User = Depends(current_user)) -> dict:
        return {"name": user.name, "admin": user.is_admin}

    @app.get("/api/next")
    def next_pair(user: User = Depends(current_user)) -> dict:
        served = db.next_pair(user)
        pair = None if served is None else {"id": served.pair_id, "prompt": served.prompt,
                                            "left": served.left, "right": served.right}
        return {"pair": pair, "progress": db.progress(user)}

    @app.post("/api/submit")
    def submit(body: Submission, user: User = Depends(current_user)) -> dict:
        db.submit(user, body.pair_id, preferred=body.preferred, strength=body.strength,
                  left_safe=body.left_safe, right_safe=body.right_safe, note=body.note)
        return {"ok": True, "progress": db.progress(user)}

    @app.post("/api/skip")
    def skip(body: PairRef, user: User = Depends(current_user)) -> dict:
        db.skip(user, body.pair_id)
        return {"ok": True, "progress": db.progress(user)}

    @app.post("/api/undo")
    def undo(user: User = Depends(current_user)) -> dict:
        return {"undone": db.undo(user), "progress": db.progress(user)}

    @app.get("/api/admin/stats")
    def stats(user: User = Depends(admin_user)) -> dict:
        return admin_stats(db)

    return app
