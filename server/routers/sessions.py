"""Sessions: a patient's history, one session with its repetitions and its
work against the prescription, and the pain diary (entries kept with the
sessions, status `diary`)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session

from .. import movement, prescriptions, records
from ..audit import Touched
from ..deps import Audit, DbSession, IdPath, User, require_reader
from ..exercises import clinic_library
from ..schemas import (
    MovementOut,
    RepetitionOut,
    SessionDetail,
    SessionIn,
    SessionOut,
    WorkOut,
)
from ..tables import ExerciseSession

router = APIRouter(prefix="/api", tags=["sessions"])


def session_out(x: ExerciseSession) -> SessionOut:
    shares = [r.target_share for r in x.repetitions if r.rom_trusted and r.target_share]
    return SessionOut(
        id=x.id, patient_id=x.patient_id, program_version_id=x.program_version_id,
        started_at=x.started_at, ended_at=x.ended_at, status=x.status, source=x.source,
        device=x.device, pain_before=x.pain_before, pain_after=x.pain_after, rpe=x.rpe,
        notes=x.notes, video_consent=x.video_consent, is_demo=x.is_demo,
        repetitions=len(x.repetitions),
        exercises=sorted({r.exercise_id for r in x.repetitions}),
        mean_target_share=sum(shares) / len(shares) if shares else None,
    )  # fmt: skip


def readable_session(s: Session, who, session_id: int) -> ExerciseSession:
    """The session, if the caller may read it; a session that does not exist
    is refused like another patient's (403), so ids cannot be probed."""
    x = s.get(ExerciseSession, session_id)
    if x is None:
        raise HTTPException(403, f"no session {session_id} that you may read")
    require_reader(s, who, x.patient_id)
    return x


@router.get("/patients/{patient_id}/sessions")
def list_sessions(
    patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit
) -> list[SessionOut]:
    require_reader(s, who, patient_id)
    audit("read", patient_id, "sessions", what=Touched("sessions"))
    return [session_out(x) for x in records.sessions_of(s, patient_id)]


@router.post("/patients/{patient_id}/sessions", status_code=201)
def record_session(
    patient_id: IdPath("patient"), body: SessionIn, s: DbSession, who: User, audit: Audit
) -> SessionOut:
    """The patient writes a pain-diary entry: pain before and after, effort,
    notes. It is listed with the sessions (status `diary`) but is none."""
    if who.role != "patient" or who.id != patient_id:
        raise HTTPException(403, "only the patient records their own diary")
    version = prescriptions.active_program(s, patient_id)
    x = records.record_diary(
        s, patient_id, program_version_id=version.id if version else None,
        pain_before=body.pain_before, pain_after=body.pain_after, rpe=body.rpe, notes=body.notes,
        started_at=body.started_at,
    )  # fmt: skip
    audit("record", patient_id, f"session {x.id} (diary)", what=Touched("diary", session_id=x.id))
    return session_out(x)


@router.get("/sessions/{session_id}")
def get_session(
    session_id: IdPath("session"), s: DbSession, who: User, audit: Audit
) -> SessionDetail:
    x = readable_session(s, who, session_id)
    audit(
        "read",
        x.patient_id,
        f"session {session_id}",
        what=Touched("session", session_id=session_id),
    )
    reps = [RepetitionOut.model_validate(r) for r in x.repetitions]
    version = x.program_version
    work = records.work_of(x.repetitions, version.document if version else None, clinic_library(s))
    return SessionDetail(**session_out(x).model_dump(), reps=reps,
                         work=[WorkOut.model_validate(w) for w in work],
                         movement_consent=x.movement_consent,
                         movements=[m.exercise_id for m in x.movements])  # fmt: skip


@router.get("/sessions/{session_id}/movement/{exercise_id}")
def get_movement(
    session_id: IdPath("session"), exercise_id: str, s: DbSession, who: User, audit: Audit
) -> MovementOut:
    """One exercise's movement in the session, as a skeleton to replay."""
    x = readable_session(s, who, session_id)
    row = next((m for m in x.movements if m.exercise_id == exercise_id), None)
    if row is None:
        raise HTTPException(404, f"session {session_id} kept no movement of {exercise_id[:64]!r}")
    audit(
        "read",
        x.patient_id,
        f"session {session_id} movement of {row.exercise_id}",
        what=Touched("movement", session_id=session_id, exercise_id=row.exercise_id),
    )
    t_s, frames = movement.as_lists(row.data)
    return MovementOut(exercise_id=row.exercise_id, width=row.width, height=row.height,
                       t_s=t_s, landmarks=frames)  # fmt: skip
