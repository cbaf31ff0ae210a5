"""A therapist's prescription: exercises with sets, reps, targets, tempo, side, rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from telerehab.errors import ProgramError

from .documents import load_yaml, validate
from .exercise import TempoModel
from .library import Library, default_library


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrescribedModel(_Strict):
    exercise: str
    sets: int = Field(ge=1, le=20)
    reps: int = Field(ge=1, le=100)
    side: Literal["auto", "left", "right", "both"] = "auto"
    target_rom_deg: float | None = Field(default=None, ge=0, le=180)
    tempo: TempoModel | None = None
    rest_s: float = Field(default=60, ge=0, le=900)
    notes: str = ""


class ProgramModel(_Strict):
    title: str = Field(min_length=2)
    sessions_per_week: int = Field(ge=1, le=14)
    therapist_notes: str = ""
    exercises: list[PrescribedModel] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Prescribed:
    """One exercise of a program."""

    exercise_id: str
    sets: int
    reps: int
    side: str
    target_rom_deg: float | None
    tempo_s: tuple[float, float, float] | None
    rest_s: float
    notes: str


@dataclass(frozen=True, slots=True)
class Program:
    """A validated program; every exercise id exists in the library."""

    title: str
    sessions_per_week: int
    therapist_notes: str
    exercises: tuple[Prescribed, ...]


def program_from_data(data: object, origin: str, library: Library | None = None) -> Program:
    """Validate a parsed program document."""
    library = library or default_library()
    m = validate(ProgramModel, data, origin)
    items = []
    for i, e in enumerate(m.exercises):
        if e.exercise not in library:
            try:
                library.get(e.exercise)
            except ProgramError as exc:
                raise ProgramError(f"{origin}: exercises[{i}].exercise: {exc}") from None
        tempo = (e.tempo.up_s, e.tempo.hold_s, e.tempo.down_s) if e.tempo else None
        items.append(
            Prescribed(
                e.exercise, e.sets, e.reps, e.side, e.target_rom_deg, tempo, e.rest_s, e.notes
            )
        )
    return Program(m.title, m.sessions_per_week, m.therapist_notes, tuple(items))


def load_program(path: str | Path, library: Library | None = None) -> Program:
    """Read and validate a program file."""
    return program_from_data(load_yaml(path), str(path), library)
