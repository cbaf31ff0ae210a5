"""A whole program in one video: which prescribed exercise is under way, and
its repetitions.

The patient follows the program in order. The exercise under way is counted
by its engine; the next exercise's engine watches in parallel ("look-ahead")
and is restarted after every repetition of the current one that it was not
itself following, so it only holds movements made since the current exercise
last counted. When the look-ahead completes a repetition while the current
exercise is between repetitions, and reached further into its own target
than any repetition the current exercise counted during the same movement
(a counter that needs no fixed range also counts the incidental elbow bend
of a shoulder raise), the patient has moved on: the look-ahead becomes the
current exercise, keeping that repetition (the current one forgets the
overlapping ones), and the next one starts watching. A look-ahead
repetition seen from a camera view its exercise is not measured from (a
push-up, measured side-on, while the camera sees the patient from the
front), or in a posture it is not done in (the trunk upright for an
exercise done lying, or lying for one done standing or sitting), is no
evidence: the same elbow bend is a curl's. Nor is one during which a joint
the next exercise holds still, and the current one moves, turned by half the
repetition's excursion or more (knees bending through a "wall push-up": the
patient is still squatting, hands clasped). An
exercise the patient skips is passed over the same way; the next one's
movement often moves the skipped one's angle too (a squat bends the hip a
crunch counts with), so a look-ahead repetition made while the current
exercise was moving is judged once that movement ends uncounted, or the
recording or session does (`ProgramSession.end`), when the next exercise has
made two (one alone may be the current exercise's own start). Before the
current exercise has counted anything, the look-ahead's first repetition
waits for a second as well (the recording's first movement is often the
patient getting into position), or for the end, where an exercise that
counted nothing is passed over on one. The current exercise's repetitions
are weighed by the same rules (`_evidence`): one seen from a view or in a
posture it is not measured in, or with a joint it holds turning, neither
clears the look-ahead nor keeps the patient from moving on. One the
patient never reaches is reported with no repetitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from telerehab.pose.estimator import PoseSequence

from .engine import Analysis, OfflineFeed, RepetitionEngine, prepare_sequence
from .events import (
    Event,
    ExerciseCompleted,
    ExerciseStarted,
    RepCompleted,
    RepResult,
    RepStarted,
    RepWithdrawn,
    WrongView,
)
from .library import Library, default_library
from .program import Prescribed, Program


@dataclass(frozen=True, slots=True)
class ExerciseRun:
    """One prescribed exercise as it was done: its time span (NaN: never
    reached) and its analysis."""

    prescribed: Prescribed
    t_start_s: float
    t_end_s: float
    analysis: Analysis

    @property
    def prescribed_reps(self) -> int:
        """Sets times repetitions."""
        return self.prescribed.sets * self.prescribed.reps


@dataclass(frozen=True, slots=True)
class ProgramAnalysis:
    """A program followed through one recording."""

    program: Program
    runs: tuple[ExerciseRun, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a program followed frame by frame, with the exercise (its
    index in the program) and the set (1-based) it belongs to."""

    exercise: int
    set_index: int
    event: Event


class Feed(Protocol):
    """One exercise's engine fed frame by frame: `OfflineFeed` (a frame index
    of a recorded sequence) or `LiveAnalyzer` (a PoseFrame)."""

    engine: RepetitionEngine

    def step(self, frame: Any) -> list[Event]: ...

    def reset(self) -> None: ...


class ProgramSession:
    """A program followed frame by frame (see the module docstring): which
    exercise is under way, its set, and every event, the same for a recording
    and a live session. Pure and synchronous: a frame in, `Step`s out.

    `feed(prescribed)` builds the engine feed of one prescribed exercise (the
    drivers differ, the following does not). Events, beyond the engine's:
    `ExerciseStarted` (the first frame, and each move to the next exercise),
    `ExerciseCompleted` (its prescribed sets done), `RepWithdrawn` (a
    repetition the current exercise counted during the movement the next one
    took over).
    """

    def __init__(self, items: Sequence[Prescribed], feed: Callable[[Prescribed], Feed]) -> None:
        if not items:
            raise ValueError("a program session needs at least one exercise")
        self.items = tuple(items)
        self.feeds = [feed(p) for p in self.items]
        self.current = 0
        self.starts = [math.nan] * len(self.items)
        self.ends = [math.nan] * len(self.items)
        self.events: list[list[Event]] = [[] for _ in self.items]  # per exercise, kept
        self._ahead: list[Event] = []
        self._pending: RepResult | None = None  # the look-ahead's, not yet judged
        self._done: set[int] = set()

    def set_of(self, k: int, rep: RepResult | None = None) -> int:
        """The set (1-based) of exercise `k` that `rep` belongs to, or the one
        under way; repetitions beyond the prescription count in the last set."""
        p = self.items[k]
        done = rep.index - 1 if rep is not None else len(self.feeds[k].engine.reps)
        return min(p.sets, done // p.reps + 1)

    def _steps(self, k: int, events: list[Event]) -> list[Step]:
        return [
            Step(k, self.set_of(k, e.rep if isinstance(e, RepCompleted) else None), e)
            for e in events
        ]

    def step(self, t_s: float, frame: Any) -> list[Step]:
        """Feed one frame (`frame`: what the feeds take) at time `t_s`."""
        out: list[Step] = []
        k = self.current
        if math.isnan(self.starts[0]):
            self.starts[0] = t_s
            out.append(Step(0, 1, ExerciseStarted(t_s, 0, self.items[0].exercise_id)))
        got = self.feeds[k].step(frame)
        self.events[k] += got
        out += self._steps(k, got)
        cur = self.feeds[k].engine
        p = self.items[k]
        if k not in self._done and len(cur.reps) >= p.sets * p.reps:
            self._done.add(k)
            out.append(Step(k, p.sets, ExerciseCompleted(t_s, k, p.exercise_id)))
        nxt = k + 1
        if nxt >= len(self.items):
            return out
        seen = self.feeds[nxt].step(frame)
        self._ahead += seen
        look = self.feeds[nxt].engine
        counted = [e.rep for e in got if isinstance(e, RepCompleted)]
        if counted and _typical(cur, counted[-1]) and _evidence(cur, counted[-1], look):
            own = counted[-1]
            if self._pending is not None and own.t_start_s < self._pending.t_end_s:
                self._pending = None  # the same movement: the current exercise's repetition
            if not look.counter.in_repetition:
                self._forget_ahead()  # only movements since the current one last counted
                return out
        done = [e.rep for e in seen if isinstance(e, RepCompleted)]
        if done:
            self._pending = done[-1]
        return out + self._judge(t_s, fresh=bool(done))

    def end(self, t_s: float) -> list[Step]:
        """The recording or session ends at `t_s`, and every movement with it:
        a look-ahead repetition still waiting for the current exercise's
        movement to end (`_judge`) is judged now, by the same rules. Call once,
        after the last `step`."""
        if self.current + 1 >= len(self.items):
            return []
        return self._judge(t_s, fresh=False, ended=True)

    def _judge(self, t_s: float, fresh: bool, ended: bool = False) -> list[Step]:
        """Judge the look-ahead's waiting repetition, if its time has come:
        switch to the next exercise, or forget what the look-ahead saw."""
        out: list[Step] = []
        k, nxt = self.current, self.current + 1
        cur, look = self.feeds[k].engine, self.feeds[nxt].engine
        if self._pending is None or (cur.counter.in_repetition and not ended):
            return out
        moving = cur.counter.cycle is not None and not ended
        if not ended and not cur.reps and len(look.reps) < LATE_EVIDENCE:
            # Before the current exercise has counted anything, one repetition
            # of the next is not yet evidence that the patient skipped it: the
            # recording's first movement may be the patient getting into
            # position (arms lowered from overhead with the elbows bent, a
            # track settling). The current exercise counting clears it (in
            # `step`); a second repetition, or the recording's end, judges it.
            return out
        passed_over = ended and not cur.reps  # at the end, nothing counted: judged on one
        if not fresh and not passed_over and (moving or len(look.reps) < LATE_EVIDENCE):
            # A repetition completed while the current exercise was moving is
            # judged once that movement has ended without a repetition of its
            # own (one that counts takes it, in `step`), or the recording did,
            # and the next exercise has made LATE_EVIDENCE repetitions: the
            # next exercise's movement may move the current one's angle as
            # well (a squat after skipped crunches), and dropped then it would
            # never be looked at again; but one such repetition alone may be
            # the current exercise's own start (arms lowered with the elbows
            # bent).
            return out
        rep, self._pending = self._pending, None
        if not _evidence(look, rep, cur):
            # seen from a side the next exercise is not measured from, in a
            # posture it is not done in, or with a joint it holds still turning
            # as the current exercise turns it: the movement is not that
            # exercise's (a curl filmed from the front, or a squat, is no
            # push-up, whatever the elbow or the hip does)
            self._forget_ahead()
            return out
        t_switch = _first_movement(self._ahead)  # the look-ahead's first movement since its reset
        overlapping = [r for r in cur.reps if r.t_end_s > t_switch]
        # The current exercise's repetitions that are no evidence of it (seen
        # from the side for an exercise measured from the front, "wall
        # push-ups" with the knees bending) do not hold the patient back either.
        if not all(
            rep.target_share > r.target_share for r in overlapping if _evidence(cur, r, look)
        ):
            self._forget_ahead()  # the current exercise explains the movement better
            return out
        # The patient has moved on. Repetitions the current exercise counted
        # during this movement were the next one's. The view was judged by the
        # look-ahead on frames of the previous exercise: judge it again.
        out += [Step(k, self.set_of(k, r), RepWithdrawn(t_s, r)) for r in overlapping]
        _drop(cur, self.events[k], overlapping)
        self.ends[k] = t_switch
        self.starts[nxt] = t_switch
        self.events[nxt] = [e for e in self._ahead if not isinstance(e, WrongView)]
        out.append(Step(nxt, 1, ExerciseStarted(t_s, nxt, self.items[nxt].exercise_id)))
        out += self._steps(nxt, self.events[nxt])
        look.recheck_view()
        self.current = nxt
        self._ahead = []
        return out

    def _forget_ahead(self) -> None:
        """A fresh look-ahead: what it saw was not the next exercise."""
        self.feeds[self.current + 1].reset()
        self._ahead = []
        self._pending = None

    def finish(self, t_s: float) -> tuple[tuple[Prescribed, float, float, Analysis], ...]:
        """The end of the recording or session: each prescribed exercise with
        its time span (NaN: never reached) and its analysis. What the look-ahead
        saw of an exercise never reached does not count."""
        if not math.isnan(self.starts[self.current]):
            self.ends[self.current] = t_s
        for k in range(self.current + 1, len(self.items)):
            self.feeds[k].reset()
        return tuple(
            (p, self.starts[k], self.ends[k], self.feeds[k].analysis(self.events[k]))
            for k, p in enumerate(self.items)
        )


def analyze_program(
    seq: PoseSequence,
    program: Program,
    library: Library | None = None,
) -> ProgramAnalysis:
    """Offline: follow `program` through `seq` (see the module docstring)."""
    library = library or default_library()
    prepared = prepare_sequence(seq)
    session = ProgramSession(
        program.exercises,
        lambda p: OfflineFeed(seq, library.get(p.exercise_id), prepared, **p.engine_options()),
    )
    for i in range(len(seq)):
        session.step(float(seq.t_s[i]), i)
    end = float(seq.t_s[-1]) if len(seq) else math.nan
    if len(seq):
        session.end(end)
    runs = tuple(ExerciseRun(p, a, b, analysis) for p, a, b, analysis in session.finish(end))
    return ProgramAnalysis(program, runs)


TYPICAL_SHARE = 2 / 3
# repetitions the next exercise needs to be judged late, or before the current
# exercise has counted anything (`ProgramSession._judge`)
LATE_EVIDENCE = 2


def _evidence(engine: RepetitionEngine, rep: RepResult, other: RepetitionEngine) -> bool:
    """Whether `rep`, counted by `engine`, is evidence that the patient is doing
    its exercise rather than `other`'s: seen as the exercise is measured (a
    camera view and a posture it is measured in) and with no joint it holds
    still turning as `other`'s exercise turns it. Applied alike to the
    look-ahead's repetitions and to the current exercise's."""
    return engine.seen_as_measured(rep) and engine.held_joint_moved(rep, other.exercise) is None


def _typical(engine: RepetitionEngine, rep: RepResult) -> bool:
    """A repetition like the exercise's own (at least TYPICAL_SHARE of its typical
    excursion). A weaker one may be the next exercise's movement seen by this
    one's angle: it does not clear the look-ahead."""
    typical = engine.counter.typical_excursion_deg
    return not math.isfinite(typical) or rep.excursion_deg >= TYPICAL_SHARE * typical


def _drop(engine: RepetitionEngine, events: list[Event], reps: list[RepResult]) -> None:
    """Forget `reps` (and their events): another exercise's movements."""
    if not reps:
        return
    gone = {id(r) for r in reps}
    first = min(r.index for r in reps)
    engine.reps[:] = [r for r in engine.reps if id(r) not in gone]
    events[:] = [
        e
        for e in events
        if not (isinstance(e, RepCompleted) and id(e.rep) in gone)
        and not (isinstance(e, RepStarted) and e.index >= first)
    ]


def _first_movement(events: list[Event]) -> float:
    """When the first repetition among `events` started."""
    starts = [e.t_s for e in events if isinstance(e, RepStarted)]
    starts += [e.rep.t_start_s for e in events if isinstance(e, RepCompleted)]
    return min(starts)
