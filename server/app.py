"""The web app: `create_app(settings)` builds it; nothing is created at import.

The database is opened (and migrated) when the app is built, so a database
that cannot be reached stops `telerehab serve` at once with its URL named
(password masked).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from telerehab.errors import (
    ConfigError,
    ConflictError,
    ProgramError,
    StorageError,
    UnreachableError,
)
from telerehab.settings import Settings, get_settings

from . import accounts, pseudonyms, records, routing
from . import audit as audit_trail
from .db import Database, open_configured, unavailable
from .deps import COOKIE, client_address
from .edge import BodyLimit, SecurityHeaders
from .routers import (
    audit,
    auth,
    exercises,
    exports,
    i18n,
    live,
    patients,
    programs,
    sessions,
    users,
)
from .schemas import MAX_ID
from .sink import StorageSink
from .throttle import HashGate, LoginThrottle

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
PAGES = {
    "login": "login.html",
    "therapist": "therapist.html",
    "patient": "patient.html",
    "live": "live.html",
    "watch": "watch.html",
    "session": "session.html",  # the patient's own and their therapists' (the API decides)
    "welcome": "welcome.html",  # an invited patient chooses a password (no login yet)
}
# A page meant for one role sends the other role to its own home page.
PAGE_ROLE = {
    "therapist": "therapist",
    "watch": "therapist",
    "patient": "patient",
    "live": "patient",
}
HOME = {"therapist": "/therapist", "patient": "/patient"}


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every error: `detail` says what is wrong and names the field, never
    repeating the submitted value (a list of field problems for a body or
    parameter that does not validate)."""

    detail: str | list[FieldProblem]


def _problem(description: str) -> dict:
    return {"model": Problem, "description": description}


ERRORS = {
    401: _problem("not logged in"),
    403: _problem("logged in, but not allowed (or a missing CSRF header)"),
    404: _problem("no such record"),
    409: _problem("conflicts with the current state (nothing written)"),
    413: _problem("request body too large"),
    422: _problem("invalid input: the field is named, its value never repeated"),
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
LOGIN_ERRORS = {
    **ERRORS,
    429: {**_problem("too many logins at once or failed"), "headers": RETRY_AFTER},
}


def _field_problems(exc: RequestValidationError) -> list[dict]:
    """The location, message and kind of each error; never the input (which may
    be a 50 MB password, a NaN that JSON cannot carry, or a patient's note)."""
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in exc.errors()
    ]


def estimator_factory(variant: str, max_people: int = 4, backend: str | None = None):
    """A callable that builds one live session's pose estimator (in its worker).

    `backend`: "blazepose" or "mediapipe" (None: the `pose_backend` setting).
    """

    def build():
        from telerehab.pose.backend import create_backend
        from telerehab.pose.estimator import PoseEstimator

        model = create_backend(backend, variant=variant, mode="live", max_people=max_people)
        return PoseEstimator(model)

    return build


class SharedEstimators:
    """Live sessions' estimators from one batched BlazePose backend per
    (variant, max_people) (`telerehab.pose.batching`), built on first use in a
    session's worker and closed with the app."""

    def __init__(self) -> None:
        self._schedulers: dict[tuple[str, int], object] = {}
        self._lock = threading.Lock()

    def __call__(self, variant: str, max_people: int = 4):
        def build():
            from telerehab.pose.backend import create_backend
            from telerehab.pose.batching import BatchScheduler
            from telerehab.pose.estimator import PoseEstimator

            with self._lock:
                scheduler = self._schedulers.get((variant, max_people))
                if scheduler is None:
                    model = create_backend("blazepose", variant=variant, mode="live",
                                           max_people=max_people)  # fmt: skip
                    scheduler = self._schedulers[(variant, max_people)] = BatchScheduler(model)
            return PoseEstimator(scheduler.session())  # type: ignore[attr-defined]

        return build

    def close(self) -> None:
        """Close every shared backend (after the sessions ended)."""
        with self._lock:
            for scheduler in self._schedulers.values():
                scheduler.close()  # type: ignore[attr-defined]
            self._schedulers.clear()


async def recover_abandoned(db: Database, fanout=None) -> list[int]:
    """At start: live sessions a process that is gone left in progress (kill -9,
    a crash) are closed as interrupted, with every repetition they stored, so
    they count in trends and FHIR and their patient can end them. With Redis,
    the sessions that another process whose heartbeat is alive holds are left
    alone (a dead process's heartbeat expires within `redis_ttl_s`); if Redis
    cannot say which those are, nothing is changed (the next start retries)."""
    held: set[int] = set()
    if fanout is not None:
        try:
            held = set(await fanout.sessions())
        except Exception as exc:  # Redis down: which sessions are alive is unknown
            logger.warning("abandoned live sessions not checked: Redis unreachable (%s)", exc)
            return []

    def close() -> list[int]:
        with db.session() as s:
            return records.interrupt_abandoned(s, held)

    closed = await asyncio.to_thread(close)
    if closed:
        logger.warning("live sessions %s were left in progress by a server process that "
                       "stopped; recorded as interrupted", closed)  # fmt: skip
    return closed


async def interrupt_gone(db: Database, session_ids: list[int]) -> None:
    """Live sessions whose server process died (its heartbeat expired in
    Redis, and it runs no more on this host) are recorded as interrupted now,
    with every stored repetition, so their patient may end them at once; the
    database out: logged, and the next start does it."""

    def close() -> list[int]:
        with db.session() as s:
            return records.interrupt_abandoned(s, only=set(session_ids))

    try:
        closed = await asyncio.to_thread(close)
    except Exception as exc:
        if not unavailable(exc):
            raise
        logger.warning("live sessions %s of a server process that died: not recorded as "
                       "interrupted yet, the database is unavailable", session_ids)  # fmt: skip
        return
    if closed:
        logger.warning("live sessions %s: their server process died; recorded as interrupted",
                       closed)  # fmt: skip


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """The FastAPI app on `db` (default: open and migrate `settings`' database)."""
    settings = settings or get_settings()
    db = db or open_configured(settings)
    registry = live.Registry(
        max_sessions=settings.live_max_sessions,
        max_viewers=settings.live_max_viewers,
        resume_window_s=settings.resume_window_s,
    )
    throttle = LoginThrottle(
        free=settings.login_free_failures,
        free_per_address=settings.login_free_failures_per_address,
        delay_s=settings.login_delay_s,
        lockout_s=settings.login_lockout_s,
    )
    shared = (
        SharedEstimators() if settings.live_batch and settings.pose_backend == "blazepose" else None
    )
    sink = StorageSink(db, settings.live_pending_writes)
    fanout = None
    if settings.redis_url:
        from .fanout import Fanout

        fanout = Fanout(
            settings.redis_url,
            settings.redis_prefix,
            timeout_s=settings.redis_timeout_s,
            ttl_s=settings.redis_ttl_s,
            forward_timeout_s=settings.redis_forward_timeout_s,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await recover_abandoned(db, fanout)
        if fanout is not None:
            fanout.start()
        evicting = asyncio.ensure_future(registry.evict_expired_forever())
        yield
        evicting.cancel()
        try:  # end live sessions (recorded as interrupted), close peer connections
            await asyncio.wait_for(registry.close_all(), settings.shutdown_timeout_s)
        except TimeoutError:
            logger.error("live sessions not all closed within %g s; the next start records "
                         "what is left as interrupted", settings.shutdown_timeout_s)  # fmt: skip
        await asyncio.to_thread(sink.close, settings.shutdown_timeout_s)
        if shared is not None:
            shared.close()
        if fanout is not None:
            await fanout.close()

    app = FastAPI(
        title="telerehab", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )  # fmt: skip
    app.state.settings = settings
    app.state.db = db
    app.state.pseudonym_key = pseudonyms.load_key(settings)
    app.state.live = registry
    app.state.fanout = fanout
    if fanout is not None:  # control requests other processes forward here
        fanout.on_ask = functools.partial(routing.replay, app)
        fanout.on_gone = functools.partial(interrupt_gone, db)
    app.state.sink = sink
    app.state.estimator_factory = shared or functools.partial(
        estimator_factory, backend=settings.pose_backend
    )
    app.state.login_throttle = throttle
    app.state.hash_gate = HashGate(settings.password_hashes_at_once, wait_s=10)
    app.include_router(auth.router, responses=LOGIN_ERRORS)
    for router in (users, patients, programs, sessions, exports, audit, live, exercises, i18n):
        app.include_router(router.router, responses=ERRORS)
    app.include_router(live.ws_router)
    # outermost last: the body limit runs before anything reads the body or the login
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        uploads={exercises.LEARN_PATH: settings.max_upload_bytes},
        cookie=COOKIE,
    )

    status = {ConfigError: 422, ProgramError: 422, ConflictError: 409}
    for exc_type, code in status.items():

        def handler(_request: Request, exc: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)

    # The database refused, timed out or is locked: try again later, not a server error.
    retry_after = {"Retry-After": str(max(1, math.ceil(settings.database_connect_timeout_s)))}

    def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StorageError):
            detail = str(exc)
        else:
            logger.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                           type(exc).__name__)  # fmt: skip
            detail = "the database is unavailable at the moment: try again shortly"
        return JSONResponse({"detail": detail}, status_code=503, headers=retry_after)

    for exc_type in (StorageError, OperationalError, InterfaceError, SQLAlchemyTimeoutError):
        app.add_exception_handler(exc_type, database_unavailable)

    @app.exception_handler(UnreachableError)
    def process_unreachable(request: Request, exc: UnreachableError) -> JSONResponse:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        retry = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=retry)

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _field_problems(exc)}, status_code=422)

    def audit_refusal(request: Request) -> None:
        """A logged-in user refused (403): who tried what, and on whose record
        when the path names a patient (so the patient sees the attempt)."""
        who = getattr(request.state, "who", None)
        if who is None:
            return
        raw = str(request.path_params.get("patient_id", ""))
        patient_id = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ID else None
        actor = audit_trail.Actor.of(who, client_address(request))
        target = f"{request.method} {request.url.path}"
        audit_trail.record_apart(
            db, actor, "denied", patient_id, target, what=audit_trail.Touched("request")
        )

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 403:
            audit_refusal(request)
        if exc.status_code == 400:  # FastAPI: a body it cannot decode (not UTF-8, ...)
            problem = {
                "loc": ["body"],
                "msg": "the body could not be read as JSON",
                "type": "json_invalid",
            }
            return JSONResponse({"detail": [problem]}, status_code=422)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/api/health", tags=["health"], responses={503: {
        "description": "the database does not answer", "headers": RETRY_AFTER}})  # fmt: skip
    async def health() -> JSONResponse:
        """The server answers, and whether its database does within
        `database_connect_timeout_s` (nothing about the configuration). With
        Redis: whether it answers, and what was not published or forwarded."""
        try:
            await asyncio.wait_for(asyncio.to_thread(db.ping), settings.database_connect_timeout_s)
        except Exception as exc:
            if not (isinstance(exc, TimeoutError) or unavailable(exc)):
                raise
            return JSONResponse({"ok": False, "database": "unavailable", **redis()},
                                status_code=503, headers=retry_after)  # fmt: skip
        return JSONResponse({"ok": True, "database": "ok", **redis()})

    def redis() -> dict:
        return {} if fanout is None else {"redis": fanout.stats()}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/login")

    def role_of(request: Request) -> str | None:
        secret = request.cookies.get(COOKIE)
        if not secret:
            return None
        with db.session() as s:
            who = accounts.principal_for(s, secret)
        return who.role if who else None

    def page_route(page: str, filename: str):
        # No parameters: nothing of the request chooses the file served.
        def serve(request: Request) -> Response:
            wanted = PAGE_ROLE.get(page)
            role = role_of(request) if wanted else None
            if role in HOME and role != wanted:  # e.g. a patient on a therapist's page
                return RedirectResponse(HOME[role], status_code=303)
            # no-store: the answer depends on who asks (a cached page would skip the redirect)
            return FileResponse(
                STATIC / filename, media_type="text/html", headers={"Cache-Control": "no-store"}
            )

        return serve

    for page, filename in PAGES.items():
        app.add_api_route(f"/{page}", page_route(page, filename), include_in_schema=False)

    return app
