"""The audit trail, read-only: a patient sees who accessed their record; an
admin queries the whole trail. There is no endpoint that changes an entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from .. import audit as trail
from ..deps import Audit, DbSession, IdPath, User, require_role
from ..schemas import MAX_ID, AccessOut, AuditOut, Moment
from ..tables import ExerciseSession
from ..tables import User as UserRow

router = APIRouter(prefix="/api", tags=["audit"])
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/patients/{patient_id}/access-log")
def access_log(
    patient_id: IdPath("patient"),
    s: DbSession,
    who: User,
    limit: Annotated[int, Query(ge=1, le=trail.MAX_LIMIT)] = 100,
    before_id: OptId = None,
) -> list[AccessOut]:
    """Who read, exported, watched or changed this patient's record, newest
    first: for the patient only. Their own actions are left out."""
    if who.role != "patient" or who.id != patient_id:
        raise HTTPException(403, "only the patient sees who accessed their record")
    q = trail.Query(
        patient_id=patient_id, not_actor_id=patient_id, before_id=before_id, limit=limit
    )
    others = trail.entries(s, q)
    touched = {r.id: trail.touched(r) for r in others}
    ids = {r.actor_id for r in others if r.actor_id is not None}
    ids |= {t.therapist_id for t in touched.values() if t.therapist_id is not None}
    found = s.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(ids)))
    names = {row.id: row.name for row in found}
    sessions = {t.session_id for t in touched.values() if t.session_id is not None}
    started = s.execute(
        select(ExerciseSession.id, ExerciseSession.started_at).where(
            ExerciseSession.id.in_(sessions), ExerciseSession.patient_id == patient_id
        )
    )
    starts = {row.id: row.started_at for row in started}
    return [
        AccessOut(
            id=r.id,
            at=r.at,
            who=names.get(r.actor_id, r.actor_email),
            role=r.role,
            action=r.action,
            what=r.target,
            record_kind=t.kind,
            record_at=starts.get(t.session_id),
            exercise=t.exercise_id,
            therapist=names.get(t.therapist_id),
            language=t.language,
        )
        for r in others
        for t in (touched[r.id],)
    ]


@router.get("/audit")
def query_audit(
    s: DbSession,
    who: User,
    audit: Audit,
    patient_id: OptId = None,
    actor_id: OptId = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    before_id: OptId = None,
    limit: Annotated[int, Query(ge=1, le=trail.MAX_LIMIT)] = 100,
) -> list[AuditOut]:
    """The audit trail for admins, newest first, filtered by any of patient,
    actor, action and time (since <= at < until); page with `before_id`.
    The query itself is recorded."""
    require_role(who, "admin")
    if action is not None and action not in trail.ACTIONS:
        raise HTTPException(422, f"action: expected one of {', '.join(trail.ACTIONS)}")
    q = trail.Query(
        patient_id=patient_id,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    rows = trail.entries(s, q)
    audit(
        "audit.read",
        patient_id,
        f"actor {actor_id}" if actor_id else "",
        what=trail.Touched("trail"),
    )
    return [AuditOut.model_validate(r) for r in rows]
