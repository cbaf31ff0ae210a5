"""Exports: CSV per session and per patient (with its data dictionary), and a
FHIR R4 Bundle."""

from __future__ import annotations

import csv
import dataclasses
import io
import math

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from telerehab.rehab_programs.events import REP_DERIVED, RepResult

from .. import records
from ..audit import Touched
from ..deps import Audit, DbSession, IdPath, User, require_reader
from ..exercises import clinic_library
from ..fhir import patient_bundle
from ..pseudonyms import pseudonym
from ..tables import ExerciseSession, as_utc
from ..tables import User as UserRow
from .patients import patient_trends
from .sessions import readable_session

router = APIRouter(prefix="/api", tags=["exports"])
CSV = {
    200: {
        "description": "one row per repetition (a session without any: one row)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
FHIR = {
    200: {
        "description": "a FHIR R4 Bundle (collection)",
        "content": {"application/fhir+json": {"schema": {"type": "object"}}},
    }
}

# The CSV's columns and what each holds: the data dictionary (also served at
# /api/exports/columns and written out in docs/exports.md). Times are UTC with
# their zone; each repetition's measurement rounded as `RepResult` says (degrees
# to 0.1, seconds to 0.01, shares to 0.001). The repetition's columns are
# derived from `RepResult`: a new field is exported, and described, at once.
SESSION_COLUMNS: dict[str, str] = {
    "patient": "pseudonymous patient code (P- and 12 characters; the same patient, the same "
               "code, on this server); never a name, e-mail or database id",
    "session_id": "the session's id on this server",
    "started_at_utc": "when the session began, ISO 8601 in UTC (+00:00)",
    "ended_at_utc": "when it ended, ISO 8601 in UTC (+00:00); empty while in progress",
    "status": "complete (all prescribed repetitions done), partial (ended short of them), "
              "interrupted (connection lost), in_progress, or diary (a pain-diary entry: "
              "no exercise measured, not a session)",
    "source": "live (camera in the browser), video (a video file analysed), diary (by hand)",
    "pain_before": "pain before, 0 (none) to 10 (worst imaginable); empty: not given",
    "pain_after": "pain after, 0 to 10; empty: not given",
    "rpe": "effort, Borg CR10 0 (rest) to 10 (maximal); empty: not given",
    "exercise_id": "the exercise's id in the library (e.g. squat); empty: no repetition",
    "exercise_name": "the exercise's name (e.g. Squat)",
    "set_index": "the set, from 1",
}  # fmt: skip
# (column, RepResult field or derived property, decimals or None)
REP_COLUMNS: list[tuple[str, str, int | None]] = [
    ("rep_index" if f.name == "index" else f.name, f.name, f.metadata["digits"])
    for f in dataclasses.fields(RepResult)
] + [(name, name, digits) for name, (_, digits) in REP_DERIVED.items()]
COLUMNS: dict[str, str] = SESSION_COLUMNS | {
    column: REP_DERIVED[name][0] if name in REP_DERIVED else RepResult.__dataclass_fields__[
        name].metadata["doc"]
    for column, name, _ in REP_COLUMNS
}  # fmt: skip


def _utc(t) -> str:
    return "" if t is None else as_utc(t).isoformat(timespec="seconds")


def _cell(value: object, digits: int | None) -> object:
    """A repetition's value in the CSV: rounded, faults ;-separated, missing empty."""
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, digits) if digits is not None else value
    return value


def _csv(s: Session, sessions: list[ExerciseSession], name: str, key: bytes) -> Response:
    names = {e.id: e.name for e in clinic_library(s)}  # exercises added here too
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for x in sessions:
        head = [pseudonym(key, x.patient_id), x.id, _utc(x.started_at), _utc(x.ended_at),
                x.status, x.source, x.pain_before, x.pain_after, x.rpe]  # fmt: skip
        if not x.repetitions:
            w.writerow([*head, *[""] * (len(COLUMNS) - len(head))])
        for r in x.repetitions:
            rep = r.result()
            w.writerow([
                *head, r.exercise_id, names.get(r.exercise_id, ""), r.set_index,
                *(_cell(getattr(rep, name), digits) for _, name, digits in REP_COLUMNS),
            ])  # fmt: skip
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/exports/columns")
def csv_columns(who: User) -> dict[str, str]:
    """The data dictionary of the CSV exports: each column and what it holds."""
    return COLUMNS


@router.get("/sessions/{session_id}/export.csv", response_class=Response, responses=CSV)
def session_csv(
    session_id: IdPath("session"), request: Request, s: DbSession, who: User, audit: Audit
) -> Response:
    x = readable_session(s, who, session_id)
    audit(
        "export",
        x.patient_id,
        f"session {session_id} CSV",
        what=Touched("session_csv", session_id=session_id),
    )
    return _csv(s, [x], f"session-{session_id}.csv", request.app.state.pseudonym_key)


@router.get("/patients/{patient_id}/export.csv", response_class=Response, responses=CSV)
def patient_csv(
    patient_id: IdPath("patient"), request: Request, s: DbSession, who: User, audit: Audit
) -> Response:
    require_reader(s, who, patient_id)
    audit("export", patient_id, "sessions CSV", what=Touched("sessions_csv"))
    key = request.app.state.pseudonym_key
    return _csv(s, records.sessions_of(s, patient_id), f"patient-{patient_id}.csv", key)


@router.get("/patients/{patient_id}/fhir", response_class=JSONResponse, responses=FHIR)
def patient_fhir(
    patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit
) -> JSONResponse:
    require_reader(s, who, patient_id)
    patient = s.get(UserRow, patient_id)
    if patient is None:
        raise HTTPException(404, f"no patient with id {patient_id}")
    audit("export", patient_id, "FHIR bundle", what=Touched("fhir"))
    bundle = patient_bundle(patient, records.sessions_of(s, patient_id),
                            patient_trends(s, patient_id), clinic_library(s))  # fmt: skip
    return JSONResponse(bundle, media_type="application/fhir+json")
