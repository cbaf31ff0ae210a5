"""Programs as prescribed to a patient: every change is a new, immutable version.

A program document is the same data as a program YAML file and is validated by
`telerehab.rehab_programs.program` before anything is written. An edit names
the version it was based on; if someone else saved a newer one meanwhile, the
edit is refused with ConflictError (no lost update), by a compare-and-set on
the program row that both SQLite and PostgreSQL honour.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from telerehab.errors import ConflictError, ProgramError
from telerehab.rehab_programs.program import Program as ProgramSpec
from telerehab.rehab_programs.program import program_from_data

from .exercises import clinic_library
from .tables import Program, ProgramVersion, User


def validate_document(s: Session, document: Any, origin: str = "program") -> ProgramSpec:
    """The validated program, or ProgramError naming the bad field; its
    exercises come from this server's library (`exercises.clinic_library`)."""
    return program_from_data(document, origin, clinic_library(s))


def create_program(s: Session, patient_id: int, document: dict, by: int) -> ProgramVersion:
    """A new program for a patient, at version 1."""
    patient = s.get(User, patient_id)
    if patient is None or patient.role != "patient":
        raise ProgramError(f"patient: no patient with id {patient_id}")
    validate_document(s, document)
    program = Program(patient_id=patient_id, version=1)
    s.add(program)
    s.flush()
    version = ProgramVersion(program_id=program.id, version=1, document=document, created_by=by)
    s.add(version)
    s.flush()
    return version


def revise_program(
    s: Session, program_id: int, document: dict, based_on: int, by: int
) -> ProgramVersion:
    """Save `document` as the next version of a program, if `based_on` is still
    the newest version; else ConflictError and nothing is written."""
    validate_document(s, document)
    result = s.execute(
        update(Program)
        .where(Program.id == program_id, Program.version == based_on)
        .values(version=based_on + 1)
    )
    if result.rowcount != 1:
        current = s.scalar(select(Program.version).where(Program.id == program_id))
        if current is None:
            raise ProgramError(f"program: no program with id {program_id}")
        raise ConflictError(
            f"program {program_id}: your edit is based on version {based_on}, but version "
            f"{current} was saved since; reload it and apply your change again"
        )
    version = ProgramVersion(
        program_id=program_id, version=based_on + 1, document=document, created_by=by
    )
    s.add(version)
    s.flush()
    return version


def latest(s: Session, program_id: int) -> ProgramVersion | None:
    """The newest version of a program."""
    return s.scalar(
        select(ProgramVersion)
        .where(ProgramVersion.program_id == program_id)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    )


def active_program(s: Session, patient_id: int) -> ProgramVersion | None:
    """The newest version of the patient's most recent active program."""
    program = s.scalar(
        select(Program)
        .where(Program.patient_id == patient_id, Program.active.is_(True))
        .order_by(Program.id.desc())
        .limit(1)
    )
    return latest(s, program.id) if program else None
