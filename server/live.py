"""Live sessions: frames in from WebRTC, typed messages out, repetitions stored
as they complete.

Threads: the event loop only hands decoded frames to `LatestFrame`, a slot that
keeps the newest frame and counts every one it drops. One worker thread per
session converts, runs the pose model and the streaming engine, stores each
completed repetition at once (a patient who disconnects mid-set keeps them),
and hands messages back to the loop with `call_soon_threadsafe`, where the
hub delivers them to the patient's DataChannel and to therapists' WebSockets.

Messages follow `rehab_programs.messages` (`{"v": 2, "type": ...}`): every
engine event as its own type (`rep_completed`, `set_completed`, `feedback`,
`wrong_view`, `tracking_lost`, ...), with the context the pages need
(`exercise_id`; a repetition's `set`, `count` in its set and session `total`;
a set's prescribed `sets`, `prescribed_reps` and `rest_s`; `exercise_started`
with the exercise's `name`, `instructions`, the therapist's `notes` for it,
`views`, `sets`, `reps`, `rest_s`, `target_rom_deg` and `of`, the program's
length). The exercise's words in them (`name`, `instructions`, `next`, a
`feedback`'s `text`) are put in the patient's language on their way out
(`LiveSession.speak`): the worker and the engine work with the library's own
(English). The session's own messages: `pose` (each frame: landmarks, angles,
the counting signal, the picture's size, server latency), `status` (state,
frame counts, latency, writes waiting or lost; each second and on every change
of state) and `summary` (at the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telerehab.pose.estimator import PoseEstimator
from telerehab.pose.video import VideoFrame
from telerehab.rehab_programs.engine import InView, LiveAnalyzer, in_view
from telerehab.rehab_programs.events import (
    ExerciseCompleted,
    ExerciseStarted,
    RepCompleted,
    RepWithdrawn,
    SetCompleted,
    TrackingRegained,
)
from telerehab.rehab_programs.exercise import Exercise
from telerehab.rehab_programs.messages import event_message, message
from telerehab.rehab_programs.program import Prescribed
from telerehab.rehab_programs.program_run import ProgramSession, Step

from . import records
from .db import Database
from .exercises import clinic_library
from .i18n import DEFAULT as DEFAULT_LANGUAGE
from .i18n import exercise_in
from .movement import MovementRecorder, frame_count
from .sink import StorageSink
from .tables import ExerciseSession

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
# the messages that carry an exercise's words (`LiveSession._worded`)
WORDED = frozenset({"exercise_started", "exercise_completed", "feedback"})
# A live session's states and the changes allowed from each (the same state
# again is always allowed: a new offer while running). Changed only under the
# session's lock (`LiveSession._set_state`): the worker, the event loop and the
# request handlers all move it.
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"ready", "running", "error", "interrupted", "ended"}),
    "ready": frozenset({"running", "interrupted", "ended", "error"}),
    "running": frozenset({"paused", "interrupted", "ended"}),
    "paused": frozenset({"running", "interrupted", "ended"}),
    "interrupted": frozenset({"running", "ended"}),
    "error": frozenset({"interrupted", "ended"}),
    "ended": frozenset(),
}


class CameraCheck:
    """Counting waits for the patient to be in view, and pauses while they are
    not. It begins once the exercise's landmarks have been in the picture for
    `ready_s` without a break (the camera check), from the first of those
    frames: they are held meanwhile and then counted, so a patient who starts
    at once loses nothing and the engine sees what the offline analysis sees.
    It pauses when the landmarks have been out of the picture for `AWAY_S`,
    and goes on the same way once they are back for half of `ready_s`. At a
    pause the repetition in progress is abandoned (`RepetitionEngine.interrupt`):
    the patient was told counting paused, so it is not counted; the engine
    gets no frames until counting goes on. This is where a live session
    differs from the offline analysis, which has no one to tell: there, such
    a repetition is counted and flagged `landmarks_unseen` (range not
    trusted). `ready_s` 0: every frame counts."""

    AWAY_S = 0.5

    def __init__(self, ready_s: float = 1.0) -> None:
        self.ready_s = ready_s
        self.counting = ready_s <= 0
        self.started = self.counting  # counting has begun once
        self._away_since: float | None = None
        self._held: list[tuple[float, Any]] = []  # in view, waiting for the check

    def update(self, t_s: float, in_view: bool, frame: Any) -> list[Any]:
        """One frame at `t_s`: the frames to count now, oldest first."""
        if self.ready_s <= 0:
            return [frame]
        if self.counting:
            if in_view:
                self._away_since = None
            elif self._away_since is None:
                self._away_since = t_s
            elif t_s - self._away_since >= self.AWAY_S:
                self.counting, self._away_since = False, None
                return []
            return [frame]
        if not in_view:
            self._held.clear()  # the run in view is broken: the check starts again
            return []
        self._held.append((t_s, frame))
        if t_s - self._held[0][0] < self.ready_s / (2 if self.started else 1):
            return []
        self.counting = self.started = True
        held, self._held = [f for _, f in self._held], []
        return held


class LatestFrame:
    """A one-frame slot: `put` replaces an unprocessed frame (counted as
    dropped), `get` waits for the next one. Latency stays bounded."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            self.received += 1
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float = 0.5) -> Any:
        """The newest frame, or None after `timeout` or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class IncomingFrame:
    """A decoded WebRTC frame (an `av.VideoFrame`) and when it arrived."""

    frame: Any
    t_s: float  # media time from the first frame of the stream
    arrived: float  # time.monotonic() on arrival


@dataclass
class LiveSession:
    """One patient's live session following their program in order."""

    session_id: int
    patient_id: int
    plan: list[Prescribed]
    db: Database
    estimator_factory: Callable[[], PoseEstimator]
    video_consent: bool = False
    movement_consent: bool = True  # keep the movement as a skeleton (`movement.py`)
    camera_check_s: float = 1.0  # `CameraCheck`; 0: counting from the first frame
    sink: StorageSink | None = None  # None: written directly, an error propagates
    language: str = DEFAULT_LANGUAGE  # the patient's: exercise names, instructions, cues (`speak`)
    state: str = "created"  # created, ready, running, paused, interrupted, ended, error
    exercise_index: int = 0
    set_index: int = 1
    reps_total: int = 0
    interrupted_at: float | None = None
    listeners: list[Callable[[dict], None]] = field(default_factory=list)
    history: deque = field(default_factory=lambda: deque(maxlen=200))
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=90))
    processed: int = 0
    failed: int = 0  # frames whose processing raised (logged)
    # messages not delivered to a slow therapist's feed, by type (server/routers/live.py)
    messages_dropped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.slot = LatestFrame()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self.refused_transitions = 0  # state changes TRANSITIONS does not allow (logged)
        self.program: ProgramSession | None = None  # built in the worker
        self._exercises: list[Exercise] = []  # the plan's, in the library's words (the worker)
        self._estimator: PoseEstimator | None = None
        self._first_pts: float | None = None
        self._stepped_t: float | None = None  # the last frame the program was stepped with
        self._last_status = 0.0
        self._done_at: deque[float] = deque(maxlen=60)
        self.relay_track: Any = None  # the patient's video, only with consent
        self.movements: dict[str, MovementRecorder] = {}  # by exercise, filled by the worker
        self.camera = CameraCheck(self.camera_check_s)
        self._framing: tuple = ()  # what the last `framing` message said
        self._framed_at = -1.0
        self.picture = (0, 0)  # width, height of the patient's picture

    # ----------------------------------------------------------------- control

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the worker now: the pose model loads in it, off the event loop,
        while the patient gets ready; the state becomes "ready" when it has."""
        self.loop = loop
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name=f"live-session-{self.session_id}", daemon=True
            )
            self._worker.start()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Frames flow: the patient's video is connected."""
        self.prepare(loop)
        self._set_state("running")

    def speak(self, language: str) -> None:
        """On the event loop: the patient's words in `language` from now on.
        Their language is read again at each connection, so a patient who
        changed it and comes back to the session (or reloads the page) hears
        the new one; the history their new connection replays is worded anew
        (name, instructions, cues), so no word of the old language comes back."""
        if language == self.language:
            return
        self.language = language
        for k, msg in enumerate(list(self.history)):
            self.history[k] = self._worded(msg)

    def pause(self) -> None:
        self._set_state("paused")

    def resume(self) -> None:
        self.interrupted_at = None
        self._set_state("running")

    def interrupt(self) -> None:
        """The patient's connection is gone: keep everything, allow a resume."""
        if not self._set_state(
            "interrupted", only_from=TRANSITIONS.keys() - {"ended", "interrupted"}
        ):
            return
        self.interrupted_at = time.monotonic()
        sid = self.session_id

        def close(s: Any) -> None:
            records.end_session(s, s.get(ExerciseSession, sid), "interrupted")

        self._store("its end (interrupted)", close)
        self._keep_movement()  # after the status: the replay matters less

    def end(self) -> dict:
        """Stop the worker; the caller closes the session record."""
        self._stop.set()
        self.slot.close()
        if self._worker is not None:
            self._worker.join(10)
        worker_done = self._worker is None or not self._worker.is_alive()
        if worker_done and self.program is not None and self._stepped_t is not None:
            # every movement ends with the session: a repetition of the next
            # exercise still waiting on the current one's is judged, as offline
            for step in self.program.end(self._stepped_t):
                self._on_step(step)
            self._stepped_t = None  # once
        self._keep_movement()
        summary = self.summary()
        self._set_state("ended")
        self._emit(message("summary", **summary))
        return summary

    def submit(self, frame: Any, pts_s: float) -> None:
        """From the event loop: a decoded frame (never blocks)."""
        if self.state != "running":
            return
        if self._first_pts is None:
            self._first_pts = pts_s
        self.slot.put(IncomingFrame(frame, pts_s - self._first_pts, time.monotonic()))

    # ----------------------------------------------------------------- worker

    def _run(self) -> None:
        try:
            self._estimator = self.estimator_factory()
        except Exception:  # the model cannot load: say so (its path only in the log)
            logger.exception("session %s: pose model failed to load", self.session_id)
            self._set_state("error")
            failed = "the pose model failed to load (see the server log)"
            self._emit(message("status", state="error", text=failed))
            return
        self._begin_exercise()
        self._warm_up()
        self._set_state("ready", only_from={"created"})  # an offer may have come first
        index = 0
        while not self._stop.is_set():
            item = self.slot.get()
            if item is None:
                continue
            try:
                self._process(item, index)
            except Exception:  # one bad frame must not end the session: log and count it
                logger.exception("session %s: frame %d failed", self.session_id, index)
                self.failed += 1
            index += 1
        if self._estimator is not None:
            self._estimator.backend.close()

    @property
    def _analyzer(self) -> LiveAnalyzer | None:
        """The engine feed of the exercise under way."""
        program = self.program
        return program.feeds[program.current] if program is not None else None  # type: ignore[return-value]

    def _begin_exercise(self) -> None:
        """The program's state machine (`ProgramSession`, the one the offline
        analysis uses), its exercises from this server's library (in its own
        words: `_worded` gives them the patient's); the first exercise is
        announced before the first frame."""
        if not self.plan:
            return
        with self.db.session() as s:  # this server's library: exercises added here too
            library = clinic_library(s)
        self._exercises = [library.get(p.exercise_id) for p in self.plan]
        self.program = ProgramSession(
            self.plan,
            lambda p: LiveAnalyzer(library.get(p.exercise_id), **p.engine_options()),
        )
        self._announce(self.exercise_index)

    def _announce(self, k: int, t_s: float = 0.0) -> None:
        """Exercise `k` of the program is under way: `exercise_started`, with
        what the pages show of it."""
        self.exercise_index = k
        item, exercise = self.plan[k], self._exercises[k]
        feed = self.program.feeds[k] if self.program else None
        self.set_index = self.program.set_of(k) if self.program else 1
        self._emit(event_message(
            ExerciseStarted(t_s, k, exercise.id), name=exercise.name,
            sets=item.sets, reps=item.reps, rest_s=item.rest_s, views=list(exercise.views),
            target_rom_deg=feed.engine.target_rom_deg if feed else None,
            instructions=exercise.instructions, notes=item.notes, of=len(self.plan),
        ))  # fmt: skip

    def _warm_up(self) -> None:
        """Load the compiled kernels (numba's cache) before the first patient
        frame, on a throwaway engine: the first repetition is not delayed."""
        if self._analyzer is None:
            return
        from telerehab.pose.frame import PoseFrame

        probe = LiveAnalyzer(self._analyzer.exercise)
        for k in range(3):
            probe.process(PoseFrame.empty(k / 30, k, 0, 640, 480))

    def _process(self, item: IncomingFrame, index: int) -> None:
        rgb = item.frame.to_ndarray(format="rgb24")
        estimator, program = self._estimator, self.program
        if estimator is None or program is None:
            return
        pose = estimator.process(VideoFrame(rgb, item.t_s, index))
        exercise = self._exercises[program.current]
        seen = (in_view(exercise, pose.image_landmarks[:, 3], pose.image_landmarks)
                if pose.detected else InView(False))  # fmt: skip
        was = self.camera.counting
        counted = self.camera.update(item.t_s, seen.whole, pose)
        counting = self.camera.counting
        framing = (counting, seen.whole, seen.missing, pose.detected)
        if framing != self._framing and (counting != was or item.t_s - self._framed_at >= 0.25):
            self._framing, self._framed_at = framing, item.t_s
            self._emit(message("framing", t_s=item.t_s, counting=counting, in_view=seen.whole,
                               missing=list(seen.missing), seen=pose.detected))  # fmt: skip
        if was and not counting:  # paused: the repetition in progress is not counted
            program.feeds[program.current].engine.interrupt()
        steps = [step for frame in counted for step in program.step(frame.t_s, frame)]
        if counted:
            self._stepped_t = counted[-1].t_s
        analyzer = program.feeds[program.current]
        self.processed += 1
        self._done_at.append(time.monotonic())
        latency_ms = (time.monotonic() - item.arrived) * 1000
        self.latencies_ms.append(latency_ms)
        lm = pose.image_landmarks
        angles = dict(analyzer.last_angles)
        if self.movement_consent:  # the replay's skeleton (never the picture)
            kept = self.movements.setdefault(self.plan[program.current].exercise_id,
                                             MovementRecorder())  # fmt: skip
            kept.add(item.t_s, lm if pose.detected else None)
            self.picture = (pose.width, pose.height)
        self._emit(message(
            "pose", t_s=item.t_s, frame=index, n_people=pose.n_people,
            width=pose.width, height=pose.height,  # the picture's shape, for the skeleton
            landmarks=None if not pose.detected else np.round(lm[:, [0, 1, 3]], 4).tolist(),
            angles=angles, server_ms=latency_ms, signal_deg=analyzer.engine.last_signal_deg,
            rest_deg=analyzer.engine.rest_deg, target_rom_deg=analyzer.engine.target_rom_deg,
            direction=analyzer.engine.direction,  # of the signal counting now
        ))  # fmt: skip
        for step in steps:
            self._on_step(step)
        self.set_index = program.set_of(program.current)
        now = time.monotonic()
        if now - self._last_status >= STATUS_EVERY_S:
            self._last_status = now
            self._emit(self.status())

    def _on_step(self, step: Step) -> None:
        """Store what an event changes, then send its message (every event,
        `rehab_programs.messages`), with the context the pages need."""
        k, set_index, event = step.exercise, step.set_index, step.event
        item, sid = self.plan[k], self.session_id
        context: dict[str, Any] = {"exercise_id": item.exercise_id}
        if isinstance(event, ExerciseStarted):
            if k != self.exercise_index:
                self._announce(k, event.t_s)
            return
        if isinstance(event, RepCompleted):
            rep = event.rep

            def add_rep(s: Any) -> None:
                x = s.get(ExerciseSession, sid)
                records.add_repetition(s, x, item.exercise_id, rep, set_index)

            # stored now, before the patient hears of it (queued while the database is out)
            self._store(f"repetition {self.reps_total + 1}", add_rep)
            self.reps_total += 1
            count = rep.index - (set_index - 1) * item.reps
            context |= {"set": set_index, "count": count, "total": self.reps_total}
        elif isinstance(event, RepWithdrawn):
            rep = event.rep

            def withdraw(s: Any) -> None:
                records.remove_repetition(s, sid, item.exercise_id, rep.index)

            self._store(f"withdrawal of repetition {rep.index} of {item.exercise_id}", withdraw)
            self.reps_total -= 1
            context |= {"total": self.reps_total,
                        "text": f"that movement began {self._exercises[k + 1].name}"}  # fmt: skip
        elif isinstance(event, SetCompleted):
            done = event.set_index
            feed = self.program.feeds[k] if self.program else None
            reps = [r for r in (feed.engine.reps if feed else [])
                    if (r.index - 1) // item.reps + 1 == done]  # fmt: skip

            def add_set(s: Any) -> None:
                x = s.get(ExerciseSession, sid)
                records.add_set(s, x, item.exercise_id, done, reps, item.reps)

            self._store(f"set {done} of {item.exercise_id}", add_set)
            context |= {"sets": item.sets, "prescribed_reps": item.reps, "rest_s": item.rest_s}
        elif isinstance(event, ExerciseCompleted):  # more repetitions still count
            following = self._exercises[k + 1] if k + 1 < len(self.plan) else None
            del context["exercise_id"]  # the event's own
            name = self._exercises[k].name
            context |= {"next": following.name if following else None,
                        "text": "program complete" if following is None
                        else f"{name} complete: next, {following.name}"}  # fmt: skip
        elif isinstance(event, TrackingRegained):
            context["text"] = "tracking regained"
        self._emit(event_message(event, **context))

    def _keep_movement(self) -> None:
        """Store each exercise's movement so far (replacing what was kept at an
        earlier interruption): the therapist's replay."""
        sid, (width, height) = self.session_id, self.picture
        for exercise_id, kept in list(self.movements.items()):
            data = kept.encode()
            frames = frame_count(data)

            def save(s: Any, exercise_id: str = exercise_id, data: bytes = data,
                     frames: int = frames) -> None:  # fmt: skip
                records.save_movement(s, s.get(ExerciseSession, sid), exercise_id, data,
                                      frames, width, height)  # fmt: skip

            self._store(f"movement of {exercise_id}", save)

    def _store(self, what: str, apply: Callable[[Any], Any]) -> None:
        """A write of this session: through the sink (which keeps it while the
        database is out), or directly without one."""
        if self.sink is not None:
            self.sink.store(self.session_id, what, apply)
            return
        with self.db.session() as s:
            apply(s)

    # ----------------------------------------------------------------- out

    def status(self) -> dict:
        lat = sorted(self.latencies_ms)
        p50 = lat[len(lat) // 2] if lat else None
        done = self._done_at
        fps = (
            (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else None
        )
        return message(
            "status", state=self.state, received=self.slot.received, dropped=self.slot.dropped,
            processed=self.processed, failed=self.failed, latency_ms_p50=p50, fps=fps,
            exercise_index=self.exercise_index, set=self.set_index, total=self.reps_total,
            refused_transitions=self.refused_transitions,
            messages_dropped=dict(self.messages_dropped),
            writes_waiting=self.sink.pending(self.session_id) if self.sink else 0,
            writes_lost=self.sink.lost[self.session_id] if self.sink else 0,
        )  # fmt: skip

    def summary(self) -> dict:
        engine = self._analyzer.engine if self._analyzer else None
        return {
            "total": self.reps_total,
            "received": self.slot.received,
            "dropped": self.slot.dropped,
            "processed": self.processed,
            "failed": self.failed,
            "last_exercise": engine.exercise.id if engine else None,
        }

    def _set_state(self, state: str, only_from: Any = None) -> bool:
        """Move to `state` if TRANSITIONS allows it (and, with `only_from`, only
        from those states), checked and set under the lock; False if not."""
        with self._state_lock:
            current = self.state
            if only_from is not None and current not in only_from:
                return False
            if state != current and state not in TRANSITIONS[current]:
                self.refused_transitions += 1
                logger.warning("session %s: %s -> %s refused", self.session_id, current, state)
                return False
            self.state = state
        self._emit(self.status())
        return True

    def _emit(self, msg: dict) -> None:
        """From any thread: deliver on the event loop."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._deliver, msg)

    def _worded(self, msg: dict) -> dict:
        """`msg` with its exercise's words (`WORDED`) in the session's language,
        from the library's own: the catalogue's translation where it has one."""
        kind = msg["type"]
        if kind not in WORDED:
            return msg
        if kind == "exercise_started":
            exercise = exercise_in(self._exercises[msg["index"]], self.language)
            return msg | {"name": exercise.name, "instructions": exercise.instructions}
        if kind == "exercise_completed":
            k = msg["index"] + 1
            if k >= len(self._exercises):  # the program's last: no next one
                return msg
            return msg | {"next": exercise_in(self._exercises[k], self.language).name}
        exercise = next((e for e in self._exercises if e.id == msg.get("exercise_id")), None)
        if exercise is None:  # a cue of no exercise of this program: as it was given
            return msg
        feedback = exercise_in(exercise, self.language).feedback
        return msg | {"text": feedback.get(msg["key"], msg["text"])}

    def _deliver(self, msg: dict) -> None:
        msg = self._worded(msg)  # on the loop, where the language changes (`speak`)
        if msg["type"] != "pose":  # on the loop: readers of the history run there too
            self.history.append(msg)  # replayed to a therapist who joins late
        for listener in list(self.listeners):
            try:
                listener(msg)
            except Exception:  # a broken listener must not stop the others
                logger.exception("session %s: a listener failed", self.session_id)
