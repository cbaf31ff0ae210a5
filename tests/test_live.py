"""Live sessions with real clients: aiortc's own peer streams a shared clip
(MediaPlayer) into the server; a therapist listens on the WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from telerehab.rehab_programs.engine import analyze_sequence
from telerehab.rehab_programs.library import default_library
from telerehab.server import accounts, i18n, movement, prescriptions
from telerehab.server.app import SharedEstimators, create_app
from telerehab.server.db import open_database
from telerehab.server.tables import ExerciseSession
from telerehab.settings import Settings
from tests.conftest import running, unavailable

CLIP = "squat_side_medflex.mp4"
PROGRAM = {
    "title": "Squats, live",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 1, "rest_s": 30}],
}


def _seed(db) -> None:
    """A therapist and their patient, with the live program prescribed."""
    with db.session() as s:
        t = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "therapist-pw-1")
        p = accounts.create_user(s, "pat@home.org", "Pat", "patient", "patient-pw-1")
        accounts.link(s, t.id, p.id)
        prescriptions.create_program(s, p.id, PROGRAM, t.id)


@pytest.fixture(scope="module")
def server(tmp_path_factory, store):
    """A real server on a loopback port, with a therapist and a patient."""

    folder = tmp_path_factory.mktemp("live")
    db = open_database(f"sqlite:///{folder / 'live.db'}")
    _seed(db)
    app = create_app(Settings(data_dir=folder, resume_window_s=60), db)
    with running(app) as port:
        yield f"127.0.0.1:{port}", db
    db.close()


async def _login(c: httpx.AsyncClient, email: str, password: str) -> str:
    r = await c.post("/api/auth/login", json={"email": email, "password": password,
                                               "kind": "bearer"})  # fmt: skip
    token = r.json()["token"]
    c.headers["Authorization"] = f"Bearer {token}"
    return token


@contextlib.asynccontextmanager
async def _feed(host: str, sid: int, token: str):
    """A script's WebSocket on a live session: the token goes in the first
    message, never in the URL."""
    async with websockets.connect(f"ws://{host}/ws/sessions/{sid}") as ws:
        await ws.send(json.dumps({"type": "auth", "v": 2, "token": token}))
        yield ws


async def _start(c: httpx.AsyncClient, body: dict) -> int:
    r = await c.post("/api/live/sessions", json=body)
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    return r.json()["id"]


async def _until(check, timeout: float = 30.0, what: str = "") -> None:
    """Wait by polling state, never by a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _connect(c, sid: int, clip: Path, messages: list):
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("results")
    channel.on("message", lambda m: messages.append(json.loads(m)))
    player = MediaPlayer(str(clip))
    pc.addTrack(player.video)
    await pc.setLocalDescription(await pc.createOffer())
    r = await c.post(f"/api/live/sessions/{sid}/offer",
                     json={"sdp": pc.localDescription.sdp, "type": "offer"})  # fmt: skip
    assert r.status_code == 200, r.text
    await pc.setRemoteDescription(RTCSessionDescription(**r.json()))
    return pc, player


async def _patient_streaming(c, clip: Path):
    """The patient logs in, starts a session and streams `clip` once the model is
    ready: (session id, peer connection, player, DataChannel messages)."""
    await _login(c, "pat@home.org", "patient-pw-1")
    sid = await _start(c, {})
    await _ready(c, sid)
    messages: list[dict] = []
    pc, player = await _connect(c, sid, clip, messages)
    return sid, pc, player, messages


async def _played_and_drained(c, sid: int, player) -> None:
    """Wait until the clip has been sent whole and the server has taken every frame."""

    async def played() -> bool:
        return player.video.readyState == "ended"

    await _until(played, timeout=60, what="the clip to play")

    async def drained() -> bool:
        s = (await c.get(f"/api/live/sessions/{sid}")).json()
        return s["processed"] + s["dropped"] >= s["received"]

    await _until(drained, what="the last frames")


async def _ready(c, sid: int) -> None:
    async def ready() -> bool:
        return (await c.get(f"/api/live/sessions/{sid}")).json()["state"] == "ready"

    await _until(ready, what="the pose model to load")


def test_a_clip_streamed_live_counts_what_analyze_counts(server, clip, pose_of) -> None:
    """The repetitions reported live equal `analyze` on the same clip; the
    therapist's WebSocket receives the same events; each is stored."""
    host, db = server
    expected = analyze_sequence(pose_of(CLIP), default_library().get("squat")).summary.reps

    async def run():
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c, \
                httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            sid = await _start(c, {"pain_before": 3})
            assert [x["id"] for x in (await t.get("/api/live/sessions")).json()] == [sid]
            feed: list[dict] = []

            async def therapist() -> None:
                async with _feed(host, sid, token) as ws:
                    async for raw in ws:
                        feed.append(json.loads(raw))
                        if feed[-1]["type"] == "summary":
                            return

            watching = asyncio.create_task(therapist())
            await _ready(c, sid)
            messages: list[dict] = []
            pc, player = await _connect(c, sid, clip(CLIP), messages)

            await _played_and_drained(c, sid, player)
            summary = (await c.post(f"/api/live/sessions/{sid}/end",
                                    json={"pain_after": 2, "rpe": 4})).json()  # fmt: skip
            await pc.close()
            await asyncio.wait_for(watching, 10)
            return sid, messages, feed, summary

    sid, messages, feed, summary = asyncio.run(run())
    reps = [m for m in messages if m["type"] == "rep_completed"]
    assert len(reps) == expected == summary["total"]
    assert all(m["v"] == 2 for m in messages)
    poses = [m for m in messages if m["type"] == "pose"]
    assert poses and len(next(p for p in poses if p["landmarks"])["landmarks"]) == 33
    assert "right_knee_flexion" in poses[-1]["angles"]
    sets = [m for m in messages if m["type"] == "set_completed"]
    assert [m["set_index"] for m in sets] == [1, 2][:expected]  # 2 sets of 1 repetition
    assert (
        summary["received"] >= 200
        and summary["processed"] + summary["dropped"] == (summary["received"])
    )
    # the therapist saw the same repetitions, at the same times
    assert [m["rep"]["t_end_s"] for m in feed if m["type"] == "rep_completed"] == [
        m["rep"]["t_end_s"] for m in reps
    ]
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert x.status == "complete" and (x.pain_before, x.pain_after, x.rpe) == (3, 2, 4)
        assert len(x.repetitions) == expected and len(x.sets) == expected


def test_a_disconnect_mid_set_keeps_completed_repetitions_and_can_resume(server, clip) -> None:
    host, db = server

    async def run():
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
            sid, pc, _player, messages = await _patient_streaming(c, clip(CLIP))

            async def first_rep() -> bool:
                return any(m["type"] == "rep_completed" for m in messages)

            await _until(first_rep, timeout=60, what="the first repetition")
            await pc.close()  # the patient's browser is gone, mid-way

            async def interrupted() -> bool:
                return (await c.get(f"/api/live/sessions/{sid}")).json()["state"] == "interrupted"

            await _until(interrupted, timeout=60, what="the session to be marked interrupted")

            def recorded() -> tuple[str, list[int]]:
                with db.session() as s:
                    x = s.get(ExerciseSession, sid)
                    return x.status, [r.id for r in x.repetitions]

            async def stored_interrupted() -> bool:  # written through the storage sink
                return recorded()[0] == "interrupted"

            await _until(stored_interrupted, timeout=10, what="the record to say interrupted")
            stored = recorded()
            # away, the patient picks Spanish on their page: the session resumes in it
            r = await c.put("/api/auth/language", json={"language": "es"})
            assert r.status_code == 200, r.text
            again: list[dict] = []
            pc2, player2 = await _connect(c, sid, clip(CLIP), again)  # resumed within the window

            async def running() -> bool:
                return (await c.get(f"/api/live/sessions/{sid}")).json()["state"] == "running"

            await _until(running, what="the session to run again")
            await _played_and_drained(c, sid, player2)  # the clip again, whole
            r = await c.post(f"/api/live/sessions/{sid}/end", json={})
            await pc2.close()
            return sid, stored, messages, again, r.json()

    try:
        sid, (status, before), first, again, summary = asyncio.run(run())
    finally:
        with db.session() as s:  # the module's patient speaks English again
            patient = s.query(accounts.User).filter_by(role="patient").one()
            accounts.set_language(s, patient.id, "en")
    assert status == "interrupted" and len(before) >= 1
    # the session started in English and resumed in Spanish: the exercise's
    # name, its instructions and every cue, the history replayed included
    english = default_library().get("squat")
    spanish = i18n.exercise_in(english, "es")
    started = [m for m in first if m["type"] == "exercise_started"]
    assert [m["name"] for m in started] == [english.name]
    resumed = [m for m in again if m["type"] == "exercise_started"]
    assert resumed and {(m["name"], m["instructions"]) for m in resumed} == {
        (spanish.name, spanish.instructions)}  # fmt: skip
    cues = [m["text"] for m in again if m["type"] == "feedback"]
    assert set(cues) <= set(spanish.feedback.values()), cues
    # the new connection hears the repetitions before it (history), then the
    # count goes on from there as the clip adds its own
    totals = [m["total"] for m in again if m["type"] == "rep_completed"]
    assert totals == list(range(1, len(totals) + 1)) and len(totals) > len(before)
    assert summary["total"] == len(totals)
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        # ended, not interrupted; partial if short of the 2 squats prescribed
        done = "complete" if summary["total"] >= 2 else "partial"
        assert x.status == done and len(x.repetitions) == summary["total"]
        assert [r.id for r in x.repetitions][: len(before)] == before  # kept, unchanged


def _malformed(sdp: str) -> dict[str, str]:
    """Ways a real offer gets broken; aiortc raises a different exception for each."""
    lines = sdp.split("\r\n")
    return {
        "no ICE credentials": "\r\n".join(x for x in lines if not x.startswith("a=ice-")),
        "no rtpmap": "\r\n".join(x for x in lines if not x.startswith("a=rtpmap")),
        "a payload type that is no number": sdp.replace("a=rtpmap:", "a=rtpmap:zz "),
        "an unknown DTLS role": sdp.replace("a=setup:actpass", "a=setup:nonsense"),
        "cut in half": sdp[: len(sdp) // 2],
        "a format parameter that is no number": sdp.replace("a=fmtp:", "a=fmtp:abc "),
    }


def test_a_malformed_offer_is_refused_and_changes_nothing(server, clip) -> None:
    """Each malformed SDP offer is a 422 naming the offer, never a 500; the
    session and its working connection go on as they were."""
    host, db = server

    async def run():
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
            sid, pc, player, _messages = await _patient_streaming(c, clip(CLIP))

            async def flowing(at_least: int) -> bool:
                return (await c.get(f"/api/live/sessions/{sid}")).json()["received"] >= at_least

            await _until(lambda: flowing(10), what="frames to arrive")
            probe = RTCPeerConnection()
            probe.addTrack(player.video)
            await probe.setLocalDescription(await probe.createOffer())
            offers = _malformed(probe.localDescription.sdp)
            await probe.close()
            for what, sdp in offers.items():
                r = await c.post(
                    f"/api/live/sessions/{sid}/offer", json={"sdp": sdp, "type": "offer"}
                )
                assert r.status_code == 422 and "invalid SDP offer" in r.text, (what, r.text)
            status = (await c.get(f"/api/live/sessions/{sid}")).json()
            assert status["state"] == "running", status
            await _until(lambda: flowing(status["received"] + 10), what="frames to keep coming")
            await pc.close()
            return sid, (await c.post(f"/api/live/sessions/{sid}/end", json={})).json()

    sid, summary = asyncio.run(run())
    with db.session() as s:  # never marked interrupted; partial if short of the 2 squats prescribed
        done = "complete" if summary["total"] >= 2 else "partial"
        assert s.get(ExerciseSession, sid).status == done


def test_live_access_is_checked(server) -> None:
    host, _db = server

    async def run():
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c, \
                httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            r0 = await t.post("/api/live/sessions", json={})
            assert r0.status_code == 403, r0.text
            sid = await _start(c, {})
            no_video = {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "type": "offer"}
            bad = await c.post(f"/api/live/sessions/{sid}/offer", json=no_video)
            assert bad.status_code == 422 and "invalid SDP offer" in bad.text
            assert (await t.post(f"/api/live/sessions/{sid}/pause")).status_code == 403
            watch = await t.post(f"/api/live/sessions/{sid}/watch",
                                 json={"sdp": "v=0", "type": "offer"})  # fmt: skip
            assert watch.status_code == 403 and "not consented to video" in watch.text
            codes = []
            url = f"ws://{host}/ws/sessions/{sid}"
            for path, first in (
                (url, {"type": "auth", "v": 2, "token": "x"}),
                (f"{url}?token={token}", {"type": "hello"}),
            ):
                async with websockets.connect(path) as ws:
                    await ws.send(json.dumps(first))
                    with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                        await ws.recv()
                codes.append(info.value.rcvd.code)
            assert codes == [4401, 4401]  # a wrong token, and a right one in the URL: refused
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                async with websockets.connect(url, origin="http://evil.example"):
                    pass
            assert refused.value.response.status_code == 403  # another site's page
            async with _feed(host, sid, token) as ws:
                first = json.loads(await ws.recv())  # the therapist of this patient may watch
                assert first["v"] == 2 and first["type"] in ("status", "exercise_started")
            await c.post(f"/api/live/sessions/{sid}/end", json={})
            return token

    asyncio.run(run())


def test_two_server_processes_share_a_live_session_through_redis(tmp_path, store, clip) -> None:
    """The patient streams to server A; the therapist's WebSocket reaches
    server B, which follows the session through Redis (127.0.0.1:6379)."""
    import uuid

    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError as exc:
        unavailable(f"Redis not reachable at {url}: {exc}")
    prefix = f"telerehab-test-{uuid.uuid4().hex[:8]}"
    db = open_database(f"sqlite:///{tmp_path / 'shared.db'}")
    _seed(db)
    settings = Settings(data_dir=tmp_path, redis_url=url, redis_prefix=prefix)
    a, b = create_app(settings, db), create_app(settings, db)

    async def run(host_a: str, host_b: str):
        async with httpx.AsyncClient(base_url=f"http://{host_a}", timeout=30) as c, \
                httpx.AsyncClient(base_url=f"http://{host_b}", timeout=30) as t:  # fmt: skip
            await _login(c, "pat@home.org", "patient-pw-1")
            token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            sid = await _start(c, {})
            await _ready(c, sid)
            assert [x["id"] for x in (await t.get("/api/live/sessions")).json()] == [sid]
            feed: list[dict] = []

            async def therapist() -> None:
                async with _feed(host_b, sid, token) as ws:
                    async for raw in ws:
                        feed.append(json.loads(raw))
                        if feed[-1]["type"] == "summary":
                            return

            watching = asyncio.create_task(therapist())
            messages: list[dict] = []
            pc, player = await _connect(c, sid, clip(CLIP), messages)

            async def played() -> bool:
                return player.video.readyState == "ended"

            await _until(played, timeout=60, what="the clip to play")
            summary = (await c.post(f"/api/live/sessions/{sid}/end", json={})).json()
            await pc.close()
            await asyncio.wait_for(watching, 15)
            return messages, feed, summary

    with running(a) as port_a, running(b) as port_b:
        messages, feed, summary = asyncio.run(run(f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"))
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    db.close()
    reps = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
    assert reps and len(reps) == summary["total"]
    assert [m["rep"]["t_end_s"] for m in feed if m["type"] == "rep_completed"] == reps
    assert any(m["type"] == "pose" for m in feed) and feed[-1]["type"] == "summary"


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "per-session"])
def test_live_on_the_blazepose_backend(tmp_path, store, clip, pose_of, batch) -> None:
    """TELEREHAB_POSE_BACKEND=blazepose: the sessions share one batched
    backend (TELEREHAB_LIVE_BATCH, the default) or each has its own (=0);
    either way a streamed clip counts what `analyze` counts."""
    assert Settings.model_fields["live_batch"].default is True  # the shipped way
    expected = analyze_sequence(pose_of(CLIP), default_library().get("squat")).summary.reps
    db = open_database(f"sqlite:///{tmp_path / 'live.db'}")
    _seed(db)
    settings = Settings(data_dir=tmp_path, pose_backend="blazepose", live_batch=batch)
    app = create_app(settings, db)
    assert isinstance(app.state.estimator_factory, SharedEstimators) is batch

    async def run(host: str):
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as c:
            await _login(c, "pat@home.org", "patient-pw-1")
            sid = await _start(c, {"pain_before": 1})
            await _ready(c, sid)
            messages: list[dict] = []
            pc, player = await _connect(c, sid, clip(CLIP), messages)

            await _played_and_drained(c, sid, player)
            summary = (await c.post(f"/api/live/sessions/{sid}/end", json={})).json()
            await pc.close()
            return messages, summary

    with running(app) as port:
        messages, summary = asyncio.run(run(f"127.0.0.1:{port}"))
    db.close()
    told = [m for m in messages if m["type"] == "rep_completed"]
    assert len(told) == expected == summary["total"]
    assert summary["processed"] > 0
    assert summary["processed"] + summary["dropped"] == summary["received"]


def test_a_live_session_follows_the_program_without_any_transport(tmp_path, pose_of) -> None:
    """The live session's adapter around the program state machine, fed the
    poses of two recordings end to end (curls, then shoulder abduction) as a
    pose backend would give them, without WebRTC: every repetition is stored
    under its exercise and set, each set's summary too, the page hears of the
    next exercise and when one is done, and the record equals the offline
    program analysis of the same frames."""
    import dataclasses

    import numpy as np

    from telerehab.rehab_programs.program import program_from_data
    from telerehab.rehab_programs.program_run import analyze_program
    from telerehab.server.tables import Repetition, SetSummary

    first, second = (
        pose_of("elbow_flexion_front_sagor.mp4"),
        pose_of("shoulder_abduction_front_sagor.mp4"),
    )
    t = np.concatenate([first.t_s, second.t_s + first.t_s[-1] + 1.0])
    seq = dataclasses.replace(
        first, image=np.concatenate([first.image, second.image]),
        world=np.concatenate([first.world, second.world]), t_s=t, index=np.arange(len(t)),
        n_people=np.concatenate([first.n_people, second.n_people]),
        camera_xy=np.concatenate([first.camera_xy, second.camera_xy]),
    )  # fmt: skip
    document = {"title": "Arms", "sessions_per_week": 3, "exercises": [
        {"exercise": "elbow_flexion", "sets": 2, "reps": 3, "rest_s": 0},
        {"exercise": "shoulder_abduction", "sets": 2, "reps": 3, "rest_s": 0}]}  # fmt: skip
    db = open_database(f"sqlite:///{tmp_path / 'adapter.db'}")
    live, said, session = _replayed_live(db, seq, program_from_data(document, "test"))
    offline = analyze_program(seq, program_from_data(document, "test"))
    with db.session() as s:
        stored = s.query(Repetition).filter_by(session_id=session).all()
        sets = s.query(SetSummary).filter_by(session_id=session).all()
        by_exercise = {r.prescribed.exercise_id: r.analysis.summary.reps for r in offline.runs}
        assert {e: sum(r.exercise_id == e for r in stored) for e in by_exercise} == by_exercise
        abduction = sorted((r.index, r.set_index) for r in stored
                           if r.exercise_id == "shoulder_abduction")  # fmt: skip
        assert abduction == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
        assert sorted((x.exercise_id, x.set_index, x.reps) for x in sets
                      if x.exercise_id == "shoulder_abduction") == [
            ("shoulder_abduction", 1, 3), ("shoulder_abduction", 2, 3)]  # fmt: skip
    kinds = [m["type"] for m in said]
    assert [m["index"] for m in said if m["type"] == "exercise_started"] == [0, 1]
    done = [m for m in said if m["type"] == "exercise_completed"]
    assert done and done[-1]["text"] == "program complete"
    assert (
        live.reps_total
        == sum(by_exercise.values())
        == kinds.count("rep_completed") - kinds.count("rep_withdrawn")
    )
    # the movement of each exercise, kept as a skeleton at most 15 frames a second
    live._keep_movement()
    with db.session() as s:
        kept = {m.exercise_id: m for m in s.get(ExerciseSession, session).movements}
        assert set(kept) == {"elbow_flexion", "shoulder_abduction"}
        t_first, _ = movement.decode(kept["elbow_flexion"].data)
        t_second, lm = movement.decode(kept["shoulder_abduction"].data)
    assert t_first[0] < t_first[-1] < t_second[0]  # one after the other, in session time
    span = t[-1] - t[0]
    assert 0.9 * 15 * span <= len(t_first) + len(t_second) <= 15 * span + 2
    assert np.nanmax(lm[:, :, 2]) > 0.9  # visibility kept with x and y
    db.close()


def test_a_repetition_the_session_still_weighs_is_judged_when_it_ends(tmp_path, pose_of) -> None:
    """Crunches skipped, then squats, and the session ends a second after the
    second squat: the crunch's counter was still in the movement the squats
    gave its hip angle, so the squats the look-ahead counted were still
    waiting for it to end. The session's end ends it: they are judged then,
    stored and told, as the offline analysis judges them at the recording's
    end."""
    from telerehab.rehab_programs.program import program_from_data
    from telerehab.rehab_programs.program_run import analyze_program
    from telerehab.server.tables import Repetition

    seq = pose_of("squat_side_medflex.mp4")
    document = {"title": "Core and legs", "sessions_per_week": 3, "exercises": [
        {"exercise": "crunch", "sets": 1, "reps": 5},
        {"exercise": "squat", "sets": 1, "reps": 5}]}  # fmt: skip
    offline = analyze_program(seq, program_from_data(document, "test"))
    assert [r.analysis.summary.reps for r in offline.runs] == [0, 2]
    db = open_database(f"sqlite:///{tmp_path / 'end.db'}")
    live, said, session = _replayed_live(db, seq, program_from_data(document, "test"))

    def squats() -> int:
        with db.session() as s:
            stored = s.query(Repetition).filter_by(session_id=session).all()
            return sum(r.exercise_id == "squat" for r in stored)

    assert squats() == 0 and live.reps_total == 0  # still waiting
    summary = live.end()
    assert squats() == 2 == live.reps_total == summary["total"]
    told = [m for m in said if m["type"] == "rep_completed"]
    assert [m["exercise_id"] for m in told] == ["squat", "squat"]
    assert [m["index"] for m in said if m["type"] == "exercise_started"] == [0, 1]
    assert said[-1]["type"] == "summary"
    live.end()  # a second end judges nothing twice
    assert squats() == 2
    db.close()


def _replayed_live(db, seq, program, **options):
    """A live session (`options`: LiveSession's) of the seeded patient
    following `program`, fed the poses of `seq` frame by frame as its worker
    would be (no transport, no thread): (the session, the messages it sent,
    its record's id)."""
    import numpy as np

    from telerehab.server.live import IncomingFrame, LiveSession

    _seed(db)
    with db.session() as s:
        patient = s.query(accounts.User).filter_by(role="patient").one()
        session = _live_record(s, patient.id)
    frames = list(seq.frames())

    class Recorded:  # a pose backend that gives the recording's poses back
        def process(self, video_frame):
            return frames[video_frame.index]

    class Picture:  # what aiortc hands over: only its pixels are asked for
        def to_ndarray(self, format: str):
            return np.zeros((8, 8, 3), np.uint8)

    live = LiveSession(session, patient.id, list(program.exercises), db, lambda: Recorded(),
                       **options)  # fmt: skip
    said: list[dict] = []
    live._emit = said.append
    live._estimator = Recorded()
    live._begin_exercise()
    for i, frame in enumerate(frames):
        live._process(IncomingFrame(Picture(), frame.t_s, time.monotonic()), i)
    return live, said, session


def _live_record(s, patient_id: int) -> int:
    from telerehab.server import records

    return records.start_session(s, patient_id, source="live").id


def test_an_offer_before_the_model_is_loaded_keeps_the_session_running(tmp_path) -> None:
    """The patient's video arrives while the pose model still loads: the
    worker, once loaded, must not turn "running" back into "ready" (every
    frame would then be dropped). States change under a lock, by the table of
    allowed transitions; a change it does not allow is refused and counted."""
    import threading

    from telerehab.rehab_programs.program import program_from_data
    from telerehab.server.live import LiveSession

    db = open_database(f"sqlite:///{tmp_path / 'race.db'}")
    _seed(db)
    with db.session() as s:
        patient = s.query(accounts.User).filter_by(role="patient").one()
        sid = _live_record(s, patient.id)
    loading = threading.Event()

    class Estimator:
        class backend:  # closed by the worker at the end
            @staticmethod
            def close() -> None: ...

    def slow_model():
        loading.set()
        time.sleep(0.5)  # the offer lands meanwhile
        return Estimator()

    plan = list(program_from_data(PROGRAM, "test").exercises)
    live = LiveSession(sid, patient.id, plan, db, slow_model)
    loop = asyncio.new_event_loop()
    live.prepare(loop)
    assert loading.wait(10)
    live.start(loop)  # the offer: frames flow
    deadline = time.monotonic() + 20
    while live.program is None or live.state != "running":
        assert time.monotonic() < deadline, live.state
        time.sleep(0.05)
    time.sleep(1.0)  # the worker has long finished loading
    assert live.state == "running"
    live.end()
    assert live.state == "ended" and not live._set_state("running")
    assert live.refused_transitions == 1
    loop.close()
    db.close()


def test_every_engine_event_reaches_the_pages_in_the_one_schema(tmp_path) -> None:
    """A live session sends each event as `rehab_programs.messages` derives it
    (the report's form), with its context: an event class the server has
    never heard of is sent too, not dropped; a repetition is stored, then told
    with its place in the set and the session."""
    from dataclasses import dataclass

    from telerehab.rehab_programs import events as ev
    from telerehab.rehab_programs.messages import event_message
    from telerehab.rehab_programs.program import program_from_data
    from telerehab.rehab_programs.program_run import Step
    from telerehab.server.live import LiveSession
    from telerehab.server.tables import Repetition

    @dataclass(frozen=True, slots=True)
    class PainReported(ev.Event):  # an event added after this server was written
        level: int

    db = open_database(f"sqlite:///{tmp_path / 'schema.db'}")
    _seed(db)
    with db.session() as s:
        patient = s.query(accounts.User).filter_by(role="patient").one()
        sid = _live_record(s, patient.id)
    noted = {**PROGRAM["exercises"][0], "notes": "Hands on the chair back."}
    plan = list(program_from_data({**PROGRAM, "exercises": [noted]}, "test").exercises)
    live = LiveSession(sid, patient.id, plan, db, lambda: None)  # squat, 2 sets of 1
    said: list[dict] = []
    live._emit = said.append
    live._begin_exercise()
    rep = ev.RepResult(1, "both", 0.5, 1.2, 2.0, 36, 80.0, 170.0, 90.0, 1.5, 0.7, 0.1, 0.7, 88)
    for event in (ev.RepCompleted(2.0, rep), ev.Feedback(2.1, "too_fast", "Slower"),
                  PainReported(2.2, 4), ev.TrackingLost(2.3, "no person")):  # fmt: skip
        live._on_step(Step(0, 1, event))
    first, rep_msg, feedback, pain, lost = said
    assert first["type"] == "exercise_started" and first["exercise_id"] == "squat"
    assert first["name"] and first["of"] == 1 and first["sets"] == 2
    assert first["notes"] == "Hands on the chair back."  # the therapist's, beside instructions
    assert rep_msg == {**event_message(ev.RepCompleted(2.0, rep)), "exercise_id": "squat",
                       "set": 1, "count": 1, "total": 1}  # fmt: skip
    assert feedback == {**event_message(ev.Feedback(2.1, "too_fast", "Slower")),
                        "exercise_id": "squat"}  # fmt: skip
    assert pain == {"v": 2, "type": "pain_reported", "t_s": 2.2, "level": 4,
                    "exercise_id": "squat"}  # fmt: skip
    assert lost["type"] == "tracking_lost" and lost["reason"] == "no person"
    with db.session() as s:
        assert s.query(Repetition).filter_by(session_id=sid).count() == 1
    db.close()


def test_a_resumed_session_speaks_the_patients_language_now(tmp_path) -> None:
    """A patient who changed their language while away (or reloads the page)
    hears the session in the new one from their next connection (`speak`,
    called by the offer): the exercise's name and instructions, the next
    exercise's name and every cue, both those to come and those the history
    replays to the new connection; counts and the rest are untouched."""
    from telerehab.rehab_programs import events as ev
    from telerehab.rehab_programs.program import program_from_data
    from telerehab.rehab_programs.program_run import Step
    from telerehab.server.live import LiveSession

    db = open_database(f"sqlite:///{tmp_path / 'words.db'}")
    _seed(db)
    with db.session() as s:
        patient = s.query(accounts.User).filter_by(role="patient").one()
        sid = _live_record(s, patient.id)
    heel_raises = {"exercise": "heel_raise", "sets": 1, "reps": 1}
    two = {**PROGRAM, "exercises": [*PROGRAM["exercises"], heel_raises]}
    plan = list(program_from_data(two, "test").exercises)
    live = LiveSession(sid, patient.id, plan, db, lambda: None)  # begun in English
    heard: list[dict] = []
    live.listeners.append(heard.append)
    live._emit = live._deliver  # as the event loop would, at once
    live._begin_exercise()
    live._on_step(Step(0, 1, ev.Feedback(1.0, "rep.tempo", "Slow down and control the movement.")))
    live._on_step(Step(0, 2, ev.ExerciseCompleted(2.0, 0, "squat")))
    squat_en = default_library().get("squat")
    squat_es = i18n.exercise_in(squat_en, "es")
    heel_es = i18n.exercise_in(default_library().get("heel_raise"), "es")
    assert [m["name"] for m in heard if m["type"] == "exercise_started"] == [squat_en.name]
    assert heard[-1]["next"] == default_library().get("heel_raise").name
    kept = [dict(m) for m in live.history]

    live.speak("es")  # the patient's language at their new connection
    replayed = list(live.history)
    assert [m["type"] for m in replayed] == [m["type"] for m in kept]  # nothing lost
    said = {m["type"]: m for m in replayed}
    started, cue, done = said["exercise_started"], said["feedback"], said["exercise_completed"]
    assert (started["name"], started["instructions"]) == (squat_es.name, squat_es.instructions)
    assert started["sets"] == 2 and started["of"] == 2  # the rest as it was
    assert cue["text"] == squat_es.feedback["rep.tempo"] != squat_en.feedback["rep.tempo"]
    assert cue["key"] == "rep.tempo" and done["next"] == heel_es.name
    live._on_step(Step(0, 2, ev.Feedback(3.0, "rep.rom", squat_en.feedback["rep.rom"])))
    assert heard[-1]["text"] == squat_es.feedback["rep.rom"]  # and those to come
    live._announce(1, 4.0)
    assert (heard[-1]["name"], heard[-1]["instructions"]) == (heel_es.name, heel_es.instructions)
    live.speak("en")  # and back: the library's own words
    cue = next(m for m in live.history if m["type"] == "feedback")
    assert cue["text"] == squat_en.feedback["rep.tempo"]
    db.close()


def test_counting_waits_for_the_patient_in_view_and_pauses_when_they_leave(tmp_path, pose_of
                                                                          ) -> None:  # fmt: skip
    """The camera check: a live session counts once the landmarks its exercise
    needs have been in the picture for a second, from the first of those
    frames (a patient who starts at once loses nothing), and pauses (says so,
    with what is missing) while they are out of it: a squat the feet left the
    picture in is not counted live (the offline analysis flags it)."""
    import dataclasses

    import numpy as np

    from telerehab.rehab_programs.program import program_from_data
    from telerehab.server.live import CameraCheck

    seq = pose_of("squat_side_medflex.mp4")
    offline = analyze_sequence(seq, default_library().get("squat"))
    assert len(offline.reps) == 2 and offline.reps[0].t_start_s < 1.0  # begins at once
    second = offline.reps[1]
    image = seq.image.copy()
    hidden = (seq.t_s > second.t_start_s + 0.2) & (seq.t_s < second.t_start_s + 1.4)
    image[np.ix_(hidden, [27, 28, 29, 30, 31, 32])] = [0.5, 1.2, 0.0, 0.1]  # feet out of it
    cropped = dataclasses.replace(seq, image=image)
    db = open_database(f"sqlite:///{tmp_path / 'check.db'}")
    squats = {"title": "Squats", "sessions_per_week": 3,
              "exercises": [{"exercise": "squat", "sets": 1, "reps": 10}]}  # fmt: skip
    _, said, _ = _replayed_live(db, cropped, program_from_data(squats, "test"),
                                camera_check_s=1.0)  # fmt: skip
    framing = [m for m in said if m["type"] == "framing"]
    reps = [m["rep"] for m in said if m["type"] == "rep_completed"]
    assert framing[0]["counting"] is False  # checking first
    began = next(m for m in framing if m["counting"])
    assert 1.0 <= began["t_s"] - seq.t_s[np.isfinite(seq.image[:, 0, 0])][0] <= 1.5
    paused = next(m for m in framing if m["t_s"] > began["t_s"] and not m["counting"])
    assert set(paused["missing"]) & {"left_ankle", "right_ankle"} and not paused["in_view"]
    assert any(m["counting"] for m in framing if m["t_s"] > paused["t_s"])  # back in view
    # the first squat counted as offline (its frames were held during the check); the
    # one the patient was told counting paused in is not (offline: counted, flagged)
    assert [round(r["t_end_s"], 2) for r in reps] == [round(offline.reps[0].t_end_s, 2)]
    flagged = analyze_sequence(cropped, default_library().get("squat")).reps
    assert [r.rom_trusted for r in flagged] == [True, False]
    # without the check, every frame counts
    assert CameraCheck(0).update(0.0, False, "frame") == ["frame"]
    db.close()
