"""Exports: CSV per session and per patient (with its data dictionary), and a
FHIR R4 Bundle."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from .. import records
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
# their zone; degrees to 0.1, seconds to 0.01, shares to 0.001.
COLUMNS: dict[str, str] = {
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
    "rep_index": "the repetition within the exercise, from 1",
    "side": "the side measured: left, right, or both",
    "t_start_s": "start of the repetition, seconds from the start of the recording",
    "t_peak_s": "the turning point, seconds",
    "t_end_s": "end of the repetition, seconds",
    "frame_peak": "the recording's frame at the turning point (-1: not known)",
    "rom_min_deg": "smallest joint angle in the repetition, degrees",
    "rom_max_deg": "largest joint angle, degrees",
    "excursion_deg": "range of motion (largest - smallest angle), degrees",
    "duration_s": "duration of the repetition, seconds",
    "up_s": "time moving away from rest, seconds",
    "hold_s": "time held at the turning point, seconds",
    "down_s": "time returning to rest, seconds",
    "quality": "movement quality score, 0 to 100",
    "faults": "faults found, ;-separated ids: the exercise's form rules, short_range "
              "(short of the target), too_fast, landmarks_unseen (range not trusted)",
    "target_rom_deg": "the target range the repetition was judged against, degrees",
    "target_share": "excursion_deg / target_rom_deg (1.0: the target reached)",
}  # fmt: skip


def _round(value: float | None, digits: int) -> float | str:
    return "" if value is None else round(value, digits)


def _utc(t) -> str:
    return "" if t is None else as_utc(t).isoformat(timespec="seconds")


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
            w.writerow([
                *head, r.exercise_id, names.get(r.exercise_id, ""), r.set_index, r.index, r.side,
                *(_round(v, 2) for v in (r.t_start_s, r.t_peak_s, r.t_end_s)), r.frame_peak,
                *(_round(v, 1) for v in (r.rom_min_deg, r.rom_max_deg, r.excursion_deg)),
                *(_round(v, 2) for v in (r.duration_s, r.up_s, r.hold_s, r.down_s)),
                r.quality, ";".join(r.faults.get("ids", [])),
                _round(r.target_rom_deg, 1), _round(r.target_share, 3),
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
    audit("export", x.patient_id, f"session {session_id} CSV")
    return _csv(s, [x], f"session-{session_id}.csv", request.app.state.pseudonym_key)


@router.get("/patients/{patient_id}/export.csv", response_class=Response, responses=CSV)
def patient_csv(
    patient_id: IdPath("patient"), request: Request, s: DbSession, who: User, audit: Audit
) -> Response:
    require_reader(s, who, patient_id)
    audit("export", patient_id, "sessions CSV")
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
    audit("export", patient_id, "FHIR bundle")
    bundle = patient_bundle(patient, records.sessions_of(s, patient_id),
                            patient_trends(s, patient_id), clinic_library(s))  # fmt: skip
    return JSONResponse(bundle, media_type="application/fhir+json")
