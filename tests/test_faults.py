"""Faults of a real server process (`telerehab serve` on a loopback port) with a
real aiortc patient streaming a shared clip: kill -9, SIGTERM, and what the
patient and their therapist find afterwards through the API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from telerehab.server import accounts, prescriptions
from telerehab.server.db import open_database
from telerehab.server.tables import ExerciseSession
from tests.test_live import CLIP, PROGRAM, _feed, _login, _patient_streaming, _seed, _start, _until
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
    with db.session() as s:  # a second patient of the same therapist
        sam = accounts.create_user(s, "sam@home.org", "Sam", "patient", "patient-pw-2")
        accounts.link(s, 1, sam.id)
        prescriptions.create_program(s, sam.id, PROGRAM, 1)
    db.close()
    return {**os.environ, "TELEREHAB_DATABASE_URL": url, "TELEREHAB_DATA_DIR": str(tmp_path)}


async def _first_rep_then(base: str, clip: Path, fault) -> tuple[int, list[float]]:
    """The patient streams `clip`; at the first repetition reported to them,
    `await fault(session id)` strikes the server. (session id, t_end_s of every
    repetition the patient was told of, rounded as the messages round)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        sid, pc, _player, messages = await _patient_streaming(c, clip)

        async def first_rep() -> bool:
            return any(m["type"] == "rep" for m in messages)

        await _until(first_rep, timeout=60, what="the first repetition")
        await fault(sid)
        told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep"]
        await pc.close()
        return sid, told


def test_kill_9_mid_set_then_restart_keeps_every_repetition(clinic, clip) -> None:
    """kill -9 while the patient streams, mid-set; at the next start the session
    is `interrupted` with every repetition the patient was told of, it counts in
    trends and FHIR, and the patient can see and end it."""
    with served(clinic) as (proc, base, _):
        async def kill(_sid: int) -> None:
            os.kill(proc.pid, signal.SIGKILL)

        sid, told = asyncio.run(_first_rep_then(base, clip(CLIP), kill))
        assert proc.wait(10) == -signal.SIGKILL
    assert told

    async def after_restart(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c, \
                httpx.AsyncClient(base_url=base, timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            await _login(t, "thea@clinic.org", "therapist-pw-1")
            x = (await c.get(f"/api/sessions/{sid}")).json()
            assert x["status"] == "interrupted", x
            stored = [round(r["t_end_s"], 4) for r in x["reps"]]
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


def _exit_time(proc: subprocess.Popen, timeout: float) -> float | None:
    """time.monotonic() when `proc` was seen to have exited (None: not by `timeout`)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return time.monotonic()


def test_sigterm_with_a_therapist_watching_exits_in_bounded_time(clinic, clip) -> None:
    """SIGTERM while one patient streams and another's session idles with
    their therapist's WebSocket open on it: the process exits within
    TELEREHAB_SHUTDOWN_TIMEOUT_S (plus generous slack), and both sessions are
    recorded as interrupted, with every repetition the patient was told of."""
    bound_s = 3.0
    env = {**clinic, "TELEREHAB_SHUTDOWN_TIMEOUT_S": str(bound_s)}
    took: list[float | None] = []
    idle: list[int] = []

    async def watched_then_sigterm(base: str, proc: subprocess.Popen, _sid: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            await _login(c, "sam@home.org", "patient-pw-2")
            idle.append(await _start(c, {}))
            token = await _login(c, "thea@clinic.org", "therapist-pw-1")
        async with _feed(base.removeprefix("http://"), idle[0], token) as ws:
            json.loads(await ws.recv())  # the therapist follows the idle session
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            exited = await asyncio.to_thread(_exit_time, proc, bound_s + 30)
            took.append(None if exited is None else exited - sent)

    with served(env) as (proc, base, printed):
        sid, told = asyncio.run(
            _first_rep_then(base, clip(CLIP), lambda sid: watched_then_sigterm(base, proc, sid))
        )
    assert told and took[0] is not None, "still running 30 s after its bound:\n" + "".join(printed)
    assert took[0] < bound_s + 10, f"exited {took[0]:.1f} s after SIGTERM"
    db = open_database(clinic["TELEREHAB_DATABASE_URL"])
    with db.session() as s:
        x, y = s.get(ExerciseSession, sid), s.get(ExerciseSession, idle[0])
        stored = {round(r.t_end_s, 4) for r in x.repetitions}
        assert (x.status, y.status) == ("interrupted", "interrupted")
        assert set(told) <= stored, (told, stored)
    db.close()
