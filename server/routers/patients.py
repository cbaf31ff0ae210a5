"""Patients: the therapist's list (with adherence and alerts), one patient,
their trends."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session

from .. import accounts, prescriptions, records
from ..deps import Audit, DbSession, IdPath, User, require_reader, require_therapist_of
from ..exercises import clinic_library
from ..schemas import LanguageIn, UserOut
from ..tables import User as UserRow
from ..trends import Trends, compute_trends

router = APIRouter(prefix="/api/patients", tags=["patients"])


def patient_trends(s: Session, patient_id: int) -> Trends:
    version = prescriptions.active_program(s, patient_id)
    return compute_trends(
        patient_id,
        records.sessions_of(s, patient_id),
        version.document if version else None,
        library=clinic_library(s),
    )


def _patient(s: Session, patient_id: int) -> UserRow:
    user = s.get(UserRow, patient_id)
    if user is None or user.role != "patient":
        raise HTTPException(404, f"no patient with id {patient_id}")
    return user


@router.get("")
def list_patients(s: DbSession, who: User, audit: Audit) -> list[dict]:
    """A therapist's patients, each with last week's adherence and alerts; a
    patient gets themself."""
    if who.role == "therapist":
        people = accounts.patients_of(s, who.id)
    elif who.role == "patient":
        people = [_patient(s, who.id)]
    else:
        raise HTTPException(403, "admins manage accounts and see no clinical records")
    out = []
    for p in people:
        audit("read", p.id, "patient list")
        t = patient_trends(s, p.id)
        recent = [a for a in t.adherence if a.prescribed][-2:]
        out.append({
            **UserOut.model_validate(p).model_dump(),
            "adherence": [asdict(a) for a in recent],
            "alerts": [asdict(a) for a in t.alerts],
            "sessions": sum(a.done for a in t.adherence),
        })  # fmt: skip
    return out


@router.get("/{patient_id}")
def get_patient(patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit) -> UserOut:
    require_reader(s, who, patient_id)
    found = _patient(s, patient_id)
    audit("read", patient_id, "patient")
    return UserOut.model_validate(found)


@router.get("/{patient_id}/trends")
def get_trends(patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit) -> dict:
    require_reader(s, who, patient_id)
    _patient(s, patient_id)
    audit("read", patient_id, "trends")
    return asdict(patient_trends(s, patient_id))


@router.put("/{patient_id}/language")
def set_language(
    patient_id: IdPath("patient"), body: LanguageIn, s: DbSession, who: User, audit: Audit
) -> dict:
    """The language of the patient's pages and spoken cues, set by their therapist."""
    require_therapist_of(s, who, patient_id)
    _patient(s, patient_id)
    language = accounts.set_language(s, patient_id, body.language)
    audit("account.language", patient_id, language)
    return {"language": language}
