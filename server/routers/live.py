"""Live sessions: start, WebRTC offer / answer, pause, resume, end, watch, and
the therapists' WebSocket (`/ws/sessions/{id}`).

The WebSocket takes its login from the cookie (browsers; the page's Origin
must be this server's or one of `allowed_origins`) or, for scripts, from a
first message `{"type": "auth", "v": 2, "token": "..."}` sent within
AUTH_TIMEOUT_S; never from the URL. Access is checked again every
RECHECK_S while the feed runs, so a deactivated user or an ended care link
loses the feed at once (close code 4403)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field

from telerehab.errors import UnreachableError
from telerehab.rehab_programs.program import program_from_data

from .. import accounts, audit, prescriptions, records, routing
from ..deps import (
    COOKIE,
    IdPath,
    User,
    client_address,
    require_reader,
    require_therapist_of,
)
from ..exercises import clinic_library
from ..fanout import redis_error
from ..live import LiveSession, message
from ..rtc import PeerSet, SdpError, answer_patient, answer_watcher, ice_configuration
from ..schemas import Text
from ..tables import ExerciseSession

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/live", tags=["live"])
ws_router = APIRouter()
AUTH_TIMEOUT_S = 5.0
RECHECK_S = 2.0
LiveId = IdPath("session")


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pain_before: int | None = Field(default=None, ge=0, le=10)
    video_consent: bool = False
    movement_consent: bool = True  # a skeleton replay for the therapist (never video)
    device: Text = Field(default="", max_length=200)


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sdp: Text = Field(max_length=100_000)
    type: str = Field(pattern="^offer$")


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pain_after: int | None = Field(default=None, ge=0, le=10)
    rpe: int | None = Field(default=None, ge=0, le=10)
    notes: Text = Field(default="", max_length=5000)


class Registry:
    """The live sessions of this server process, and its bounds: at most
    `max_sessions` held at once, `max_viewers` feeds per session, and an
    interrupted session leaves memory once `resume_window_s` has passed."""

    def __init__(self, max_sessions: int = 8, max_viewers: int = 10,
                 resume_window_s: float = 600) -> None:  # fmt: skip
        self.sessions: dict[int, tuple[LiveSession, PeerSet]] = {}
        self.answers: dict[int, dict] = {}  # what `start` answered, given to a second start
        self.viewers: Counter[int] = Counter()  # WebSocket feeds per session (local or relayed)
        self.max_sessions = max_sessions
        self.max_viewers = max_viewers
        self.resume_window_s = resume_window_s
        self.starting = asyncio.Lock()  # one start at a time: its checks and its entry

    def of_patient(self, patient_id: int) -> LiveSession | None:
        """The patient's session held here, if any (one at most)."""
        return next((live for live, _ in self.sessions.values()
                     if live.patient_id == patient_id), None)  # fmt: skip

    def drop(self, session_id: int) -> tuple[LiveSession, PeerSet] | None:
        """No longer held here (whatever stops it is the caller's)."""
        self.answers.pop(session_id, None)
        return self.sessions.pop(session_id, None)

    async def evict(self, session_id: int) -> None:
        """Out of memory: peers and worker stop; the record stays as it is."""
        found = self.drop(session_id)
        if found is not None:
            live, peers = found
            await peers.close()
            await asyncio.to_thread(live.end)

    async def evict_expired(self) -> list[int]:
        """Interrupted sessions whose resume window has passed leave memory
        (their record stays interrupted, with every repetition; the patient
        may still end it)."""
        now = time.monotonic()
        expired = [sid for sid, (live, _) in self.sessions.items()
                   if live.state == "interrupted" and live.interrupted_at is not None
                   and now - live.interrupted_at > self.resume_window_s]  # fmt: skip
        for sid in expired:
            await self.evict(sid)
        if expired:
            logger.info("live sessions %s: resume window over, evicted from memory", expired)
        return expired

    async def evict_expired_forever(self) -> None:
        """The app's janitor: evicts every few seconds (a short window, sooner)."""
        every = min(max(self.resume_window_s / 2, 0.2), 30.0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.evict_expired()
            except Exception:  # logged; the next round tries again
                logger.exception("evicting expired live sessions failed")

    def get(self, session_id: int) -> tuple[LiveSession, PeerSet]:
        found = self.sessions.get(session_id)
        if found is None:  # refused like another patient's: ids cannot be probed
            raise HTTPException(403, f"no live session {session_id} here that you may use")
        return found

    async def close_patient(self, patient_id: int) -> None:
        """A deactivated patient: their live sessions in this process end now,
        recorded as interrupted (repetitions kept)."""
        for sid, (live, peers) in list(self.sessions.items()):
            if live.patient_id == patient_id:
                self.drop(sid)
                await peers.close()
                await asyncio.to_thread(live.interrupt)
                await asyncio.to_thread(live.end)

    async def close_all(self) -> None:
        """Server shutdown: every session still live is recorded as interrupted
        (with all its repetitions) first, then its peers and worker stop; the
        summary each sends ends its WebSockets."""
        found = list(self.sessions.values())
        self.sessions.clear()
        self.answers.clear()
        for live, _peers in found:
            await asyncio.to_thread(live.interrupt)
        for live, peers in found:
            await peers.close()
            await asyncio.to_thread(live.end)


def registry(request: Request) -> Registry:
    return request.app.state.live


def _owner(who, live: LiveSession) -> None:
    _patient(None, who, live.patient_id)


@router.post("/sessions", status_code=201, responses={
    200: {"description": "the patient's session that waits for its video, answered again"},
    409: {"description": "the patient's session is running, or interrupted and resumable "
                         "(named; `Location` is its URL: reconnect with its offer)"},
    503: {"description": "this server holds its limit of live sessions",
          "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
})  # fmt: skip
async def start(body: StartIn, request: Request, response: Response, who: User) -> dict:
    """Open a live session on the patient's current program. One per patient:
    a session still waiting for its video is answered again (200, a page
    reloaded or a double click); a running or paused one is a 409 that names
    it (reconnect with its offer, or end it), and so is an interrupted one
    still in its resume window: a patient whose connection dropped, or who
    reloaded the page, carries on in the same session and count (one workout,
    one record). One whose model failed is superseded."""
    if who.role != "patient":
        raise HTTPException(403, "only a patient starts a live session")
    reg = registry(request)
    async with reg.starting:
        await reg.evict_expired()
        mine = reg.of_patient(who.id)
        if mine is not None and mine.state in ("created", "ready"):
            response.status_code = 200
            return reg.answers[mine.session_id]
        if mine is not None and mine.state in ("running", "paused", "interrupted"):
            raise _already(mine.session_id, mine.state, "")
        if mine is not None:  # its model failed: superseded
            await reg.evict(mine.session_id)
        fanout = request.app.state.fanout
        for sid, entry in (await _remote_sessions(fanout)).items():
            if entry["patient_id"] == who.id and entry["state"] in (
                "created",
                "ready",
                "running",
                "paused",
            ):
                raise _already(sid, entry["state"], " in another server process")
        if len(reg.sessions) >= reg.max_sessions:
            why = f"this server holds its limit of {reg.max_sessions} live sessions"
            raise HTTPException(503, f"{why}: try again in a minute", {"Retry-After": "60"})
        return await _open(body, request, who)


def _already(session_id: int, state: str, where: str) -> HTTPException:
    return HTTPException(
        409,
        f"live session {session_id} is already {state} for you{where}: reconnect to it "
        f"(POST /api/live/sessions/{session_id}/offer) or end it first",
        {"Location": f"/api/live/sessions/{session_id}"},
    )


async def _remote_sessions(fanout) -> dict[int, dict]:
    """Other processes' live sessions through Redis; none when Redis is out
    (this process goes on alone, and says so in its log)."""
    if fanout is None:
        return {}
    try:
        return await fanout.sessions()
    except Exception as exc:
        logger.warning("live sessions of other processes unknown: Redis unreachable (%s)", exc)
        return {}


async def _open(body: StartIn, request: Request, who) -> dict:
    db = request.app.state.db

    def create() -> tuple[int, list, int]:
        # Database work off the event loop: SQLite may wait for its write lock.
        with db.session() as s:
            version = prescriptions.active_program(s, who.id)
            if version is None:
                raise HTTPException(409, "no program prescribed yet: ask your therapist")
            doc = program_from_data(
                version.document, f"program {version.program_id}", clinic_library(s)
            )
            x = records.start_session(
                s, who.id, program_version_id=version.id, device=body.device,
                pain_before=body.pain_before, video_consent=body.video_consent,
                movement_consent=body.movement_consent,
            )  # fmt: skip
            return x.id, list(doc.exercises), version.version

    sid, plan, version = await asyncio.to_thread(create)
    actor = audit.Actor.of(who, client_address(request))
    what = audit.Touched("live_session", session_id=sid)
    target = f"live session {sid}"
    await asyncio.to_thread(audit.record_apart, db, actor, "record", who.id, target, what=what)
    settings = request.app.state.settings
    live = LiveSession(sid, who.id, plan, db,
                       request.app.state.estimator_factory(settings.live_variant,
                                                           settings.live_max_people),
                       video_consent=body.video_consent, movement_consent=body.movement_consent,
                       camera_check_s=settings.live_camera_check_s,
                       sink=request.app.state.sink, language=who.language)  # fmt: skip
    reg = registry(request)
    reg.sessions[sid] = (live, PeerSet())
    answer = {"id": sid, "exercises": [p.exercise_id for p in plan], "program_version": version}
    reg.answers[sid] = answer
    fanout = request.app.state.fanout
    if fanout is not None:  # other server processes' therapists follow through Redis
        live.listeners.append(fanout.listener(sid, who.id, body.video_consent))
    live.prepare(asyncio.get_running_loop())  # the model loads while the patient gets ready
    return answer


def _record(db, who, session_id: int, unreachable: UnreachableError | None = None
            ) -> ExerciseSession:  # fmt: skip
    """The stored record of a live session no process here holds (its server
    stopped): refused like another patient's unless the caller may read it.
    One still in progress is live in another process: `unreachable` when that
    process cannot be asked now."""
    with db.session() as s:
        x = s.get(ExerciseSession, session_id)
        if x is None or x.source != "live" or not accounts.can_read_patient(s, who, x.patient_id):
            raise HTTPException(403, f"no live session {session_id} here that you may use")
        if x.status == "in_progress" and unreachable is not None:
            raise unreachable
        if x.status == "in_progress":
            raise HTTPException(409, f"session {session_id} is live in another server process")
        x.repetitions  # noqa: B018 (loaded before the database session closes)
        return x


def _gone(x: ExerciseSession) -> HTTPException:
    if x.status == "complete":
        return HTTPException(409, f"session {x.id} has ended")
    return HTTPException(409, f"session {x.id} was interrupted when its server stopped: "
                              "it can be ended, not resumed")  # fmt: skip


def _stored_status(x: ExerciseSession) -> dict:
    """What the patient's page shows of a session whose server stopped."""
    state = "ended" if x.status == "complete" else "interrupted"
    return message("status", state=state, total=len(x.repetitions), resumable=False)


def _reopen(db, session_id: int) -> None:
    with db.session() as s:
        x = s.get(ExerciseSession, session_id)
        x.status, x.ended_at = "in_progress", None


@router.get("/sessions")
async def list_live(request: Request, who: User) -> list[dict]:
    """Live sessions the caller may see (therapists: their patients'), in this
    process and, with Redis, in the others."""
    found = {live.session_id: {"patient_id": live.patient_id, "state": live.state,
                               "video": live.video_consent}
             for live, _peers in registry(request).sessions.values()}  # fmt: skip
    for sid, entry in (await _remote_sessions(request.app.state.fanout)).items():
        found.setdefault(sid, entry)

    def visible() -> list[dict]:
        with request.app.state.db.session() as s:
            return [{"id": sid, **entry} for sid, entry in sorted(found.items())
                    if accounts.can_read_patient(s, who, entry["patient_id"])]  # fmt: skip

    return await asyncio.to_thread(visible)


UNREACHABLE = {503: {"description": "the server process holding the session cannot be "
                                     "reached now (gone, Redis out, too slow)",
                      "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}  # fmt: skip


@router.get("/sessions/{session_id}", responses=UNREACHABLE)
async def status(session_id: LiveId, request: Request, who: User) -> dict:
    if (answer := await _elsewhere(request, who, session_id, require_reader)) is not None:
        return answer
    db = request.app.state.db
    actor = audit.Actor.of(who, client_address(request))
    what, target = (
        audit.Touched("live_session", session_id=session_id),
        f"live session {session_id}",
    )

    def read() -> dict:
        found = registry(request).sessions.get(session_id)
        if found is None:  # its server stopped: the record says
            x = _record(db, who, session_id)
            audit.record_apart(db, actor, "read", x.patient_id, target, what=what)
            return _stored_status(x)
        with db.session() as s:
            require_reader(s, who, found[0].patient_id)
            audit.record(s, actor, "read", found[0].patient_id, target, what=what)
        return found[0].status()

    return await asyncio.to_thread(read)


@router.post("/sessions/{session_id}/offer", responses=UNREACHABLE)
async def offer(session_id: LiveId, body: OfferIn, request: Request, who: User) -> dict:
    """The patient's SDP offer (also how an interrupted session is resumed)."""
    if (answer := await _elsewhere(request, who, session_id, _patient)) is not None:
        return answer
    await _held_here(request, who, session_id)
    live, peers = registry(request).get(session_id)
    _owner(who, live)
    if live.state == "ended":
        raise HTTPException(409, f"session {session_id} has ended")
    if live.state == "interrupted":
        _check_window(request, live)
    config = ice_configuration(request.app.state.settings.ice_servers)
    try:  # a bad offer changes nothing: neither the session nor its connection
        answer = await answer_patient(live, peers, body.model_dump(), config)
    except SdpError as exc:
        raise HTTPException(422, str(exc)) from None
    # the patient's language now, which they may have changed since the start
    # (before their DataChannel opens and hears the history again)
    live.speak(who.language)
    if live.state == "interrupted":
        await asyncio.to_thread(_reopen, request.app.state.db, session_id)
        live.resume()
    live.start(asyncio.get_running_loop())
    return answer


async def _elsewhere(request: Request, who, session_id: int, may: Callable[..., None]
                     ) -> Response | None:  # fmt: skip
    """A request for a live session another server process holds: checked
    here first (`may(s, who, patient_id)` raises 403), then answered by that
    process through Redis (`server.routing`), its answer returned as it gave
    it. None when no other process holds the session, or the request was
    itself forwarded: it is answered here."""
    fanout = request.app.state.fanout
    if fanout is None or session_id in registry(request).sessions or routing.forwarded(request):
        return None
    db = request.app.state.db
    try:
        entry = await fanout.owner_of(session_id)
    except Exception as exc:
        if not redis_error(exc):
            raise
        fanout.counts["failed: Redis unreachable"] += 1
        why = UnreachableError(f"live session {session_id} is held by another server process, "
                               "and Redis, the way to it, is unreachable: try again shortly",
                               max(1, round(fanout.ttl_s / 3)))  # fmt: skip
        await asyncio.to_thread(_record, db, who, session_id, why)  # 403, or 503 if in progress
        return None  # no longer in progress: the record answers
    if entry is None or entry.get("owner") == fanout.owner:
        return None

    def check() -> None:
        with db.session() as s:
            may(s, who, entry["patient_id"])

    await asyncio.to_thread(check)  # refused here: nothing leaves this process
    answer = await fanout.ask(entry["owner"], await routing.envelope(request))
    return routing.response(answer)


def _patient(_s, who, patient_id: int) -> None:
    if who.role != "patient" or who.id != patient_id:
        raise HTTPException(403, "only the patient controls their live session")


async def _held_here(request: Request, who, session_id: int) -> None:
    """A control request for a session no process here holds: 409 saying why
    (its server stopped) to its patient, 403 to anyone else."""
    if session_id not in registry(request).sessions:
        x = await asyncio.to_thread(_record, request.app.state.db, who, session_id)
        if who.role != "patient" or who.id != x.patient_id:
            raise HTTPException(403, "only the patient controls their live session")
        raise _gone(x)


def _check_window(request: Request, live: LiveSession) -> None:
    window = request.app.state.settings.resume_window_s
    if live.interrupted_at is not None and time.monotonic() - live.interrupted_at > window:
        raise HTTPException(409, f"session {live.session_id} was interrupted more than "
                                 f"{window:g} s ago and can no longer be resumed")  # fmt: skip


@router.post("/sessions/{session_id}/pause", responses=UNREACHABLE)
async def pause(session_id: LiveId, request: Request, who: User) -> dict:
    if (answer := await _elsewhere(request, who, session_id, _patient)) is not None:
        return answer
    await _held_here(request, who, session_id)
    live, _ = registry(request).get(session_id)
    _owner(who, live)
    live.pause()
    return live.status()


@router.post("/sessions/{session_id}/resume", responses=UNREACHABLE)
async def resume(session_id: LiveId, request: Request, who: User) -> dict:
    if (answer := await _elsewhere(request, who, session_id, _patient)) is not None:
        return answer
    await _held_here(request, who, session_id)
    live, _ = registry(request).get(session_id)
    _owner(who, live)
    if live.state == "interrupted":
        _check_window(request, live)
        await asyncio.to_thread(_reopen, request.app.state.db, session_id)
    live.resume()
    return live.status()


@router.post("/sessions/{session_id}/end", responses=UNREACHABLE)
async def end(session_id: LiveId, body: EndIn, request: Request, who: User) -> dict:
    """Finish: pain after, effort; the record is closed as complete. A session
    interrupted when its server stopped is ended the same way, from its record."""
    if (answer := await _elsewhere(request, who, session_id, _patient)) is not None:
        return answer
    db = request.app.state.db
    found = registry(request).sessions.get(session_id)
    if found is None:
        x = await asyncio.to_thread(_record, db, who, session_id)
        if who.role != "patient" or who.id != x.patient_id:
            raise HTTPException(403, "only the patient controls their live session")
        if x.status != "interrupted":
            raise _gone(x)
        summary = {
            "total": len(x.repetitions),
            "last_exercise": x.repetitions[-1].exercise_id if x.repetitions else None,
        }
    else:
        live, peers = found
        _owner(who, live)
        summary = await asyncio.to_thread(live.end)
        await peers.close()

    def close() -> None:
        with db.session() as s:
            x = s.get(ExerciseSession, session_id)
            records.end_session(
                s, x, "complete", pain_after=body.pain_after, rpe=body.rpe, notes=body.notes
            )

    await asyncio.to_thread(close)  # the database out: 503, and the patient may end again
    registry(request).drop(session_id)
    return summary


@router.post("/sessions/{session_id}/watch", responses=UNREACHABLE)
async def watch(session_id: LiveId, body: OfferIn, request: Request, who: User) -> dict:
    """A therapist receives the patient's video, only if the patient consented."""
    if (answer := await _elsewhere(request, who, session_id, require_therapist_of)) is not None:
        return answer
    live, peers = registry(request).get(session_id)

    def check() -> None:
        with request.app.state.db.session() as s:
            require_therapist_of(s, who, live.patient_id)
            actor = audit.Actor.of(who, client_address(request))
            what = audit.Touched("live_video", session_id=session_id)
            target = f"live session {session_id} video"
            audit.record(s, actor, "watch", live.patient_id, target, what=what)

    await asyncio.to_thread(check)
    if not live.video_consent:
        raise HTTPException(403, "the patient has not consented to video in this session")
    limit = registry(request).max_viewers
    if peers.open_watchers() >= limit:
        raise HTTPException(429, f"session {session_id} has its limit of {limit} video watchers: "
                                 "try again when one has left", {"Retry-After": "30"})  # fmt: skip
    config = ice_configuration(request.app.state.settings.ice_servers)
    try:
        return await answer_watcher(live, peers, body.model_dump(), config)
    except SdpError as exc:
        raise HTTPException(422, str(exc)) from None


def _origin_allowed(websocket: WebSocket) -> bool:
    """No Origin (not a browser) or this server's own, or one allowed by name."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    if urlsplit(origin).netloc == host and host:
        return True
    allowed = websocket.app.state.settings.allowed_origins
    return origin.rstrip("/") in {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}


async def _first_message_token(websocket: WebSocket) -> str | None:
    """The bearer token of the first message `{"type": "auth", "token": ...}`."""
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        msg = json.loads(raw) if len(raw) <= 4096 else None
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
        return None
    if not isinstance(msg, dict) or msg.get("type") != "auth":
        return None
    token = msg.get("token")
    return token if isinstance(token, str) and 0 < len(token) <= 200 else None


@ws_router.websocket("/ws/sessions/{session_id}")
async def session_feed(websocket: WebSocket, session_id: int) -> None:
    """Every message of a live session, for the patient and their therapists;
    history first, then as it happens. Login: the cookie, or a first message
    `{"type": "auth", "v": 2, "token": ...}` (see the module's docstring)."""
    app = websocket.app
    if not _origin_allowed(websocket):
        await websocket.close(code=4403, reason="origin not allowed")
        return
    secret = websocket.cookies.get(COOKIE)
    await websocket.accept()
    if not secret:
        secret = await _first_message_token(websocket)
    found = app.state.live.sessions.get(session_id)
    fanout = app.state.fanout
    patient_id = found[0].patient_id if found else None
    if found is None and fanout is not None:  # held by another server process?
        entry = (await _remote_sessions(fanout)).get(session_id)
        patient_id = entry["patient_id"] if entry else None
    client = websocket.client.host if websocket.client else ""

    def check(first: bool) -> tuple[object, bool]:
        with app.state.db.session() as s:
            who = accounts.principal_for(s, secret) if secret else None
            ok = (
                patient_id is not None
                and who is not None
                and accounts.can_read_patient(s, who, patient_id)
            )
            if ok and first:
                actor = audit.Actor.of(who, client)
                what = audit.Touched("live_feed", session_id=session_id)
                target = f"live session {session_id} feed"
                audit.record(s, actor, "watch", patient_id, target, what=what)
            return who, ok

    who, allowed = await asyncio.to_thread(check, True)
    if not allowed:
        await websocket.close(code=4403 if who else 4401)
        return
    viewers = app.state.live.viewers
    if viewers[session_id] >= app.state.live.max_viewers:  # 1013: try again later
        limit = app.state.live.max_viewers
        await websocket.close(code=1013, reason=f"session {session_id} has its limit of "
                                                f"{limit} viewers")  # fmt: skip
        return
    viewers[session_id] += 1
    try:
        await _serve_feed(websocket, found, fanout, session_id, check)
    finally:
        viewers[session_id] -= 1
        if viewers[session_id] <= 0:
            del viewers[session_id]


async def _serve_feed(websocket: WebSocket, found, fanout, session_id: int, check) -> None:
    """The feed of a session held here, or relayed through Redis."""
    if found is None:
        await _relay_remote(websocket, fanout, session_id, lambda: check(False)[1])
        return
    live = found[0]
    queue = ViewerQueue(live.messages_dropped)
    for msg in list(live.history):
        queue.put(msg)
    live.listeners.append(queue.put)
    try:
        await _forward(websocket, queue.messages(), lambda: check(False)[1])
    except ViewerTooSlow:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1013, reason="too slow to follow the session")
    finally:
        if queue.put in live.listeners:
            live.listeners.remove(queue.put)


class ViewerTooSlow(Exception):
    """A viewer's queue filled with messages that may not be dropped."""


class ViewerQueue:
    """One viewer's messages, bounded (on the event loop). When it is full, a
    `pose` frame is what goes: the new one if it is a pose, else the oldest
    pose waiting; a message that says something (a repetition, a set, the
    summary) is never dropped for a pose. A viewer so slow that `limit`
    such messages wait is cut off once it has read them (`ViewerTooSlow`,
    close code 1013; its page reconnects and gets the history), never fed a
    silent gap. Drops are counted by type in
    `dropped` (the session's `messages_dropped`, shown in its status)."""

    def __init__(self, dropped: Counter[str], limit: int = 500) -> None:
        self.dropped = dropped
        self.limit = limit
        self.overflowed = False
        self._items: deque[dict] = deque()
        self._ready = asyncio.Event()

    def put(self, msg: dict) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self.limit:
            if msg["type"] == "pose":
                self.dropped["pose"] += 1
                return
            oldest_pose = next((m for m in self._items if m["type"] == "pose"), None)
            if oldest_pose is None:
                self.overflowed = True
                self.dropped["viewer_cut_off"] += 1
                self._ready.set()
                return
            self._items.remove(oldest_pose)
            self.dropped["pose"] += 1
        self._items.append(msg)
        self._ready.set()

    async def messages(self) -> AsyncIterator[dict]:
        while True:
            while not self._items:
                if self.overflowed:
                    raise ViewerTooSlow
                self._ready.clear()
                await self._ready.wait()
            yield self._items.popleft()


async def _disconnected(websocket: WebSocket) -> None:
    """Reads, and ignores, what a feed's client sends until it disconnects."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _until_gone(source: AsyncIterator[dict], websocket: WebSocket
                      ) -> AsyncIterator[dict | None]:  # fmt: skip
    """The messages of `source`, and None when RECHECK_S passed without one,
    until the client disconnects. A feed with nothing to send would otherwise
    never learn that its viewer left: it would hold a Redis subscription and
    keep the server from stopping."""
    gone = asyncio.ensure_future(_disconnected(websocket))
    getter: asyncio.Future | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({getter, gone}, timeout=RECHECK_S,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if getter in done:
                try:
                    msg = getter.result()
                except StopAsyncIteration:
                    return
                getter = None
                yield msg
            elif gone in done:
                return
            else:
                yield None
    finally:
        gone.cancel()
        if getter is not None:
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await getter
        await source.aclose()  # e.g. unsubscribes from Redis at once


async def _relay_remote(websocket: WebSocket, fanout, session_id: int, still_allowed) -> None:
    """A session held by another process: its messages through Redis."""
    await _forward(websocket, fanout.follow(session_id), still_allowed)


async def _forward(websocket: WebSocket, source: AsyncIterator[dict], still_allowed) -> None:
    """`source`'s messages to the viewer until the session's summary, the viewer
    leaving, or their access ending (`still_allowed`, asked every RECHECK_S:
    close code 4403)."""
    checked = time.monotonic()
    try:
        async with contextlib.aclosing(_until_gone(source, websocket)) as feed:
            async for msg in feed:
                if time.monotonic() - checked >= RECHECK_S:
                    if not await asyncio.to_thread(still_allowed):
                        await websocket.close(code=4403, reason="access ended")
                        return
                    checked = time.monotonic()
                if msg is None:
                    continue
                await websocket.send_json(msg)
                if msg["type"] == "summary":
                    break
    except WebSocketDisconnect:
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # it may have left
        await websocket.close()
