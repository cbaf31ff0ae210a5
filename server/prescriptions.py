"""Programs as prescribed to a patient: every change is a new, immutable version.

A program document is the same data as a program YAML file and is validated by
`telerehab.rehab_programs.program` before anything is written. An edit names
the version it was based on; if someone else saved a newer one meanwhile, the
edit is refused with ConflictError (no lost update), by a compare-and-set on
the program row that both SQLite and PostgreSQL honour. What changed from one
version to the next is computed here (`changes`), as data a page words in the
reader's language.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from telerehab.errors import ConflictError, ProgramError
from telerehab.rehab_programs.program import PrescribedModel, ProgramModel, program_from_data
from telerehab.rehab_programs.program import Program as ProgramSpec

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


# ------------------------------------------------------------------ what changed
PROGRAM_FIELDS = ("title", "sessions_per_week", "therapist_notes")
TEMPO_FIELDS = ("up_s", "hold_s", "down_s")
# an exercise's fields, in the order a change list names them
FIELDS = ("side", "sets", "reps", "target_rom_deg", "tempo", "rest_s", "calibration", "notes")


def _program_value(document: dict, name: str) -> Any:
    """A program field as the program has it: a field left out is its default."""
    return document.get(name, ProgramModel.model_fields[name].default)


def _exercise_values(entry: dict) -> dict[str, Any]:
    """An exercise's fields, each as prescribed or its default (None: the
    library's, e.g. its tempo or target); a tempo with all its parts."""
    values = {name: entry.get(name, f.default) for name, f in PrescribedModel.model_fields.items()}
    if tempo := values["tempo"]:
        values["tempo"] = {k: tempo.get(k, 0 if k == "hold_s" else None) for k in TEMPO_FIELDS}
    return values


def _change(
    kind: str,
    entry: dict | None = None,
    field: str | None = None,
    before: Any = None,
    after: Any = None,
) -> dict:
    """One change of `changes`; `entry`, the exercise it is about."""
    entry = entry or {}
    side = entry.get("side", "auto") if entry else None
    return {
        "kind": kind,
        "exercise": entry.get("exercise"),
        "side": side,
        "field": field,
        "before": before,
        "after": after,
    }


Pairs = tuple[list[tuple[int, int]], list[int], list[int]]


def _pairs(before: list[dict], after: list[dict]) -> Pairs:
    """Entries of two versions that are the same prescription: the same exercise
    on the same side, then the same exercise whose side changed, in order.
    Returns (pairs, removed, added) as indices into `before` and `after`."""
    left, right = list(range(len(before))), list(range(len(after)))
    pairs = []
    for same in (lambda a, b: a.get("side", "auto") == b.get("side", "auto"), lambda a, b: True):
        for j in list(right):
            exercise = after[j].get("exercise")
            match = (i for i in left if before[i].get("exercise") == exercise)
            i = next((i for i in match if same(before[i], after[j])), None)
            if i is not None:
                pairs.append((i, j))
                left.remove(i)
                right.remove(j)
    return sorted(pairs, key=lambda p: p[1]), left, right


def changes(previous: dict | None, current: dict) -> list[dict]:
    """What changed from the program document `previous` to `current`, in the
    order a reader takes it: the program's own fields, then each exercise of
    `current` (added, or its fields changed), then those removed. Each change
    is `{kind, exercise, side, field, before, after}`, kind one of `created`,
    `program_changed`, `exercise_added`, `exercise_removed`, `exercise_changed`;
    `before`/`after` are the values (None: the default, the library's where
    the field is the exercise's). A field given its default explicitly is no
    change. Version 1 has one change, `created`."""
    if previous is None:
        return [_change("created")]
    out = [
        _change("program_changed", None, name, _program_value(previous, name), b)
        for name in PROGRAM_FIELDS
        if _program_value(previous, name) != (b := _program_value(current, name))
    ]
    before, after = previous.get("exercises", []), current.get("exercises", [])
    pairs, removed, added = _pairs(before, after)
    paired = dict((j, i) for i, j in pairs)
    for j, entry in enumerate(after):
        if j in added:
            out.append(_change("exercise_added", entry))
            continue
        old, new = _exercise_values(before[paired[j]]), _exercise_values(entry)
        out += [
            _change("exercise_changed", entry, name, old[name], new[name])
            for name in FIELDS
            if old[name] != new[name]
        ]
    out += [_change("exercise_removed", before[i]) for i in removed]
    return out


def history(s: Session, program_id: int) -> list[dict]:
    """Every version of a program, newest first: its number, author (id and
    name; None once the account is gone), time, and what changed from the
    version before it."""
    versions = s.scalars(
        select(ProgramVersion)
        .where(ProgramVersion.program_id == program_id)
        .order_by(ProgramVersion.version)
    ).all()
    authors = {v.created_by for v in versions if v.created_by is not None}
    names = dict(s.execute(select(User.id, User.name).where(User.id.in_(authors))).all())
    out, previous = [], None
    for v in versions:
        what = changes(previous, v.document)
        out.append(
            {
                "version": v.version,
                "created_at": v.created_at,
                "created_by": v.created_by,
                "author": names.get(v.created_by),
                "changes": what,
            }
        )
        previous = v.document
    return out[::-1]
