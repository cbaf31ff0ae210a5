"""Exports: CSV per session and per patient, and a FHIR R4 Bundle."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response

from .. import records
from ..deps import Audit, DbSession, IdPath, User, require_reader
from ..exercises import clinic_library
from ..fhir import patient_bundle
from ..tables import ExerciseSession
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

COLUMNS = ("session_id", "started_at", "status", "pain_before", "pain_after", "rpe",
           "exercise_id", "set_index", "index", "side", "t_start_s", "t_peak_s", "t_end_s",
           "rom_min_deg", "rom_max_deg", "excursion_deg", "duration_s", "up_s", "hold_s",
           "down_s", "quality", "faults", "target_rom_deg", "target_share")  # fmt: skip


def _csv(sessions: list[ExerciseSession], name: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for x in sessions:
        head = [x.id, x.started_at.isoformat(), x.status, x.pain_before, x.pain_after, x.rpe]
        if not x.repetitions:
            w.writerow([*head, *[""] * (len(COLUMNS) - len(head))])
        for r in x.repetitions:
            w.writerow([
                *head, r.exercise_id, r.set_index, r.index, r.side,
                r.t_start_s, r.t_peak_s, r.t_end_s,
                r.rom_min_deg, r.rom_max_deg, r.excursion_deg, r.duration_s, r.up_s, r.hold_s,
                r.down_s, r.quality, ";".join(r.faults.get("ids", [])),
                r.target_rom_deg, r.target_share,
            ])  # fmt: skip
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/sessions/{session_id}/export.csv", response_class=Response, responses=CSV)
def session_csv(session_id: IdPath("session"), s: DbSession, who: User, audit: Audit) -> Response:
    x = readable_session(s, who, session_id)
    audit("export", x.patient_id, f"session {session_id} CSV")
    return _csv([x], f"session-{session_id}.csv")


@router.get("/patients/{patient_id}/export.csv", response_class=Response, responses=CSV)
def patient_csv(patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit) -> Response:
    require_reader(s, who, patient_id)
    audit("export", patient_id, "sessions CSV")
    return _csv(records.sessions_of(s, patient_id), f"patient-{patient_id}.csv")


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
