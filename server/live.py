"""Live sessions: frames in from WebRTC, typed messages out, repetitions stored
as they complete.

Threads: the event loop only hands decoded frames to `LatestFrame`, a slot that
keeps the newest frame and counts every one it drops. One worker thread per
session converts, runs the pose model and the streaming engine, stores each
completed repetition at once (a patient who disconnects mid-set keeps them),
and hands messages back to the loop with `call_soon_threadsafe`, where the
hub delivers them to the patient's DataChannel and to therapists' WebSockets.

Messages are JSON objects with `v` (schema version, 1) and `type`:
pose, rep, feedback, set, exercise, status, tracking, view, rejected, summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telerehab.pose.estimator import PoseEstimator
from telerehab.pose.video import VideoFrame
from telerehab.rehab_programs.engine import LiveAnalyzer
from telerehab.rehab_programs.events import (
    ExerciseCompleted,
    ExerciseStarted,
    Feedback,
    RepCompleted,
    RepRejected,
    RepStarted,
    RepWithdrawn,
    SetCompleted,
    SignalChosen,
    TrackingLost,
    TrackingRegained,
    WrongView,
)
from telerehab.rehab_programs.program import Prescribed
from telerehab.rehab_programs.program_run import ProgramSession, Step
from telerehab.rehab_programs.report import event_to_dict, json_ready, rep_to_dict

from . import records
from .db import Database
from .exercises import clinic_library
from .i18n import DEFAULT as DEFAULT_LANGUAGE
from .i18n import library_in
from .sink import StorageSink
from .tables import ExerciseSession

logger = logging.getLogger(__name__)

SCHEMA = 1
STATUS_EVERY_S = 1.0
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


def message(kind: str, **fields: Any) -> dict:
    """A typed, versioned message."""
    return {"v": SCHEMA, "type": kind, **{k: json_ready(v) for k, v in fields.items()}}


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
    sink: StorageSink | None = None  # None: written directly, an error propagates
    language: str = DEFAULT_LANGUAGE  # the patient's: exercise names, instructions, cues
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

    def __post_init__(self) -> None:
        self.slot = LatestFrame()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self.refused_transitions = 0  # state changes TRANSITIONS does not allow (logged)
        self.program: ProgramSession | None = None  # built in the worker
        self._estimator: PoseEstimator | None = None
        self._first_pts: float | None = None
        self._last_status = 0.0
        self._done_at: deque[float] = deque(maxlen=60)
        self.relay_track: Any = None  # the patient's video, only with consent

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

    def end(self) -> dict:
        """Stop the worker; the caller closes the session record."""
        self._stop.set()
        self.slot.close()
        if self._worker is not None:
            self._worker.join(10)
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
        analysis uses), its exercises from this server's library; the first
        exercise is announced before the first frame."""
        if not self.plan:
            return
        with self.db.session() as s:  # this server's library: exercises added here too
            library = library_in(clinic_library(s), self.language)
        self._exercises = [library.get(p.exercise_id) for p in self.plan]
        self.program = ProgramSession(
            self.plan,
            lambda p: LiveAnalyzer(library.get(p.exercise_id), **p.engine_options()),
        )
        self._announce(self.exercise_index)

    def _announce(self, k: int) -> None:
        """Exercise `k` of the program is under way."""
        self.exercise_index = k
        item, exercise = self.plan[k], self._exercises[k]
        feed = self.program.feeds[k] if self.program else None
        self.set_index = self.program.set_of(k) if self.program else 1
        self._emit(message(
            "exercise", index=k, exercise=exercise.id, name=exercise.name,
            sets=item.sets, reps=item.reps, rest_s=item.rest_s, views=list(exercise.views),
            target_rom_deg=feed.engine.target_rom_deg if feed else None,
            instructions=exercise.instructions, of=len(self.plan),
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
        steps = program.step(item.t_s, pose)
        analyzer = program.feeds[program.current]
        self.processed += 1
        self._done_at.append(time.monotonic())
        latency_ms = (time.monotonic() - item.arrived) * 1000
        self.latencies_ms.append(latency_ms)
        lm = pose.image_landmarks
        angles = dict(analyzer.last_angles)
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
        k, set_index, event = step.exercise, step.set_index, step.event
        item, sid = self.plan[k], self.session_id
        if isinstance(event, ExerciseStarted):
            if k != self.exercise_index:
                self._announce(k)
        elif isinstance(event, RepCompleted):
            rep = event.rep

            def add_rep(s: Any) -> None:
                x = s.get(ExerciseSession, sid)
                records.add_repetition(s, x, item.exercise_id, rep, set_index)

            # stored now, before the patient hears of it (queued while the database is out)
            self._store(f"repetition {self.reps_total + 1}", add_rep)
            self.reps_total += 1
            self._emit(message(
                "rep", exercise=item.exercise_id, set=set_index,
                count=rep.index - (set_index - 1) * item.reps, total=self.reps_total,
                rep=rep_to_dict(rep),
            ))  # fmt: skip
        elif isinstance(event, RepWithdrawn):
            rep = event.rep

            def withdraw(s: Any) -> None:
                records.remove_repetition(s, sid, item.exercise_id, rep.index)

            self._store(f"withdrawal of repetition {rep.index} of {item.exercise_id}", withdraw)
            self.reps_total -= 1
            self._emit(message(
                "withdrawn", exercise=item.exercise_id, index=rep.index, total=self.reps_total,
                text=f"that movement began {self._exercises[k + 1].name}",
            ))  # fmt: skip
        elif isinstance(event, SetCompleted):
            done = event.set_index
            feed = self.program.feeds[k] if self.program else None
            reps = [r for r in (feed.engine.reps if feed else [])
                    if (r.index - 1) // item.reps + 1 == done]  # fmt: skip

            def add_set(s: Any) -> None:
                x = s.get(ExerciseSession, sid)
                records.add_set(s, x, item.exercise_id, done, reps, item.reps)

            self._store(f"set {done} of {item.exercise_id}", add_set)
            self._emit(message("set", exercise=item.exercise_id, set=done,
                               sets=item.sets, reps=item.reps, rest_s=item.rest_s))  # fmt: skip
        elif isinstance(event, ExerciseCompleted):  # more repetitions still count
            following = self._exercises[k + 1] if k + 1 < len(self.plan) else None
            self._emit(message(
                "exercise_done", exercise=item.exercise_id, index=k,
                next=following.name if following else None,
                text="program complete" if following is None
                else f"{self._exercises[k].name} complete: next, {following.name}",
            ))  # fmt: skip
        elif isinstance(event, Feedback):
            self._emit(message("feedback", key=event.key, text=event.text))
        elif isinstance(event, TrackingLost):
            self._emit(message("tracking", lost=True, text=event.reason))
        elif isinstance(event, TrackingRegained):
            self._emit(message("tracking", lost=False, text="tracking regained"))
        elif isinstance(event, WrongView):
            self._emit(message("view", expected=list(event.expected), seen=event.seen,
                               text=event.text))  # fmt: skip
        elif isinstance(event, RepRejected):
            self._emit(message("rejected", text=event.reason))
        elif isinstance(event, SignalChosen):
            self._emit(message("signal", signal=event.signal, previous=event.previous,
                               credited=event.credited, text=event.text))  # fmt: skip
        elif not isinstance(event, RepStarted):  # never dropped unsaid: the report's form
            fields = event_to_dict(event)
            self._emit(message(fields.pop("type"), exercise=item.exercise_id, **fields))

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

    def _deliver(self, msg: dict) -> None:
        if msg["type"] != "pose":  # on the loop: readers of the history run there too
            self.history.append(msg)  # replayed to a therapist who joins late
        for listener in list(self.listeners):
            try:
                listener(msg)
            except Exception:  # a broken listener must not stop the others
                logger.exception("session %s: a listener failed", self.session_id)
