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

from telerehab.server.app import create_app
from telerehab.server.db import open_database
from telerehab.server.tables import ExerciseSession
from telerehab.settings import Settings
from tests.conftest import POSTGRES, REDIS, postgres_schema, running
from tests.faulty_link import FaultyLink
from tests.test_live import (
    CLIP,
    _feed,
    _login,
    _patient_streaming,
    _played_and_drained,
    _seed,
    _start,
    _until,
)
from tests.test_serve import _serve, _url_of


@contextlib.contextmanager
def served(env: dict, *args: str) -> Iterator[tuple[subprocess.Popen, str, list[str]]]:
    """`telerehab serve` running: (process, base URL, what it prints, read on
    in a thread so a full pipe never blocks it). Killed if the test leaves it
    (its worker processes, if any, stop when they find it gone)."""
    proc = _serve(env, *args)
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True)
    try:
        url = _url_of(proc, lines=printed)
        reader.start()
        yield proc, url.rstrip("/"), printed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if reader.is_alive():  # until every process writing to the pipe has gone
            reader.join(30)
        proc.stdout.close()


async def _first_rep_then(base: str, clip: Path, fault) -> tuple[int, list[float]]:
    """The patient streams `clip`; at the first repetition reported to them,
    `await fault(session id)` strikes the server. (session id, t_end_s of every
    repetition the patient was told of, rounded as the messages round)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        sid, pc, _player, messages = await _patient_streaming(c, clip)

        async def first_rep() -> bool:
            return any(m["type"] == "rep_completed" for m in messages)

        await _until(first_rep, timeout=60, what="the first repetition")
        await fault(sid)
        told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
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
            # ended by the patient: complete, or partial short of the 2 squats prescribed
            done = "complete" if len(stored) >= 2 else "partial"
            assert (x["status"], x["pain_after"], len(x["reps"])) == (done, 2, len(stored))

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


# ------------------------------------------------------------------ the database


@pytest.fixture
def postgres_link():
    """A fresh schema in the local PostgreSQL, reached through a link the test
    can cut: (database URL through the link, the link)."""
    from sqlalchemy import make_url

    url = make_url(POSTGRES)
    with postgres_schema("telerehab_faults") as schema:
        link = FaultyLink((url.host or "127.0.0.1", url.port or 5432))
        path = {"options": f"-csearch_path={schema}"}
        through = url.set(host="127.0.0.1", port=link.port, query=path)
        yield through.render_as_string(hide_password=False), link
        link.close()


def _login_sync(c: httpx.Client, email: str, password: str) -> None:
    r = c.post("/api/auth/login", json={"email": email, "password": password, "kind": "bearer"})
    c.headers["Authorization"] = f"Bearer {r.json()['token']}"


def test_database_refused_is_503_with_retry_after_and_health_says_so(postgres_link, tmp_path):
    """The database host goes down under a running server: requests answer 503
    with Retry-After (never 500, never a hang), health says the database is
    unavailable; when it is back, everything answers again by itself."""
    url, link = postgres_link
    db = open_database(url, connect_timeout_s=2)
    _seed(db)
    app = create_app(Settings(data_dir=tmp_path, database_connect_timeout_s=2), db)
    with running(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        _login_sync(c, "thea@clinic.org", "therapist-pw-1")
        assert c.get("/api/patients/2/sessions").status_code == 200
        assert c.get("/api/health").json() == {"ok": True, "database": "ok"}
        link.cut()
        for path in ("/api/patients/2/sessions", "/api/patients/2/trends", "/api/auth/me"):
            r = c.get(path)
            assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, (path, r.text)
            assert "database is unavailable" in r.json()["detail"]
        r = c.get("/api/health")
        assert (r.status_code, r.json()) == (503, {"ok": False, "database": "unavailable"})
        link.restore()
        assert c.get("/api/patients/2/sessions").status_code == 200
        assert c.get("/api/health").json() == {"ok": True, "database": "ok"}
    db.close()


def test_a_locked_table_times_out_as_503_and_health_says_so(postgres_link, tmp_path):
    """A database that hangs (here: the accounts table locked by another
    connection) does not hang requests: the statement timeout cancels them
    (503 with Retry-After) and health reports the database unavailable."""
    from sqlalchemy import create_engine, text

    url, _link = postgres_link
    db = open_database(url, statement_timeout_s=1)
    _seed(db)
    app = create_app(
        Settings(data_dir=tmp_path, database_connect_timeout_s=2, database_statement_timeout_s=1),
        db,
    )
    locker = create_engine(url)
    with running(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        _login_sync(c, "thea@clinic.org", "therapist-pw-1")
        with locker.begin() as conn:
            conn.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            r = c.get("/api/patients/2/sessions")
            assert r.status_code == 503 and "Retry-After" in r.headers, r.text
            r = c.get("/api/health")
            assert (r.status_code, r.json()["database"]) == (503, "unavailable")
        assert c.get("/api/patients/2/sessions").status_code == 200
    locker.dispose()
    db.close()


def test_repetitions_made_while_the_database_is_down_are_stored_when_it_is_back(
    postgres_link, tmp_path, clip
) -> None:
    """The database goes down as the patient starts to move and stays down
    through the clip: the patient is told of every repetition at once, the
    writes wait (shown in status), and once the database is back every one is
    stored, in order, with its set."""
    url, link = postgres_link
    db = open_database(url, connect_timeout_s=2)
    _seed(db)
    app = create_app(Settings(data_dir=tmp_path, database_connect_timeout_s=2), db)

    async def run(base: str) -> tuple[int, list[float], list[dict], dict]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            sid, pc, player, messages = await _patient_streaming(c, clip(CLIP))

            async def seen(kind: str) -> bool:
                return any(m["type"] == kind for m in messages)

            await _until(lambda: seen("pose"), what="the first frame analysed")
            link.cut()

            async def played() -> bool:
                return player.video.readyState == "ended"

            await _until(played, timeout=60, what="the clip to play")
            await _until(lambda: seen("set_completed"), what="a set while the database is out")
            link.restore()

            async def stored() -> bool:
                r = await c.get(f"/api/live/sessions/{sid}")
                return r.status_code == 200 and r.json()["writes_waiting"] == 0

            await _until(stored, what="the waiting writes to be stored")
            status = (await c.get(f"/api/live/sessions/{sid}")).json()
            await c.post(f"/api/live/sessions/{sid}/end", json={})
            await pc.close()
            told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
            return sid, told, messages, status

    with running(app) as port:
        sid, told, messages, status = asyncio.run(run(f"http://127.0.0.1:{port}"))
    waiting = [m.get("writes_waiting", 0) for m in messages if m["type"] == "status"]
    assert told and max(waiting) >= 1  # the patient was told at once; the writes waited
    assert (status["writes_lost"], status["failed"]) == (0, 0), status
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert [round(r.t_end_s, 4) for r in x.repetitions] == told
        sets = [m["set_index"] for m in messages if m["type"] == "set_completed"]
        done = "complete" if len(told) >= 2 else "partial"  # 2 squats prescribed
        assert x.status == done and [k.set_index for k in x.sets] == sets
    db.close()


# ---------------------------------------------------------------- Redis


async def _listed(base: str, token: str) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as t:
        t.headers["Authorization"] = f"Bearer {token}"
        r = await t.get("/api/live/sessions")
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()]


def test_a_killed_process_leaves_the_live_list_within_the_ttl_and_recovery_closes_its_session(
    clinic, redis_prefix, tmp_path
) -> None:
    """Two server processes share Redis. Process A (`telerehab serve`) holds
    Pat's session, B (in this test) holds Sam's, so Sam cannot start a second
    one on A (409 naming it). A is killed (-9): within the heartbeat TTL
    Pat's session leaves the therapists' list on B, Sam's stays, and B records
    Pat's as interrupted (no restart needed); A's next start leaves Sam's
    alone."""
    ttl = 2.0
    env = {**clinic, "TELEREHAB_REDIS_URL": REDIS, "TELEREHAB_REDIS_PREFIX": redis_prefix,
           "TELEREHAB_REDIS_TTL_S": str(ttl)}  # fmt: skip
    settings = Settings(data_dir=tmp_path, redis_url=REDIS, redis_prefix=redis_prefix,
                        redis_ttl_s=ttl)  # fmt: skip
    db = open_database(clinic["TELEREHAB_DATABASE_URL"])
    b = create_app(settings, db)

    async def start(base: str, email: str, password: str) -> int:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            await _login(c, email, password)
            return await _start(c, {})

    async def therapist_token(base: str) -> str:
        async with httpx.AsyncClient(base_url=base, timeout=30) as t:
            return await _login(t, "thea@clinic.org", "therapist-pw-1")

    with running(b) as port_b:
        base_b = f"http://127.0.0.1:{port_b}"
        token = asyncio.run(therapist_token(base_b))
        sam = asyncio.run(start(base_b, "sam@home.org", "patient-pw-2"))
        with served(env) as (proc, base_a, _):
            pat = asyncio.run(start(base_a, "pat@home.org", "patient-pw-1"))

            async def sam_on_a() -> httpx.Response:
                async with httpx.AsyncClient(base_url=base_a, timeout=30) as c:
                    await _login(c, "sam@home.org", "patient-pw-2")
                    return await c.post("/api/live/sessions", json={})

            twice = asyncio.run(sam_on_a())  # one session per patient, across processes
            assert twice.status_code == 409 and f"live session {sam} is already" in twice.text
            assert "in another server process" in twice.text

            async def both_listed() -> bool:
                return sorted(await _listed(base_b, token)) == sorted([pat, sam])

            asyncio.run(_until(both_listed, what="both sessions listed on B"))
            time.sleep(2 * ttl)  # A's heartbeat renews its entry past the TTL
            assert sorted(asyncio.run(_listed(base_b, token))) == sorted([pat, sam])
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            assert proc.wait(10) == -signal.SIGKILL

        async def only_sam() -> bool:
            return await _listed(base_b, token) == [sam]

        asyncio.run(_until(only_sam, timeout=30, what="the dead process's session to leave"))
        assert time.monotonic() - killed < ttl + 10  # generous: the TTL, and the polling

        async def recorded() -> bool:  # by B, which found A dead: no restart needed
            with db.session() as s:
                return s.get(ExerciseSession, pat).status == "interrupted"

        asyncio.run(_until(recorded, timeout=10, what="B to record the session interrupted"))
        with served(env) as (_proc, _base, printed):  # A again: recovery at start
            pass
        with db.session() as s:
            assert s.get(ExerciseSession, pat).status == "interrupted", printed
            assert s.get(ExerciseSession, sam).status == "in_progress"  # B holds it, alive
        assert asyncio.run(_listed(base_b, token)) == [sam]
    db.close()


def test_redis_out_mid_session_the_session_goes_on_and_fan_out_resumes(
    clinic, redis_prefix, tmp_path, clip
) -> None:
    """Redis becomes unreachable (its link cut) before the patient streams: the
    session counts and stores every repetition, its status and the live list
    answer; the entry leaves the other processes' view within the TTL. When
    Redis is back the entry returns and messages are published again."""
    from telerehab.server.fanout import Fanout

    link = FaultyLink(("127.0.0.1", 6379))
    ttl = 1.5
    settings = Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{link.port}/0",
                        redis_prefix=redis_prefix, redis_ttl_s=ttl,
                        redis_timeout_s=0.5)  # fmt: skip
    db = open_database(clinic["TELEREHAB_DATABASE_URL"])
    app = create_app(settings, db)

    async def run(base: str) -> tuple[int, list[float], dict, list[dict]]:
        other = Fanout(REDIS, redis_prefix, ttl_s=ttl)  # another process's view, direct
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            sid, pc, player, messages = await _patient_streaming(c, clip(CLIP))

            async def listed(yes: bool) -> bool:
                return (sid in await other.sessions()) == yes

            await _until(lambda: listed(True), what="the session listed in Redis")
            link.cut()
            await _until(lambda: listed(False), timeout=ttl + 10, what="the entry to expire")
            await _played_and_drained(c, sid, player)
            r = await c.get("/api/live/sessions")
            assert r.status_code == 200 and [x["id"] for x in r.json()] == [sid], r.text
            assert (await c.get(f"/api/live/sessions/{sid}")).json()["state"] == "running"
            link.restore()
            await _until(lambda: listed(True), timeout=ttl + 10, what="the entry to return")
            published: list[dict] = []

            async def follow() -> None:
                async for msg in other.follow(sid):
                    published.append(msg)

            following = asyncio.create_task(follow())
            pause = await c.post(f"/api/live/sessions/{sid}/pause")
            assert pause.status_code == 200, pause.text

            async def heard_pause() -> bool:
                return any(m["type"] == "status" and m["state"] == "paused" for m in published)

            await _until(heard_pause, what="fan-out to resume")
            following.cancel()
            summary = (await c.post(f"/api/live/sessions/{sid}/end", json={})).json()
            await pc.close()
            await other.close()
            told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
            return sid, told, summary, published

    with running(app) as port:
        sid, told, summary, _published = asyncio.run(run(f"http://127.0.0.1:{port}"))
    link.close()
    assert told and summary["total"] == len(told)
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert [round(r.t_end_s, 4) for r in x.repetitions] == told
    db.close()


def test_a_relayed_feed_unsubscribes_when_its_viewer_leaves(clinic, redis_prefix, tmp_path):
    """The therapist's WebSocket reaches the process that does not hold the
    session: its Redis subscription ends as soon as the viewer leaves."""
    import redis

    settings = Settings(data_dir=tmp_path, redis_url=REDIS, redis_prefix=redis_prefix)
    db = open_database(clinic["TELEREHAB_DATABASE_URL"])
    a, b = create_app(settings, db), create_app(settings, db)
    client = redis.Redis.from_url(REDIS, socket_timeout=5, decode_responses=True)
    channel = f"{redis_prefix}:live"

    async def run(host_a: str, host_b: str) -> list[int]:
        async with httpx.AsyncClient(base_url=f"http://{host_a}", timeout=30) as c, \
                httpx.AsyncClient(base_url=f"http://{host_b}", timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            sid = await _start(c, {})

            async def subscribers(n: int) -> bool:
                return dict(client.pubsub_numsub(f"{channel}:{sid}"))[f"{channel}:{sid}"] == n

            seen = []
            async with _feed(host_b, sid, token) as ws:
                seen.append(json.loads(await ws.recv())["type"])
                await _until(lambda: subscribers(1), what="the relay to subscribe")
            await _until(lambda: subscribers(0), timeout=15, what="the relay to unsubscribe")
            await c.post(f"/api/live/sessions/{sid}/end", json={})
            return seen

    with running(a) as port_a, running(b) as port_b:
        seen = asyncio.run(run(f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"))
    client.close()
    db.close()
    assert seen and seen[0] in ("status", "exercise_started")


def test_a_redis_that_never_answers_holds_up_nothing(tmp_path) -> None:
    """Redis's port accepts connections and never answers (a hung host): the
    server starts, a live session starts and is listed, its status answers;
    each request waits at most about TELEREHAB_REDIS_TIMEOUT_S for Redis."""
    import socket

    from fastapi.testclient import TestClient

    hung = socket.socket()  # listens, never accepts: connects succeed, reads hang
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    db = open_database(f"sqlite:///{tmp_path / 'hung.db'}")
    _seed(db)
    url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
    app = create_app(Settings(data_dir=tmp_path, redis_url=url, redis_timeout_s=0.5), db)
    with TestClient(app) as c:
        _login_sync(c, "pat@home.org", "patient-pw-1")
        took = []
        for method, path in (("POST", "/api/live/sessions"), ("GET", "/api/live/sessions")):
            t0 = time.monotonic()
            r = c.request(method, path, json={} if method == "POST" else None)
            took.append(time.monotonic() - t0)
            assert r.status_code in (200, 201), r.text
        assert [x["id"] for x in r.json()] == [1]
        assert c.get("/api/live/sessions/1").json()["state"] in ("created", "ready")
        assert c.post("/api/live/sessions/1/end", json={}).status_code == 200
    hung.close()
    db.close()
    assert max(took) < 0.5 + 10  # generous: Redis's timeout once, not a hang
