"""More than one server process: `telerehab serve --workers N`, and control
requests of a live session reaching the process that holds it through Redis
(no sticky proxy). Real `telerehab serve` processes sharing one database and
Redis, a real aiortc patient streaming a shared clip."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription

from telerehab.server.db import head_revision, open_database
from telerehab.server.tables import ExerciseSession
from tests.conftest import REDIS
from tests.test_faults import _exit_time, served
from tests.test_live import (
    CLIP,
    _connect,
    _feed,
    _login,
    _played_and_drained,
    _ready,
    _seed,
    _start,
    _until,
)
from tests.test_serve import _serve


async def _first_frame(track, frames: asyncio.Queue) -> None:
    await frames.put(await track.recv())


def _env(clinic: dict, prefix: str, **more: str) -> dict:
    return {**clinic, "TELEREHAB_REDIS_URL": REDIS, "TELEREHAB_REDIS_PREFIX": prefix, **more}


def _token(base: str, email: str, password: str) -> str:
    login = {"email": email, "password": password, "kind": "bearer"}
    return httpx.post(f"{base}/api/auth/login", json=login, timeout=30).json()["token"]


def _stored(url: str, sid: int) -> tuple[str, list[float]]:
    db = open_database(url)
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        found = x.status, [round(r.t_end_s, 4) for r in x.repetitions]
    db.close()
    return found


def test_a_patient_controls_their_session_through_the_process_that_does_not_hold_it(
    clinic, redis_prefix, clip
) -> None:
    """Pat starts a live session on process A; everything else goes through
    process B: the model's readiness (status), aiortc's offer with the shared
    clip, pause, resume, end, and Thea's WebSocket feed and video (watch,
    with Pat's consent). Each answer is A's: the repetitions the patient is
    told of are stored, the end's summary counts them, Thea sees them and
    receives the video. Who may not control the session is refused on B
    itself."""
    env = _env(clinic, redis_prefix)

    async def run(base_a: str, base_b: str):
        async with httpx.AsyncClient(base_url=base_a, timeout=30) as on_a, \
                httpx.AsyncClient(base_url=base_b, timeout=30) as c, \
                httpx.AsyncClient(base_url=base_b, timeout=30) as t:  # fmt: skip
            await _login(on_a, "pat@home.org", "patient-pw-1")
            sid = await _start(on_a, {"video_consent": True})
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            await _ready(c, sid)  # B answers A's status
            feed: list[dict] = []

            async def therapist() -> None:
                async with _feed(base_b.removeprefix("http://"), sid, token) as ws:
                    async for raw in ws:
                        feed.append(json.loads(raw))
                        if feed[-1]["type"] == "summary":
                            return

            watching = asyncio.create_task(therapist())
            refused = {
                "therapist pauses": (await t.post(f"/api/live/sessions/{sid}/pause")).status_code
            }
            bad = {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "type": "offer"}
            malformed = await c.post(f"/api/live/sessions/{sid}/offer", json=bad)  # A's 422
            messages: list[dict] = []
            pc, player = await _connect(c, sid, clip(CLIP), messages)  # the offer, through B
            viewer = RTCPeerConnection()  # Thea's video, through B
            viewer.addTransceiver("video", direction="recvonly")
            frames: asyncio.Queue = asyncio.Queue()
            viewer.on("track", lambda track: asyncio.ensure_future(_first_frame(track, frames)))
            await viewer.setLocalDescription(await viewer.createOffer())
            offer = {"sdp": viewer.localDescription.sdp, "type": "offer"}
            watched = await t.post(f"/api/live/sessions/{sid}/watch", json=offer)
            assert watched.status_code == 200, watched.text
            await viewer.setRemoteDescription(RTCSessionDescription(**watched.json()))
            frame = await asyncio.wait_for(frames.get(), 30)
            await viewer.close()

            async def first_rep() -> bool:
                return any(m["type"] == "rep_completed" for m in messages)

            await _until(first_rep, timeout=60, what="the first repetition")
            paused = await c.post(f"/api/live/sessions/{sid}/pause")
            resumed = await c.post(f"/api/live/sessions/{sid}/resume")
            await _played_and_drained(c, sid, player)
            async with httpx.AsyncClient(base_url=base_b, timeout=30) as sam:
                await _login(sam, "sam@home.org", "patient-pw-2")
                r = await sam.post(f"/api/live/sessions/{sid}/end", json={})
                refused["another patient ends"] = r.status_code
            end = await c.post(f"/api/live/sessions/{sid}/end", json={"pain_after": 1, "rpe": 5})
            await pc.close()
            await asyncio.wait_for(watching, 15)
            again = await c.post(f"/api/live/sessions/{sid}/pause")  # ended: from the record
            return sid, messages, feed, paused, resumed, end, refused, again, frame, malformed

    with served(env) as (_a, base_a, _), served(env) as (_b, base_b, _):
        found = asyncio.run(run(base_a, base_b))
    sid, messages, feed, paused, resumed, end, refused, again, frame, malformed = found
    assert malformed.status_code == 422 and "invalid SDP offer" in malformed.text  # as A said it
    assert frame.width > 0 and frame.height > 0  # A's relay of Pat's video reached Thea
    assert refused == {"therapist pauses": 403, "another patient ends": 403}
    assert (paused.status_code, paused.json()["state"]) == (200, "paused"), paused.text
    assert (resumed.status_code, resumed.json()["state"]) == (200, "running"), resumed.text
    assert end.status_code == 200, end.text
    told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
    summary = end.json()
    assert told and summary["total"] == len(told)
    assert summary["received"] >= 100 and summary["processed"] > 0  # A's worker, A's counts
    status, stored = _stored(clinic["TELEREHAB_DATABASE_URL"], sid)
    assert stored == told
    assert status == ("complete" if len(told) >= 2 else "partial")  # 2 squats prescribed
    assert [m["rep"]["t_end_s"] for m in feed if m["type"] == "rep_completed"] == told
    assert any(m["type"] == "pose" for m in feed) and feed[-1]["type"] == "summary"
    assert again.status_code == 409 and "has ended" in again.text, again.text


def test_the_holder_hung_or_killed_is_a_503_with_retry_after_never_a_hang(
    clinic, redis_prefix
) -> None:
    """The process holding Pat's session stops answering (SIGSTOP): a pause
    through the other process is a 503 with Retry-After once
    TELEREHAB_REDIS_FORWARD_TIMEOUT_S has passed. Killed (-9): a 503 at once.
    B's health counts both. Once A's heartbeat has expired, B records the
    session as interrupted, and Pat can end it through B (no restart)."""
    timeout_s, ttl_s = 2.0, 8.0
    env = _env(clinic, redis_prefix, TELEREHAB_REDIS_FORWARD_TIMEOUT_S=str(timeout_s),
               TELEREHAB_REDIS_TTL_S=str(ttl_s))  # fmt: skip

    def pause(c: httpx.Client, sid: int) -> tuple[httpx.Response, float]:
        t0 = time.monotonic()
        r = c.post(f"/api/live/sessions/{sid}/pause")
        return r, time.monotonic() - t0

    with served(env) as (a, base_a, _), served(env) as (_b, base_b, _):
        auth = {"Authorization": f"Bearer {_token(base_a, 'pat@home.org', 'patient-pw-1')}"}
        with httpx.Client(base_url=base_a, timeout=30, headers=auth) as on_a:
            sid = on_a.post("/api/live/sessions", json={}).json()["id"]
        with httpx.Client(base_url=base_b, timeout=30, headers=auth) as c:
            assert c.get(f"/api/live/sessions/{sid}").status_code == 200  # A answers, via B
            os.kill(a.pid, signal.SIGSTOP)
            try:
                hung, hung_s = pause(c, sid)
            finally:
                os.kill(a.pid, signal.SIGCONT)
            os.kill(a.pid, signal.SIGKILL)
            assert a.wait(10) == -signal.SIGKILL
            killed = time.monotonic()
            _until_unsubscribed(redis_prefix, sid)  # Redis has seen A's connection close
            gone, gone_s = pause(c, sid)
            health = c.get("/api/health").json()
            while (end := c.post(f"/api/live/sessions/{sid}/end", json={})).status_code != 200:
                assert time.monotonic() - killed < ttl_s + 15, end.text  # the TTL, and slack
                assert end.status_code in (409, 503), end.text  # in progress elsewhere, or gone
                time.sleep(0.2)
            ended_s = time.monotonic() - killed
    assert hung.status_code == 503 and int(hung.headers["Retry-After"]) >= 1, hung.text
    assert "did not answer within 2 s" in hung.json()["detail"]
    assert timeout_s <= hung_s < timeout_s + 5
    assert gone.status_code == 503 and int(gone.headers["Retry-After"]) >= 1, gone.text
    assert "it is gone" in gone.json()["detail"] and gone_s < timeout_s
    redis = health["redis"]
    assert (redis["failed: no answer in time"], redis["failed: owner gone"]) == (1, 1), redis
    assert redis["forwarded"] == 1  # the status
    assert end.json()["total"] == 0 and ended_s >= 1  # nothing streamed; ended from the record
    assert _stored(clinic["TELEREHAB_DATABASE_URL"], sid) == ("partial", [])


def _until_unsubscribed(prefix: str, sid: int) -> None:
    """Until nobody listens on the inbox of the process holding `sid`."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=5, decode_responses=True)
    inbox = f"{prefix}:inbox:{json.loads(client.hget(f'{prefix}:live', str(sid)))['owner']}"

    async def unsubscribed() -> bool:
        return dict(client.pubsub_numsub(inbox))[inbox] == 0

    asyncio.run(_until(unsubscribed, timeout=10, what="the killed process's inbox to close"))
    client.close()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_serve_workers_2_migrates_once_and_every_worker_answers(
    tmp_path, redis_prefix, store
) -> None:
    """`telerehab serve --workers 2`: refused without Redis, naming the option.
    With Redis, on a new database: the parent migrates it once, two worker
    processes share the port, and requests for a live session answer the
    same whichever worker takes them (some are forwarded: health counts them).
    SIGTERM to the parent stops both within the shutdown bound, and the
    session is recorded as interrupted."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    env = {**os.environ, "TELEREHAB_DATABASE_URL": url, "TELEREHAB_DATA_DIR": str(tmp_path)}
    refused = _serve(env, "--workers", "2")
    out, _ = refused.communicate(timeout=60)
    assert refused.returncode == 1 and "--workers 2 needs TELEREHAB_REDIS_URL" in out, out
    assert not (tmp_path / "new.db").exists()  # refused before anything was done
    bound_s = 3.0
    env = _env(env, redis_prefix, TELEREHAB_SHUTDOWN_TIMEOUT_S=str(bound_s))
    with served(env, "--workers", "2") as (proc, base, printed):
        assert [x.split()[-1] for x in printed if x.startswith("database")] == [
            head_revision()], printed  # fmt: skip
        db = open_database(url)  # at head already: nothing to migrate
        _seed(db)
        states: list[tuple[int, str]] = []
        auth = {"Authorization": f"Bearer {_token(base, 'pat@home.org', 'patient-pw-1')}"}
        with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
            sid = c.post("/api/live/sessions", json={}).json()["id"]
        for _ in range(30):  # a new connection each: the kernel picks the worker
            r = httpx.get(f"{base}/api/live/sessions/{sid}", headers=auth, timeout=30)
            states.append((r.status_code, r.json().get("state", r.text)))
        assert all(code == 200 and state in ("created", "ready") for code, state in states), states
        forwarded = max(httpx.get(f"{base}/api/health").json()["redis"].get("forwarded", 0)
                        for _ in range(30))  # fmt: skip
        workers = [int(p) for p in next(x for x in printed if x.startswith("workers")).split()[3:]]
        assert len(workers) == 2 and all(_parent_of(p) == proc.pid for p in workers), printed
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        exited = _exit_time(proc, bound_s + 30)
    assert exited is not None and exited - sent < bound_s + 10, "".join(printed)
    assert not any(Path(f"/proc/{p}").exists() for p in workers)
    assert forwarded >= 1  # the states above were not all answered by the holder
    with db.session() as s:
        assert s.get(ExerciseSession, sid).status == "interrupted"
    db.close()


def test_a_holder_cut_off_from_redis_keeps_its_session(clinic, redis_prefix, tmp_path) -> None:
    """Process A (in this test) holds Pat's session and loses Redis for longer
    than the TTL; B (`telerehab serve`) finds A's entry dead and drops it,
    but A still runs on this host: the record stays in progress (never
    interrupted behind A's back) and B answers 409 meanwhile. Redis back, A
    writes its entry again and B forwards to it: Pat ends through B."""
    import redis

    from telerehab.server.app import create_app
    from telerehab.settings import Settings
    from tests.conftest import running
    from tests.faulty_link import FaultyLink

    ttl = 1.5
    link = FaultyLink(("127.0.0.1", 6379))
    through = f"redis://127.0.0.1:{link.port}/0"
    settings = Settings(data_dir=tmp_path, redis_url=through, redis_prefix=redis_prefix,
                        redis_ttl_s=ttl, redis_timeout_s=0.5)  # fmt: skip
    url = clinic["TELEREHAB_DATABASE_URL"]
    db = open_database(url)
    client = redis.Redis.from_url(REDIS, socket_timeout=5)

    def status_via(base: str, auth: dict, sid: int) -> httpx.Response:
        return httpx.get(f"{base}/api/live/sessions/{sid}", headers=auth, timeout=30)

    def until(check, what: str) -> None:
        asyncio.run(_until(lambda: asyncio.to_thread(check), timeout=ttl + 20, what=what))

    env = _env(clinic, redis_prefix, TELEREHAB_REDIS_TTL_S=str(ttl))
    with running(create_app(settings, db)) as port, served(env) as (_b, base_b, _):
        base_a = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {_token(base_a, 'pat@home.org', 'patient-pw-1')}"}
        sid = httpx.post(f"{base_a}/api/live/sessions", json={}, headers=auth).json()["id"]
        until(lambda: status_via(base_b, auth, sid).status_code == 200, "B to reach A")
        link.cut()
        until(lambda: client.hget(f"{redis_prefix}:live", str(sid)) is None, "B to drop A's entry")
        meanwhile = status_via(base_b, auth, sid)
        with db.session() as s:
            cut_status = s.get(ExerciseSession, sid).status
        link.restore()
        until(lambda: status_via(base_b, auth, sid).status_code == 200, "B to reach A again")
        end = httpx.post(f"{base_b}/api/live/sessions/{sid}/end", json={}, headers=auth)
    link.close()
    client.close()
    assert cut_status == "in_progress"
    assert meanwhile.status_code == 409 and "another server process" in meanwhile.text
    assert end.status_code == 200, end.text
    assert _stored(url, sid) == ("partial", [])  # ended by Pat, never interrupted
    db.close()
