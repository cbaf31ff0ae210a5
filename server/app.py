"""The web app: `create_app(settings)` builds it; nothing is created at import.

The database is opened (and migrated) when the app is built, so a database
that cannot be reached stops `telerehab serve` at once with its URL named
(password masked).
"""

from __future__ import annotations

import functools
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from telerehab.errors import ConfigError, ConflictError, ProgramError, StorageError
from telerehab.settings import Settings, get_settings

from .db import Database, open_database
from .deps import User
from .routers import auth, exports, live, patients, programs, sessions, users

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
PAGES = {
    "login": "login.html",
    "therapist": "therapist.html",
    "patient": "patient.html",
    "live": "live.html",
    "watch": "watch.html",
}


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


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """The FastAPI app on `db` (default: open and migrate `settings`' database)."""
    settings = settings or get_settings()
    db = db or open_database(settings.resolved_database_url)
    registry = live.Registry()
    shared = (
        SharedEstimators() if settings.live_batch and settings.pose_backend == "blazepose" else None
    )
    fanout = None
    if settings.redis_url:
        from .fanout import Fanout

        fanout = Fanout(settings.redis_url, settings.redis_prefix)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await registry.close_all()  # end live sessions, close peer connections
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
    app.state.live = registry
    app.state.fanout = fanout
    app.state.estimator_factory = shared or functools.partial(
        estimator_factory, backend=settings.pose_backend
    )
    for router in (auth, users, patients, programs, sessions, exports, live):
        app.include_router(router.router)
    app.include_router(live.ws_router)

    status = {ConfigError: 422, ProgramError: 422, ConflictError: 409, StorageError: 503}
    for exc_type, code in status.items():

        def handler(_request: Request, exc: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)

    @app.get("/api/exercises", tags=["exercises"])
    def list_exercises(who: User) -> list[dict]:
        """The exercise library, for prescribing."""
        from telerehab.rehab_programs.library import default_library

        return [{
            "id": e.id, "name": e.name, "views": list(e.views), "laterality": e.laterality,
            "target_rom_deg": list(e.target_rom_deg), "tempo_s": list(e.tempo_s),
            "instructions": e.instructions,
        } for e in default_library()]  # fmt: skip

    @app.get("/api/health", tags=["health"])
    def health() -> dict:
        return {"ok": True, "database": db.url}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/login")

    for page, filename in PAGES.items():

        def serve(filename: str = filename) -> FileResponse:
            return FileResponse(STATIC / filename, media_type="text/html")

        app.add_api_route(f"/{page}", serve, include_in_schema=False)

    return app
