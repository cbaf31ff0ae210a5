"""Bounds of live sessions, with a real server, real aiortc peers and the real
pose model: one active session per patient, a per-process limit, viewers per
session, and interrupted sessions leaving memory after the resume window."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection
from sqlalchemy import select

from telerehab.server import accounts, prescriptions
from telerehab.server.app import create_app
from telerehab.server.db import open_database
from telerehab.server.tables import AuditEvent, ExerciseSession
from telerehab.settings import Settings
from tests.conftest import running
from tests.test_live import CLIP, PROGRAM, _connect, _feed, _login, _ready, _seed, _start, _until


@pytest.fixture
def db(tmp_path):
    """Thea, her patients Pat and Sam, each with the live program."""
    db = open_database(f"sqlite:///{tmp_path / 'bounds.db'}")
    _seed(db)
    with db.session() as s:
        sam = accounts.create_user(s, "sam@home.org", "Sam", "patient", "patient-pw-2")
        accounts.link(s, 1, sam.id)
        prescriptions.create_program(s, sam.id, PROGRAM, 1)
    yield db
    db.close()


async def _state(c: httpx.AsyncClient, sid: int, state: str) -> None:
    async def reached() -> bool:
        return (await c.get(f"/api/live/sessions/{sid}")).json()["state"] == state

    await _until(reached, timeout=60, what=f"session {sid} to be {state}")


def test_one_active_live_session_per_patient(db, tmp_path, clip) -> None:
    """A second start while the first waits for its video answers the same
    session (200); while it runs, a 409 names it, and still once its
    connection is gone (interrupted, resumable): a reconnecting offer resumes
    the same session and count, so one workout stays one record."""
    app = create_app(Settings(data_dir=tmp_path, resume_window_s=60), db)

    async def run(base: str):
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            await _login(c, "pat@home.org", "patient-pw-1")
            first = await c.post("/api/live/sessions", json={})
            again = await c.post("/api/live/sessions", json={})
            sid = first.json()["id"]
            await _ready(c, sid)
            pc, _player = await _connect(c, sid, clip(CLIP), [])
            await _state(c, sid, "running")
            running_twice = await c.post("/api/live/sessions", json={})
            await pc.close()
            await _state(c, sid, "interrupted")
            new = await c.post("/api/live/sessions", json={})
            held = set(app.state.live.sessions)
            pc, _player = await _connect(c, sid, clip(CLIP), [])  # what the page does on 409
            await _state(c, sid, "running")
            ends = [(await c.post(f"/api/live/sessions/{sid}/end", json={})).status_code]
            await pc.close()
            return first, again, running_twice, new, held, ends

    with running(app) as port:
        first, again, running_twice, new, held, ends = asyncio.run(run(f"http://127.0.0.1:{port}"))
    sid = first.json()["id"]
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert running_twice.status_code == 409, running_twice.text
    assert f"live session {sid} is already running" in running_twice.json()["detail"]
    assert running_twice.headers["Location"] == f"/api/live/sessions/{sid}"
    assert new.status_code == 409 and new.headers["Location"] == f"/api/live/sessions/{sid}"
    assert f"live session {sid} is already interrupted" in new.json()["detail"]
    assert held == {sid}  # no second session
    assert ends == [200]


def test_a_process_holds_at_most_its_limit_of_live_sessions(db, tmp_path) -> None:
    """With TELEREHAB_LIVE_MAX_SESSIONS=1 a second patient's start is a 503 with
    Retry-After that says why; once the first session ends, it starts."""
    app = create_app(Settings(data_dir=tmp_path, live_max_sessions=1), db)

    async def run(base: str):
        async with httpx.AsyncClient(base_url=base, timeout=30) as pat, \
                httpx.AsyncClient(base_url=base, timeout=30) as sam:  # fmt: skip
            await _login(pat, "pat@home.org", "patient-pw-1")
            await _login(sam, "sam@home.org", "patient-pw-2")
            first = await _start(pat, {})
            refused = await sam.post("/api/live/sessions", json={})
            await pat.post(f"/api/live/sessions/{first}/end", json={})
            second = await _start(sam, {})
            await sam.post(f"/api/live/sessions/{second}/end", json={})
            return refused

    with running(app) as port:
        refused = asyncio.run(run(f"http://127.0.0.1:{port}"))
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "limit of 1 live sessions" in refused.json()["detail"]
    with db.session() as s:  # the refused start wrote nothing
        assert s.query(ExerciseSession).count() == 2


def test_viewers_of_a_session_are_bounded(db, tmp_path) -> None:
    """With TELEREHAB_LIVE_MAX_VIEWERS=1: a second WebSocket feed is closed with
    1013 naming the limit, and one more video watcher is a 429; once the first
    viewer leaves, another may watch."""
    app = create_app(Settings(data_dir=tmp_path, live_max_viewers=1), db)

    async def watch_offer() -> dict:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        await pc.close()
        return offer

    async def run(host: str):
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c, \
                httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            sid = await _start(c, {"video_consent": True})
            await _ready(c, sid)
            async with _feed(host, sid, token) as first:
                assert json.loads(await first.recv())["v"] == 2
                async with _feed(host, sid, token) as second:
                    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                        await second.recv()
            async with _feed(host, sid, token) as third:  # the first left: room again
                assert json.loads(await third.recv())["v"] == 2
            watched = await t.post(f"/api/live/sessions/{sid}/watch", json=await watch_offer())
            too_many = await t.post(f"/api/live/sessions/{sid}/watch", json=await watch_offer())
            await c.post(f"/api/live/sessions/{sid}/end", json={})
            return sid, closed.value.rcvd, watched, too_many

    with running(app) as port:
        sid, close, watched, too_many = asyncio.run(run(f"127.0.0.1:{port}"))
    assert (close.code, close.reason) == (1013, "session 1 has its limit of 1 viewers")
    assert watched.status_code == 200, watched.text
    assert too_many.status_code == 429 and "limit of 1 video watchers" in too_many.text
    assert int(too_many.headers["Retry-After"]) >= 1
    with db.session() as s:  # each watch recorded with what it watched
        watches = s.scalars(select(AuditEvent).where(AuditEvent.action == "watch"))
        assert {(e.kind, e.session_id) for e in watches} == {
            ("live_feed", sid),
            ("live_video", sid),
        }


def test_an_interrupted_session_leaves_memory_after_the_resume_window(db, tmp_path, clip):
    """TELEREHAB_RESUME_WINDOW_S=1: an interrupted session is evicted from the
    process soon after; it can no longer be resumed (409 saying why), its
    record stays interrupted and readable, and the patient may still end it."""
    app = create_app(Settings(data_dir=tmp_path, resume_window_s=1), db)

    async def run(base: str):
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            await _login(c, "pat@home.org", "patient-pw-1")
            sid = await _start(c, {})
            await _ready(c, sid)
            pc, _player = await _connect(c, sid, clip(CLIP), [])
            await _state(c, sid, "running")
            await pc.close()
            await _state(c, sid, "interrupted")

            async def evicted() -> bool:
                return sid not in app.state.live.sessions

            await _until(evicted, timeout=30, what="the session to leave memory")
            offer = await c.post(f"/api/live/sessions/{sid}/offer",
                                 json={"sdp": "v=0", "type": "offer"})  # fmt: skip
            status = (await c.get(f"/api/live/sessions/{sid}")).json()
            end = await c.post(f"/api/live/sessions/{sid}/end", json={})
            return sid, offer, status, end

    with running(app) as port:
        sid, offer, status, end = asyncio.run(run(f"http://127.0.0.1:{port}"))
    assert offer.status_code == 409 and "can be ended, not resumed" in offer.text, offer.text
    assert status["state"] == "interrupted" and status["resumable"] is False
    assert end.status_code == 200, end.text
    with db.session() as s:
        assert s.get(ExerciseSession, sid).status in ("complete", "partial")


def test_a_slow_viewer_loses_pose_frames_first_and_never_the_summary() -> None:
    """A therapist's feed that cannot keep up: when its queue is full, pose
    frames go (the oldest waiting, or the new one), counted by type; a
    repetition or the summary is never dropped for them. Full of messages that
    may not be dropped, the viewer is cut off after reading what waits, not
    left waiting for a summary that was thrown away."""
    from collections import Counter

    from telerehab.server.routers.live import ViewerQueue, ViewerTooSlow

    def msg(kind: str, n: int) -> dict:
        return {"v": 2, "type": kind, "n": n}

    dropped: Counter[str] = Counter()
    queue = ViewerQueue(dropped, limit=3)
    for m in (msg("pose", 1), msg("rep_completed", 1), msg("pose", 2), msg("rep_completed", 2),
              msg("pose", 3), msg("summary", 1)):  # fmt: skip
        queue.put(m)
    assert dropped == {"pose": 3} and not queue.overflowed

    async def read(n: int) -> list[dict]:
        got = []
        async for m in queue.messages():
            got.append(m)
            if len(got) == n:
                break
        return got

    assert [(m["type"], m["n"]) for m in asyncio.run(read(3))] == [
        ("rep_completed", 1), ("rep_completed", 2), ("summary", 1)]  # fmt: skip
    for k in range(4):  # nothing that may be dropped: the fourth overflows
        queue.put(msg("rep_completed", 10 + k))
    assert queue.overflowed and dropped["viewer_cut_off"] == 1

    async def drain() -> list[dict]:
        got = []
        with pytest.raises(ViewerTooSlow):
            async for m in queue.messages():
                got.append(m)
        return got

    assert [m["n"] for m in asyncio.run(drain())] == [10, 11, 12]
