"""Programs: therapists prescribe and revise (every change a new version);
patients and their therapists read."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import select

from telerehab.errors import ConflictError

from .. import prescriptions
from ..audit import Touched
from ..deps import Audit, DbSession, IdPath, User, require_reader, require_therapist_of
from ..schemas import (
    ProgramConflict,
    ProgramHistoryItem,
    ProgramIn,
    ProgramRevision,
    ProgramVersionOut,
)
from ..tables import Program, ProgramVersion, as_utc
from ..tables import User as UserRow

router = APIRouter(prefix="/api", tags=["programs"])
STALE = {409: {"model": ProgramConflict, "description": "a newer version exists: nothing written"}}


def _out(v: ProgramVersion) -> ProgramVersionOut:
    return ProgramVersionOut(program_id=v.program_id, version=v.version, document=v.document,
                             created_at=v.created_at, created_by=v.created_by)  # fmt: skip


def _conflict(s, program_id: int, detail: str) -> JSONResponse:
    """The 409 of a stale revision: the newest version, who saved it, when."""
    newest = prescriptions.latest(s, program_id)
    author = s.get(UserRow, newest.created_by) if newest.created_by else None
    body = ProgramConflict(
        detail=detail,
        version=newest.version,
        saved_by=author.name if author else None,
        saved_at=as_utc(newest.created_at),
    )
    location = {"Location": f"/api/programs/{program_id}"}
    return JSONResponse(body.model_dump(mode="json"), status_code=409, headers=location)


def _program(s, program_id: int) -> Program:
    """The program; one that does not exist is refused like another patient's
    (403), so ids cannot be probed."""
    program = s.get(Program, program_id)
    if program is None:
        raise HTTPException(403, f"no program {program_id} that you may read")
    return program


@router.get("/patients/{patient_id}/programs")
def list_programs(
    patient_id: IdPath("patient"), s: DbSession, who: User, audit: Audit
) -> list[ProgramVersionOut]:
    """The newest version of each of the patient's programs."""
    require_reader(s, who, patient_id)
    audit("read", patient_id, "programs", what=Touched("programs"))
    ids = s.scalars(select(Program.id).where(Program.patient_id == patient_id)
                    .order_by(Program.id))  # fmt: skip
    return [_out(v) for i in ids if (v := prescriptions.latest(s, i)) is not None]


@router.post("/patients/{patient_id}/programs", status_code=201)
def create_program(
    patient_id: IdPath("patient"), body: ProgramIn, s: DbSession, who: User, audit: Audit
) -> ProgramVersionOut:
    require_therapist_of(s, who, patient_id)
    version = prescriptions.create_program(s, patient_id, body.document, who.id)
    audit(
        "prescribe",
        patient_id,
        f"program {version.program_id} v{version.version}",
        what=Touched("program_version"),
    )
    return _out(version)


@router.get("/programs/{program_id}")
def get_program(program_id: IdPath("program"), s: DbSession, who: User, audit: Audit) -> dict:
    """The newest version and the history of versions."""
    program = _program(s, program_id)
    require_reader(s, who, program.patient_id)
    audit("read", program.patient_id, f"program {program_id}", what=Touched("program"))
    versions = [_out(v) for v in program.versions]
    return {"latest": versions[-1], "versions": [
        {"version": v.version, "created_at": as_utc(v.created_at), "created_by": v.created_by}
        for v in versions
    ]}  # fmt: skip


@router.get("/programs/{program_id}/versions")
def program_versions(
    program_id: IdPath("program"), s: DbSession, who: User, audit: Audit
) -> list[ProgramHistoryItem]:
    """Every version, newest first: who saved it, when, and what changed from
    the version before (as data: the page words it)."""
    program = _program(s, program_id)
    require_reader(s, who, program.patient_id)
    audit(
        "read",
        program.patient_id,
        f"program {program_id} versions",
        what=Touched("program_history"),
    )
    return [ProgramHistoryItem(**item) for item in prescriptions.history(s, program_id)]


@router.put("/programs/{program_id}", responses=STALE)
def revise_program(
    program_id: IdPath("program"), body: ProgramRevision, s: DbSession, who: User, audit: Audit
) -> ProgramVersionOut:
    """A new version; 409 if `based_on_version` is no longer the newest, with
    that version's number, who saved it and when (nothing written)."""
    program = _program(s, program_id)
    require_therapist_of(s, who, program.patient_id)
    try:
        version = prescriptions.revise_program(
            s, program_id, body.document, body.based_on_version, who.id
        )
    except ConflictError as exc:
        return _conflict(s, program_id, str(exc))
    audit(
        "prescribe",
        program.patient_id,
        f"program {program_id} v{version.version}",
        what=Touched("program_version"),
    )
    return _out(version)
