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
overlapping ones), and the next one starts watching. An
exercise the patient skips is passed over the same way; one the patient
never reaches is reported with no repetitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from telerehab.pose.estimator import PoseSequence

from .engine import Analysis, OfflineFeed, RepetitionEngine, prepare_sequence
from .events import Event, RepCompleted, RepResult, RepStarted, WrongView
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


def analyze_program(
    seq: PoseSequence,
    program: Program,
    library: Library | None = None,
) -> ProgramAnalysis:
    """Offline: follow `program` through `seq` (see the module docstring)."""
    library = library or default_library()
    prepared = prepare_sequence(seq)
    items = program.exercises
    feeds = [
        OfflineFeed(seq, library.get(p.exercise_id), prepared, **p.engine_options()) for p in items
    ]
    events: list[list[Event]] = [[] for _ in items]
    starts = [math.nan] * len(items)
    ends = [math.nan] * len(items)
    current = 0
    starts[0] = float(seq.t_s[0]) if len(seq) else math.nan
    ahead: list[Event] = []
    for i in range(len(seq)):
        got = feeds[current].step(i)
        events[current] += got
        nxt = current + 1
        if nxt >= len(items):
            continue
        seen = feeds[nxt].step(i)
        ahead += seen
        look = feeds[nxt].engine
        cur = feeds[current].engine
        counted = [e.rep for e in got if isinstance(e, RepCompleted)]
        if counted and not look.counter.in_repetition and _typical(cur, counted[-1]):
            feeds[nxt].reset()  # only movements since the current one last counted
            ahead = []
            continue
        done = [e.rep for e in seen if isinstance(e, RepCompleted)]
        if not done or cur.counter.in_repetition:
            continue
        t_switch = _first_movement(ahead)  # the look-ahead's first movement since its reset
        overlapping = [r for r in cur.reps if r.t_end_s > t_switch]
        if not all(done[-1].target_share > r.target_share for r in overlapping):
            feeds[nxt].reset()  # the current exercise explains the movement better
            ahead = []
            continue
        # The patient has moved on. Repetitions the current exercise counted
        # during this movement were the next one's. The view was judged by the
        # look-ahead on frames of the previous exercise: judge it again.
        _drop(cur, events[current], overlapping)
        ends[current] = t_switch
        starts[nxt] = t_switch
        events[nxt] = [e for e in ahead if not isinstance(e, WrongView)]
        look.recheck_view()
        current = nxt
        ahead = []
    if len(seq):
        ends[current] = float(seq.t_s[-1])
    for k in range(current + 1, len(items)):
        feeds[k].reset()  # never reached: what the look-ahead saw does not count
    runs = tuple(
        ExerciseRun(p, starts[k], ends[k], feeds[k].analysis(events[k]))
        for k, p in enumerate(items)
    )
    return ProgramAnalysis(program, runs)


TYPICAL_SHARE = 2 / 3


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
