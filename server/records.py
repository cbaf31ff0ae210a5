"""Exercise sessions and what was measured in them.

A session is opened, its repetitions are stored as they complete (so a patient
who disconnects mid-set keeps every completed one), and it is closed as
complete, partial (prescribed work left undone: `work_of`) or interrupted.
`save_analysis` stores an offline analysis of a video as a finished session.
A pain-diary entry (`record_diary`) is kept beside the sessions but is none:
nothing was measured, and adherence does not count it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telerehab.errors import ConfigError, ProgramError
from telerehab.rehab_programs.engine import Analysis
from telerehab.rehab_programs.events import RepResult
from telerehab.rehab_programs.library import Library, default_library
from telerehab.rehab_programs.program import program_from_data
from telerehab.rehab_programs.program_run import ProgramAnalysis

from . import movement
from .exercises import clinic_library
from .tables import ENDED, ExerciseSession, Movement, Repetition, SetSummary, User, utcnow

if TYPE_CHECKING:
    from telerehab.pose.estimator import PoseSequence

logger = logging.getLogger(__name__)


def _scale(name: str, value: int | None, hi: int = 10) -> int | None:
    if value is not None and not 0 <= value <= hi:
        raise ConfigError(f"{name}: expected a whole number in 0..{hi}, got {value}")
    return value


def start_session(
    s: Session,
    patient_id: int,
    *,
    program_version_id: int | None = None,
    device: str = "",
    source: str = "live",
    pain_before: int | None = None,
    video_consent: bool = False,
    movement_consent: bool = True,
    started_at: datetime | None = None,
    is_demo: bool = False,
) -> ExerciseSession:
    """Open a session for a patient (`movement_consent`: keep the movement as a
    skeleton for the replay; `movement.py`)."""
    patient = s.get(User, patient_id)
    if patient is None or patient.role != "patient":
        raise ConfigError(f"patient: no patient with id {patient_id}")
    session = ExerciseSession(
        patient_id=patient_id, program_version_id=program_version_id, device=device,
        source=source, pain_before=_scale("pain_before", pain_before),
        video_consent=video_consent, started_at=started_at or utcnow(), is_demo=is_demo,
    )  # fmt: skip
    if not movement_consent:  # else the database's default (true)
        session.movement_consent = False
    s.add(session)
    s.flush()
    return session


def add_repetition(
    s: Session, session: ExerciseSession, exercise_id: str, rep: RepResult, set_index: int = 1
) -> Repetition:
    """Store one completed repetition now (live sessions call this per repetition)."""
    row = Repetition.of(rep, session_id=session.id, exercise_id=exercise_id, set_index=set_index)
    s.add(row)
    s.flush()
    return row


def save_movement(
    s: Session,
    session: ExerciseSession,
    exercise_id: str,
    data: bytes,
    frames: int,
    width: int,
    height: int,
) -> Movement | None:
    """Keep one exercise's movement (`movement.encode`), replacing what was kept
    before for it; nothing when the patient declined it for this session."""
    if not session.movement_consent or frames == 0:
        return None
    row = s.scalar(select(Movement).where(Movement.session_id == session.id,
                                          Movement.exercise_id == exercise_id))  # fmt: skip
    if row is None:
        row = Movement(session_id=session.id, exercise_id=exercise_id)
        s.add(row)
    row.width, row.height, row.frames, row.data = width, height, frames, data
    s.flush()
    return row


def remove_repetition(s: Session, session_id: int, exercise_id: str, index: int) -> int:
    """Forget a stored repetition (`RepWithdrawn`: it was the next exercise's
    movement); how many rows went (0 or 1)."""
    rows = s.scalars(
        select(Repetition).where(
            Repetition.session_id == session_id,
            Repetition.exercise_id == exercise_id,
            Repetition.index == index,
        )
    ).all()
    for row in rows:
        s.delete(row)
    s.flush()
    return len(rows)


def add_set(
    s: Session,
    session: ExerciseSession,
    exercise_id: str,
    set_index: int,
    reps: list[RepResult],
    target_reps: int | None = None,
) -> SetSummary:
    """A per-set summary."""

    def mean(values: list[float]) -> float | None:
        return float(sum(values) / len(values)) if values else None

    row = SetSummary(
        session_id=session.id, exercise_id=exercise_id, set_index=set_index, reps=len(reps),
        target_reps=target_reps, mean_excursion_deg=mean([r.excursion_deg for r in reps]),
        mean_quality=mean([float(r.quality) for r in reps]),
        mean_target_share=mean([r.target_share for r in reps
                                if r.rom_trusted and math.isfinite(r.target_share)]),
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row


@dataclass(frozen=True, slots=True)
class ExerciseWork:
    """One exercise of a session against its prescription: sets and
    repetitions per set prescribed (0 when not prescribed), repetitions
    prescribed in all, sets done (those with all their repetitions) and
    repetitions done, the target range and the mean
    range reached (deg, over the repetitions whose landmarks were all seen;
    None when there were none)."""

    exercise_id: str
    name: str
    sets: int
    reps: int
    planned_reps: int
    done_sets: int
    done_reps: int
    target_rom_deg: float
    mean_rom_deg: float | None

    @property
    def missing_reps(self) -> int:
        return max(0, self.planned_reps - self.done_reps)


def work_of(
    repetitions: list[Repetition], document: dict | None, library: Library | None = None
) -> tuple[ExerciseWork, ...]:
    """What a session did against the program `document` it followed (None:
    nothing prescribed): the prescribed exercises in their order, then any
    others done. A program the library no longer validates counts as none."""
    library = library or default_library()
    prescribed: dict[str, list] = {}  # id -> [sets, reps per set, reps in all, target]
    if document:
        try:
            program = program_from_data(document, "the session's program", library)
        except ProgramError as exc:
            logger.warning("cannot judge a session against its program: %s", exc)
        else:
            for item in program.exercises:  # an exercise prescribed twice adds up
                target = item.target_rom_deg or library.get(item.exercise_id).target_rom_deg[0]
                entry = prescribed.setdefault(item.exercise_id, [0, item.reps, 0, target])
                entry[0] += item.sets
                entry[2] += item.sets * item.reps
    done: dict[str, list[Repetition]] = defaultdict(list)
    for r in repetitions:
        done[r.exercise_id].append(r)
    out = []
    for ex_id in [*prescribed, *(x for x in done if x not in prescribed)]:
        known = ex_id in library  # an exercise since taken out of the library keeps its id
        name = library.get(ex_id).name if known else ex_id
        default_target = library.get(ex_id).target_rom_deg[0] if known else math.nan
        sets, reps, planned, target = prescribed.get(ex_id, (0, 0, 0, default_target))
        reps_done = done.get(ex_id, [])
        trusted = [r.excursion_deg for r in reps_done if r.rom_trusted]
        per_set = Counter(r.set_index for r in reps_done)
        # a set is done when its prescribed repetitions are (any set, unprescribed)
        sets_done = sum(1 for n in per_set.values() if n >= reps)
        out.append(ExerciseWork(
            ex_id, name, sets, reps, planned, sets_done, len(reps_done), float(target),
            sum(trusted) / len(trusted) if trusted else None,
        ))  # fmt: skip
    return tuple(out)


def end_session(
    s: Session,
    session: ExerciseSession,
    status: str = "complete",
    *,
    pain_after: int | None = None,
    rpe: int | None = None,
    notes: str = "",
    ended_at: datetime | None = None,
) -> ExerciseSession:
    """Close a session: `complete` (the patient finished) is stored as
    `partial` when its program version prescribes repetitions not done;
    `interrupted` as it is."""
    if status not in ("complete", "interrupted"):
        raise ConfigError(f"status: expected complete or interrupted, got {status!r}")
    if status == "complete":
        version = session.program_version
        document = version.document if version else None
        work = work_of(session.repetitions, document, clinic_library(s))
        if any(w.missing_reps for w in work):
            status = "partial"
    session.status = status
    session.pain_after = _scale("pain_after", pain_after)
    session.rpe = _scale("rpe", rpe)
    session.notes = notes or session.notes
    session.ended_at = ended_at or utcnow()
    s.flush()
    return session


def record_diary(
    s: Session,
    patient_id: int,
    *,
    program_version_id: int | None = None,
    pain_before: int | None = None,
    pain_after: int | None = None,
    rpe: int | None = None,
    notes: str = "",
    started_at: datetime | None = None,
    is_demo: bool = False,
) -> ExerciseSession:
    """A pain-diary entry: pain, effort and notes written by hand, kept with
    the sessions (status and source `diary`) but not one of them."""
    x = start_session(
        s, patient_id, program_version_id=program_version_id, device="diary", source="diary",
        pain_before=pain_before, started_at=started_at, is_demo=is_demo,
    )  # fmt: skip
    x.status = "diary"
    x.pain_after, x.rpe = _scale("pain_after", pain_after), _scale("rpe", rpe)
    x.notes, x.ended_at = notes, x.started_at
    s.flush()
    return x


def interrupt_abandoned(s: Session, live_elsewhere: set[int] | frozenset[int] = frozenset(),
                        only: set[int] | None = None) -> list[int]:  # fmt: skip
    """Close as interrupted every live session left in progress by a server
    process that is gone (killed, crashed, power lost); their repetitions stay.
    `live_elsewhere`: sessions another running process still holds; `only`:
    just these (those of one process found dead).

    The end time is the last moment the record shows the patient exercising
    (start plus the last repetition's end), never the time of the restart."""
    found = s.scalars(
        select(ExerciseSession).where(
            ExerciseSession.status == "in_progress", ExerciseSession.source == "live"
        )
    ).all()
    closed = []
    for x in found:
        if x.id in live_elsewhere or (only is not None and x.id not in only):
            continue
        last = max((r.t_end_s for r in x.repetitions if math.isfinite(r.t_end_s)), default=0.0)
        end_session(s, x, "interrupted", ended_at=x.started_at + timedelta(seconds=max(last, 0)))
        closed.append(x.id)
    return closed


def _sets_of(reps: tuple[RepResult, ...], per_set: int | None) -> list[list[RepResult]]:
    if not per_set:
        return [list(reps)] if reps else []
    return [list(reps[i : i + per_set]) for i in range(0, len(reps), per_set)]


def save_analysis(
    s: Session,
    patient_id: int,
    result: Analysis | ProgramAnalysis,
    *,
    exercise_id: str | None = None,
    program_version_id: int | None = None,
    reps_per_set: int | None = None,
    device: str = "video file",
    pain_before: int | None = None,
    pain_after: int | None = None,
    rpe: int | None = None,
    notes: str = "",
    started_at: datetime | None = None,
    is_demo: bool = False,
    recording: PoseSequence | None = None,
    movement_consent: bool = True,
) -> ExerciseSession:
    """Store an offline analysis (one exercise, or a whole program) as a
    complete session: repetitions, per-set summaries, pain and effort, and,
    given the `recording` analysed, each exercise's movement for the replay
    (the span the program spent on it; none with `movement_consent` False)."""
    session = start_session(
        s, patient_id, program_version_id=program_version_id, device=device, source="video",
        pain_before=pain_before, movement_consent=movement_consent, started_at=started_at,
        is_demo=is_demo,
    )  # fmt: skip
    if isinstance(result, ProgramAnalysis):
        parts = [
            (run.prescribed.exercise_id, run.analysis, run.prescribed.reps,
             (run.t_start_s, run.t_end_s))
            for run in result.runs
        ]  # fmt: skip
    else:
        if exercise_id is None:
            exercise_id = result.summary.exercise
        parts = [(exercise_id, result, reps_per_set, (-math.inf, math.inf))]
    last_t = 0.0
    for ex_id, analysis, per_set, (start_s, end_s) in parts:
        if recording is not None and not math.isnan(start_s):
            data = movement.of_recording(recording.t_s, recording.image, start_s, end_s)
            save_movement(s, session, ex_id, data, movement.frame_count(data),
                          recording.width, recording.height)  # fmt: skip
        for k, reps in enumerate(_sets_of(analysis.reps, per_set), start=1):
            for rep in reps:
                add_repetition(s, session, ex_id, rep, set_index=k)
                last_t = max(last_t, rep.t_end_s)
            add_set(s, session, ex_id, k, reps, per_set)
    return end_session(
        s, session, "complete", pain_after=pain_after, rpe=rpe, notes=notes,
        ended_at=session.started_at + timedelta(seconds=last_t),
    )  # fmt: skip


def last_session_at(s: Session, patient_id: int) -> datetime | None:
    """When the patient's latest exercise session began (diary entries are none)."""
    return s.scalar(
        select(func.max(ExerciseSession.started_at)).where(
            ExerciseSession.patient_id == patient_id, ExerciseSession.status.in_(ENDED)
        )
    )


def sessions_of(s: Session, patient_id: int) -> list[ExerciseSession]:
    """A patient's sessions, oldest first."""
    return list(
        s.scalars(
            select(ExerciseSession)
            .where(ExerciseSession.patient_id == patient_id)
            .order_by(ExerciseSession.started_at, ExerciseSession.id)
        )
    )
