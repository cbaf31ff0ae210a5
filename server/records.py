"""Exercise sessions and what was measured in them.

A session is opened, its repetitions are stored as they complete (so a patient
who disconnects mid-set keeps every completed one), and it is closed as
complete or interrupted. `save_analysis` stores an offline analysis of a video
as a finished session.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from telerehab.errors import ConfigError
from telerehab.rehab_programs.engine import Analysis
from telerehab.rehab_programs.events import RepResult
from telerehab.rehab_programs.program_run import ProgramAnalysis

from .tables import SESSION_STATUSES, ExerciseSession, Repetition, SetSummary, User, utcnow


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
    started_at: datetime | None = None,
    is_demo: bool = False,
) -> ExerciseSession:
    """Open a session for a patient."""
    patient = s.get(User, patient_id)
    if patient is None or patient.role != "patient":
        raise ConfigError(f"patient: no patient with id {patient_id}")
    session = ExerciseSession(
        patient_id=patient_id, program_version_id=program_version_id, device=device,
        source=source, pain_before=_scale("pain_before", pain_before),
        video_consent=video_consent, started_at=started_at or utcnow(), is_demo=is_demo,
    )  # fmt: skip
    s.add(session)
    s.flush()
    return session


def add_repetition(
    s: Session, session: ExerciseSession, exercise_id: str, rep: RepResult, set_index: int = 1
) -> Repetition:
    """Store one completed repetition now (live sessions call this per repetition)."""
    fields = asdict(rep)
    fields["faults"] = {"ids": list(rep.faults)}
    row = Repetition(session_id=session.id, exercise_id=exercise_id, set_index=set_index, **{
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fields.items()
    })  # fmt: skip
    s.add(row)
    s.flush()
    return row


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
    """Close a session as complete or interrupted."""
    if status not in SESSION_STATUSES[1:]:
        raise ConfigError(f"status: expected complete or interrupted, got {status!r}")
    session.status = status
    session.pain_after = _scale("pain_after", pain_after)
    session.rpe = _scale("rpe", rpe)
    session.notes = notes or session.notes
    session.ended_at = ended_at or utcnow()
    s.flush()
    return session


def interrupt_abandoned(s: Session, live_elsewhere: set[int] | frozenset[int] = frozenset()
                        ) -> list[int]:  # fmt: skip
    """Close as interrupted every live session left in progress by a server
    process that is gone (killed, crashed, power lost); their repetitions stay.
    `live_elsewhere`: sessions another running process still holds.

    The end time is the last moment the record shows the patient exercising
    (start plus the last repetition's end), never the time of the restart."""
    found = s.scalars(
        select(ExerciseSession).where(
            ExerciseSession.status == "in_progress", ExerciseSession.source == "live"
        )
    ).all()
    closed = []
    for x in found:
        if x.id in live_elsewhere:
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
) -> ExerciseSession:
    """Store an offline analysis (one exercise, or a whole program) as a
    complete session: repetitions, per-set summaries, pain and effort."""
    session = start_session(
        s, patient_id, program_version_id=program_version_id, device=device, source="video",
        pain_before=pain_before, started_at=started_at, is_demo=is_demo,
    )  # fmt: skip
    if isinstance(result, ProgramAnalysis):
        parts = [
            (run.prescribed.exercise_id, run.analysis, run.prescribed.reps) for run in result.runs
        ]
    else:
        if exercise_id is None:
            exercise_id = result.summary.exercise
        parts = [(exercise_id, result, reps_per_set)]
    last_t = 0.0
    for ex_id, analysis, per_set in parts:
        for k, reps in enumerate(_sets_of(analysis.reps, per_set), start=1):
            for rep in reps:
                add_repetition(s, session, ex_id, rep, set_index=k)
                last_t = max(last_t, rep.t_end_s)
            add_set(s, session, ex_id, k, reps, per_set)
    return end_session(
        s, session, "complete", pain_after=pain_after, rpe=rpe, notes=notes,
        ended_at=session.started_at + timedelta(seconds=last_t),
    )  # fmt: skip


def sessions_of(s: Session, patient_id: int) -> list[ExerciseSession]:
    """A patient's sessions, oldest first."""
    return list(
        s.scalars(
            select(ExerciseSession)
            .where(ExerciseSession.patient_id == patient_id)
            .order_by(ExerciseSession.started_at, ExerciseSession.id)
        )
    )
