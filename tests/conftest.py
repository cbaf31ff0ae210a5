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
REDIS = os.environ.get("TELEREHAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
def pose_of(store, clip, tmp_path_factory):
    """PoseSequence of a shared clip with the full model, computed once per test
    run: kept in the run's temporary folder, which the pytest-xdist workers
    share (the first to need a clip computes it while the others wait on its
    lock, then read it)."""
    import fcntl
    import pickle

    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / "poses"
    folder.mkdir(exist_ok=True)
    cache: dict[str, object] = {}

    def run(name: str):
        if name in cache:
            return cache[name]
        path = folder / f"{name}.pkl"
        with open(folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.is_file():
                cache[name] = pickle.loads(path.read_bytes())
            else:
                backend = create_backend("mediapipe", variant="full", mode="video", store=store)
                try:
                    cache[name] = estimate_video(clip(name), backend)
                finally:
                    backend.close()
                part = path.with_suffix(".part")
                part.write_bytes(pickle.dumps(cache[name]))
                part.replace(path)
        return cache[name]

    return run


def poses_through(store, clip, backend: str, **options):
    """A function: shared clip name -> its PoseSequence through `backend` with
    `options` (`create_backend`'s), computed once per process."""
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video

    cache: dict[str, object] = {}

    def run(name: str):
        if name not in cache:
            model = create_backend(backend, store=store, **options)
            try:
                cache[name] = estimate_video(clip(name), model)
            finally:
                model.close()
        return cache[name]

    return run


def program_of(*exercise_ids: str):
    """A program of one set of ten of each exercise, in order."""
    from telerehab.rehab_programs.program import program_from_data

    return program_from_data(
        {"title": "Program", "sessions_per_week": 3,
         "exercises": [{"exercise": e, "sets": 1, "reps": 10} for e in exercise_ids]},
        "test",
    )  # fmt: skip


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    """Clear the cached settings around a test that changes TELEREHAB_* variables."""
    from telerehab.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.fixture
def clinic(tmp_path, store) -> dict:
    """A SQLite database with a therapist, her patients Pat and Sam, each with
    the live program of `tests.test_live`, and the environment of the server
    processes (`telerehab serve`) that use it."""
    from telerehab.server import accounts, prescriptions
    from telerehab.server.db import open_database
    from tests.test_live import PROGRAM, _seed

    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    db = open_database(url)
    _seed(db)
    with db.session() as s:  # a second patient of the same therapist
        sam = accounts.create_user(s, "sam@home.org", "Sam", "patient", "patient-pw-2")
        accounts.link(s, 1, sam.id)
        prescriptions.create_program(s, sam.id, PROGRAM, 1)
    db.close()
    return {**os.environ, "TELEREHAB_DATABASE_URL": url, "TELEREHAB_DATA_DIR": str(tmp_path)}


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis (fails under CI=true if Redis is
    absent); its keys are removed afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        unavailable(f"Redis not reachable at {REDIS}: {exc}")
    prefix = f"telerehab-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


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
