"""Faults of a real server process (`telerehab serve` on a loopback port) with a
real aiortc patient streaming a shared clip: kill -9, SIGTERM, and what the
patient and their therapist find afterwards through the API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from telerehab.server.db import open_database
from tests.test_live import CLIP, _login, _patient_streaming, _seed, _until
from tests.test_serve import _serve, _url_of


@contextlib.contextmanager
def served(env: dict, *args: str) -> Iterator[tuple[subprocess.Popen, str, list[str]]]:
    """`telerehab serve` running: (process, base URL, what it prints, read on
    in a thread so a full pipe never blocks it). Killed if the test leaves it."""
    proc = _serve(env, *args)
    printed: list[str] = []
    try:
        url = _url_of(proc)
        reader = threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True)
        reader.start()
        yield proc, url.rstrip("/"), printed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def clinic(tmp_path, store) -> dict:
    """A SQLite database with a therapist, a patient and a live program, and the
    environment of the server processes that use it."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    db = open_database(url)
    _seed(db)
    db.close()
    return {**os.environ, "TELEREHAB_DATABASE_URL": url, "TELEREHAB_DATA_DIR": str(tmp_path)}


async def _first_rep_then(base: str, clip: Path, fault) -> tuple[int, list[float]]:
    """The patient streams `clip`; at the first repetition reported to them,
    `fault()` strikes the server. (session id, t_end_s of every repetition the
    patient was told of)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        sid, pc, _player, messages = await _patient_streaming(c, clip)

        async def first_rep() -> bool:
            return any(m["type"] == "rep" for m in messages)

        await _until(first_rep, timeout=60, what="the first repetition")
        fault()
        told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep"]
        await pc.close()
        return sid, told


def test_kill_9_mid_set_then_restart_keeps_every_repetition(clinic, clip) -> None:
    """kill -9 while the patient streams, mid-set; at the next start the session
    is `interrupted` with every repetition the patient was told of, it counts in
    trends and FHIR, and the patient can see and end it."""
    with served(clinic) as (proc, base, _):
        sid, told = asyncio.run(
            _first_rep_then(base, clip(CLIP), lambda: os.kill(proc.pid, signal.SIGKILL))
        )
        assert proc.wait(10) == -signal.SIGKILL
    assert told

    async def after_restart(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c, \
                httpx.AsyncClient(base_url=base, timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            await _login(t, "thea@clinic.org", "therapist-pw-1")
            x = (await c.get(f"/api/sessions/{sid}")).json()
            assert x["status"] == "interrupted", x
            stored = [round(r["t_end_s"], 4) for r in x["reps"]]  # as the messages round
            assert set(told) <= set(stored) and len(stored) == len(set(stored))
            assert x["ended_at"] is not None
            live = (await c.get(f"/api/live/sessions/{sid}")).json()  # the patient's page
            assert (live["state"], live["total"]) == ("interrupted", len(stored)), live
            assert (await t.get("/api/live/sessions")).json() == []  # nothing live any more
            patient = x["patient_id"]
            trends = (await t.get(f"/api/patients/{patient}/trends")).json()
            assert [p["session_id"] for p in trends["pain"]] == [sid]
            assert sum(w["n"] for w in trends["quality"]) == len(stored)
            fhir = (await t.get(f"/api/patients/{patient}/fhir")).json()
            found = [e["resource"] for e in fhir["entry"]]
            weeks = [x for x in found if x.get("code", {}).get("text") == "Exercise adherence"]
            assert sum(w["valueRatio"]["numerator"]["value"] for w in weeks) == 1
            offer = await c.post(f"/api/live/sessions/{sid}/offer",
                                 json={"sdp": "v=0", "type": "offer"})  # fmt: skip
            assert offer.status_code == 409 and "interrupted" in offer.text, offer.text
            end = await c.post(f"/api/live/sessions/{sid}/end", json={"pain_after": 2})
            assert end.status_code == 200, end.text
            assert end.json()["total"] == len(stored)
            x = (await c.get(f"/api/sessions/{sid}")).json()
            assert (x["status"], x["pain_after"], len(x["reps"])) == ("complete", 2, len(stored))

    with served(clinic) as (_proc, base, _):
        asyncio.run(after_restart(base))
