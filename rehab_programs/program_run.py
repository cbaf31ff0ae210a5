"""A whole program in one video: which prescribed exercise is under way, and
its repetitions.

The patient follows the program in order. The exercise under way is counted
by its engine; the next exercise's engine watches in parallel ("look-ahead")
and is restarted after every repetition of the current one, so it only ever
holds movements made since the current exercise last counted. When the
look-ahead completes a repetition while the current exercise is between
repetitions, the patient has moved on: the look-ahead becomes the current
exercise, keeping that repetition, and the next one starts watching. An
exercise the patient skips is passed over the same way; one the patient
never reaches is reported with no repetitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from telerehab.pose.estimator import PoseSequence

from .engine import Analysis, OfflineFeed, prepare_sequence
from .events import Event, RepCompleted, RepStarted, WrongView
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
        if any(isinstance(e, RepCompleted) for e in got):
            feeds[nxt].reset()
            ahead = []
            continue
        seen = feeds[nxt].step(i)
        ahead += seen
        resting = feeds[current].engine.counter.cycle is None
        if resting and any(isinstance(e, RepCompleted) for e in seen):
            # The patient has moved on. The view was judged by the look-ahead
            # on frames of the previous exercise: judge it again.
            t_switch = _first_movement(ahead)
            ends[current] = t_switch
            starts[nxt] = t_switch
            events[nxt] = [e for e in ahead if not isinstance(e, WrongView)]
            feeds[nxt].engine.recheck_view()
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


def _first_movement(events: list[Event]) -> float:
    """When the first repetition among `events` started."""
    starts = [e.t_s for e in events if isinstance(e, RepStarted)]
    starts += [e.rep.t_start_s for e in events if isinstance(e, RepCompleted)]
    return min(starts)
