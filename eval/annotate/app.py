"""FastAPI server for the annotation app: a JSON API under /api and the static page under /.

Authentication: every /api call except /api/login and /api/logout needs a user token, sent as
``Authorization: Bearer <token>``, ``X-Camelid-Token: <token>`` or the ``camelid_token`` cookie that
/api/login sets (HttpOnly, SameSite=Strict). POSTs must be JSON, which with the SameSite cookie keeps
other sites from submitting on an annotator's behalf; a request whose ``Origin`` names another site is
refused as well (see `guards.refusal`), and wrong tokens are limited per client address. The page is
served with a strict Content-Security-Policy (no inline script), a second guard behind rendering all text
with textContent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from camelid.data.records import RATINGS
from camelid.errors import CamelidError
from camelid.eval.annotate.db import (
    NOTE_MAX_CHARS,
    SQLITE_MAX_INT,
    AnnotationDB,
    Conflict,
    InvalidInput,
    NotFound,
    User,
)
from camelid.eval.annotate.export import admin_stats
from camelid.eval.annotate.guards import FailedLoginLimiter, install_guards, retry_after_header

STATIC = Path(__file__).parent / "static"
COOKIE = "camelid_token"
Strength = Literal[RATINGS]  # type: ignore[valid-type]
PairId = Annotated[int, Field(ge=1, le=SQLITE_MAX_INT)]  # a bigger int cannot be a SQLite row id


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: PairId
    preferred: Literal["left", "right"]
    strength: Strength
    left_safe: StrictBool
    right_safe: StrictBool
    note: str = Field("", max_length=NOTE_MAX_CHARS)


class PairRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: PairId


class _ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        self.status, self.detail, self.headers = status, detail, headers


class _Auth:
    """Who is asking: a token from a header or the cookie, looked up behind the wrong-token limit."""

    def __init__(self, db: AnnotationDB, limiter: FailedLoginLimiter):
        self.db, self.limiter = db, limiter

    def check(self, request: Request, token: str | None) -> User | None:
        if not token:  # no token is no guess
            return None
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            headers = retry_after_header(wait)
            raise _ApiError(429, f"too many wrong tokens from {client}; try again in {headers['Retry-After']} s",
                            headers)
        user = self.db.user_for_token(token)
        if user is None:
            self.limiter.failed(client)
        return user

    def current_user(self, request: Request) -> User:
        auth = request.headers.get("authorization", "")
        token = (auth[7:].strip() if auth.lower().startswith("bearer ") else None) \
            or request.headers.get("x-camelid-token") or request.cookies.get(COOKIE)
        user = self.check(request, token)
        if user is None:
            raise _ApiError(401, "not logged in: enter your token on the login page")
        return user

    def admin_user(self, request: Request) -> User:
        user = self.current_user(request)
        if not user.is_admin:
            raise _ApiError(403, "the admin page is for admins only")
        return user


def create_app(db_path: str | Path, *, limiter: FailedLoginLimiter | None = None) -> FastAPI:
    if not (STATIC / "index.html").is_file():
        raise CamelidError(f"the web page is missing from this install ({STATIC}); reinstall camelid")
    db = AnnotationDB(db_path)
    auth = _Auth(db, limiter or FailedLoginLimiter())
    app = FastAPI(title="camelid annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = db
    install_guards(app)
    _add_error_handlers(app)
    _add_page_routes(app)
    _add_session_routes(app, auth)
    _add_annotate_routes(app, db, auth)
    _add_admin_routes(app, db, auth)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    def _error(status: int):
        return lambda request, exc: JSONResponse({"detail": str(exc)}, status)

    app.add_exception_handler(NotFound, _error(404))
    app.add_exception_handler(Conflict, _error(409))
    app.add_exception_handler(InvalidInput, _error(422))
    app.add_exception_handler(
        _ApiError, lambda request, exc: JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def readable_422(request: Request, exc: RequestValidationError):
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            msgs.append(f"{loc}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(msgs)}, 422)


def _add_page_routes(app: FastAPI) -> None:
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.get("/", include_in_schema=False)(page)
    app.get("/admin", include_in_schema=False)(page)
    app.get("/favicon.ico", include_in_schema=False)(lambda: Response(status_code=204))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _add_session_routes(app: FastAPI, auth: _Auth) -> None:
    @app.post("/api/login")
    def login(body: Login, request: Request, response: Response) -> dict:
        token = body.token.strip()
        user = auth.check(request, token)
        if user is None:
            raise _ApiError(401, "unknown token: ask your admin for the token `camelid annotate add-user` printed")
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=30 * 86400)
        return {"name": user.name, "admin": user.is_admin}

    @app.post("/api/logout")
    def logout(response: Response) -> dict:
        response.delete_cookie(COOKIE)
        return {"ok": True}

    @app.get("/api/me")
    def me(user: User = Depends(auth.current_user)) -> dict:
        return {"name": user.name, "admin": user.is_admin}


def _add_annotate_routes(app: FastAPI, db: AnnotationDB, auth: _Auth) -> None:
    @app.get("/api/next")
    def next_pair(user: User = Depends(auth.current_user)) -> dict:
        served = db.next_pair(user)
        pair = None if served is None else {"id": served.pair_id, "prompt": served.prompt,
                                            "left": served.left, "right": served.right}
        return {"pair": pair, "progress": db.progress(user)}

    @app.post("/api/submit")
    def submit(body: Submission, user: User = Depends(auth.current_user)) -> dict:
        db.submit(user, body.pair_id, preferred=body.preferred, strength=body.strength,
                  left_safe=body.left_safe, right_safe=body.right_safe, note=body.note)
        return {"ok": True, "progress": db.progress(user)}

    @app.post("/api/skip")
    def skip(body: PairRef, user: User = Depends(auth.current_user)) -> dict:
        db.skip(user, body.pair_id)
        return {"ok": True, "progress": db.progress(user)}

    @app.post("/api/undo")
    def undo(user: User = Depends(auth.current_user)) -> dict:
        return {"undone": db.undo(user), "progress": db.progress(user)}


def _add_admin_routes(app: FastAPI, db: AnnotationDB, auth: _Auth) -> None:
    @app.get("/api/admin/stats")
    def stats(user: User = Depends(auth.admin_user)) -> dict:
        return admin_stats(db)
