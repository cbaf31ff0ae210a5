"""Patients: the therapist's list (with adherence and alerts), one patient,
their trends."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from telerehab.errors import ConfigError, ConflictError

from .. import accounts, prescriptions, records
from ..audit import Touched
from ..deps import Audit, DbSession, IdPath, User, require_reader, require_therapist_of
from ..exercises import clinic_library
from ..schemas import AlertAckIn, InviteIn, LanguageIn, UserOut
from ..tables import AlertAck, as_utc
from ..tables import User as UserRow
from ..trends import Trends, alert_subject, compute_trends

router = APIRouter(prefix="/api/patients", tags=["patients"])


def patient_trends(s: Session, patient_id: int) -> Trends:
    version = prescriptions.active_program(s, patient_id)
    return compute_trends(
        patient_id,
        records.sessions_of(s, patient_id),
        version.document if version else None,
        library=clinic_library(s),
    )


def trends_out(s: Session, patient_id: int, t: Trends | None = None) -> dict:
    """`patient_trends` as plain data, each alert with `acknowledged` (who and
    when, or None) from the therapists' acknowledgements."""
    t = t or patient_trends(s, patient_id)
    acks = {a.alert_id: a for a in s.scalars(select(AlertAck).where(
        AlertAck.patient_id == patient_id))}  # fmt: skip
    out = asdict(t)
    for alert in out["alerts"]:
        ack = acks.get(alert["id"])
        by = s.get(UserRow, ack.by_id) if ack and ack.by_id else None
        alert["acknowledged"] = None if ack is None else {
            "by": by.name if by else None, "at": as_utc(ack.at).isoformat()}  # fmt: skip
    return out


def _patient(s: Session, patient_id: int) -> UserRow:
    user = s.get(UserRow, patient_id)
    if user is None or user.role != "patient":
        raise HTTPException(404, f"no patient with id {patient_id}")
    return user


PatientSort = Literal["name", "last_session", "alerts", "adherence"]


@router.get("")
def list_patients(
    s: DbSession,
    who: User,
    audit: Audit,
    q: Annotated[str, Query(max_length=100, description="part of a name or e-mail, any case")] = "",
    sort: Annotated[
        PatientSort,
        Query(
            description="name (A-Z), last_session (most recent "
            "first), alerts (most first), adherence (lowest "
            "first: who needs a call)"
        ),
    ] = "name",
) -> list[dict]:
    """A therapist's patients, each with last week's adherence, alerts and the
    day of their last session; a patient gets themself. `q` keeps those whose
    name or e-mail contains it; `sort` orders them (ties by name)."""
    if who.role == "therapist":
        people = accounts.patients_of(s, who.id)
    elif who.role == "patient":
        people = [_patient(s, who.id)]
    else:
        raise HTTPException(403, "admins manage accounts and see no clinical records")
    wanted = q.strip().casefold()
    people = [p for p in people if wanted in p.name.casefold() or wanted in p.email.casefold()]
    out = []
    for p in people:
        audit("read", p.id, "patient list", what=Touched("patient_list"))
        t = patient_trends(s, p.id)
        recent = [a for a in t.adherence if a.prescribed][-2:]
        last = records.last_session_at(s, p.id)
        out.append({
            **UserOut.model_validate(p).model_dump(),
            "adherence": [asdict(a) for a in recent],
            "alerts": trends_out(s, p.id, t)["alerts"],
            "sessions": sum(a.done for a in t.adherence),
            "last_session_at": as_utc(last).isoformat() if last else None,
        })  # fmt: skip
    by_name = sorted(out, key=lambda p: (p["name"].casefold(), p["id"]))
    if sort == "last_session":  # never exercised: last
        return sorted(by_name, key=lambda p: p["last_session_at"] or "", reverse=True)
    if sort == "alerts":  # those not acknowledged yet
        return sorted(by_name, key=lambda p: -sum(not a["acknowledged"] for a in p["alerts"]))
    if sort == "adherence":  # the share of prescribed sessions done lately; none prescribed: last

        def share(p: dict) -> float:
            done = sum(a["done"] for a in p["adherence"])
            due = sum(a["prescribed"] for a in p["adherence"])
            return done / due if due else math.inf

        return sorted(by_name, key=share)
    return by_name


@router.post("/invite", status_code=201)
def invite(body: InviteIn, s: DbSession, who: User, audit: Audit) -> dict:
    """A therapist opens an account for a new patient in their care and gets
    the invitation link to give them (once, for INVITE_DAYS days): the
    patient chooses their own password there. The secret is in the link's
    fragment (`#...`), which browsers never send to a server or in a Referer."""
    if who.role != "therapist":
        raise HTTPException(403, "only a therapist invites a patient")
    try:
        user, secret = accounts.invite_patient(s, who.id, body.email, body.name, body.language)
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    audit(
        "account.create", user.id, f"patient invited by therapist {who.id}", what=Touched("account")
    )
    patient = UserOut.model_validate(user).model_dump()
    return {"patient": patient, "invite_path": f"/welcome?lang={user.language}#{secret}",
            "valid_days": accounts.INVITE_DAYS}  # fmt: skip


@router.get("/{patient_id}")
def get_patient(patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit) -> UserOut:
    require_reader(s, who, patient_id)
    found = _patient(s, patient_id)
    audit("read", patient_id, "patient", what=Touched("profile"))
    return UserOut.model_validate(found)


@router.get("/{patient_id}/trends")
def get_trends(patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit) -> dict:
    require_reader(s, who, patient_id)
    _patient(s, patient_id)
    audit("read", patient_id, "trends", what=Touched("trends"))
    return trends_out(s, patient_id)


@router.post("/{patient_id}/alerts/acknowledge")
def acknowledge_alert(
    patient_id: IdPath("patient"), body: AlertAckIn, s: DbSession, who: User, audit: Audit
) -> dict:
    """A therapist of the patient acknowledges one of the patient's current
    alerts (by its `id`); it stays listed, marked, until its evidence changes."""
    require_therapist_of(s, who, patient_id)
    _patient(s, patient_id)
    t = patient_trends(s, patient_id)
    alert = next((a for a in t.alerts if a.id == body.alert_id), None)
    if alert is None:
        raise HTTPException(404, f"no current alert {body.alert_id!r} for patient {patient_id}")
    found = s.scalar(select(AlertAck).where(AlertAck.patient_id == patient_id,
                                            AlertAck.alert_id == body.alert_id))  # fmt: skip
    if found is None:
        s.add(AlertAck(patient_id=patient_id, alert_id=body.alert_id, by_id=who.id))
        s.flush()
    session_id, exercise_id = alert_subject(alert)
    about = Touched("alert", session_id=session_id, exercise_id=exercise_id)
    audit("alert.acknowledge", patient_id, body.alert_id, what=about)
    return next(a for a in trends_out(s, patient_id, t)["alerts"] if a["id"] == body.alert_id)


@router.put("/{patient_id}/language")
def set_language(
    patient_id: IdPath("patient"), body: LanguageIn, s: DbSession, who: User, audit: Audit
) -> dict:
    """The language of the patient's pages and spoken cues, set by their therapist."""
    require_therapist_of(s, who, patient_id)
    _patient(s, patient_id)
    language = accounts.set_language(s, patient_id, body.language)
    audit("account.language", patient_id, language, what=Touched("language", language=language))
    return {"language": language}
