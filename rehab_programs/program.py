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


MAX_EXERCISES = 50  # a session of a program; far beyond any real prescription


class CalibrationModel(_Strict):
    rest_deg: float = Field(ge=-90, le=180, description="the patient's start position")
    end_deg: float = Field(ge=-90, le=180, description="the furthest the patient reaches")


class PrescribedModel(_Strict):
    exercise: str = Field(max_length=64)
    sets: int = Field(ge=1, le=20)
    reps: int = Field(ge=1, le=100)
    side: Literal["auto", "left", "right", "both"] = "auto"
    target_rom_deg: float | None = Field(default=None, ge=0, le=180)
    tempo: TempoModel | None = None
    rest_s: float = Field(default=60, ge=0, le=900)
    calibration: CalibrationModel | None = Field(
        default=None, description="the patient's own range; thresholds become shares of it"
    )
    notes: str = Field(default="", max_length=2000)


class ProgramModel(_Strict):
    title: str = Field(min_length=2, max_length=200)
    sessions_per_week: int = Field(ge=1, le=14)
    therapist_notes: str = Field(default="", max_length=5000)
    exercises: list[PrescribedModel] = Field(min_length=1, max_length=MAX_EXERCISES)


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
    calibration_deg: tuple[float, float] | None = None  # (rest, end) of the patient's range

    def engine_options(self) -> dict:
        """Keyword arguments for `RepetitionEngine` and its drivers."""
        return {
            "side": self.side if self.side in ("left", "right") else "auto",
            "target_rom_deg": self.target_rom_deg,
            "tempo_s": self.tempo_s,
            "reps_per_set": self.reps,
            "rest_s": self.rest_s,
            "calibration_deg": self.calibration_deg,
        }


@dataclass(frozen=True, slots=True)
class Program:
    """A validated program; every exercise id exists in the library."""

    title: str
    sessions_per_week: int
    therapist_notes: str
    exercises: tuple[Prescribed, ...]


def program_from_data(data: object, origin: str, library: Library | None = None) -> Program:
    """Validate a parsed program document. An exercise may be prescribed once
    per side (squat, or curl left and curl right), never twice the same."""
    library = library or default_library()
    m = validate(ProgramModel, data, origin)
    items = []
    first: dict[tuple[str, str], int] = {}  # (exercise, side) -> where it is first prescribed
    for i, e in enumerate(m.exercises):
        if e.exercise not in library:
            try:
                library.get(e.exercise)
            except ProgramError as exc:
                raise ProgramError(f"{origin}: exercises[{i}].exercise: {exc}") from None
        if (j := first.setdefault((e.exercise, e.side), i)) != i:
            # one exercise on one side is one entry: two would count the same movement twice
            raise ProgramError(
                f"{origin}: exercises[{i}]: {e.exercise} ({e.side}) is already prescribed as "
                f"exercises[{j}]"
            )
        tempo = (e.tempo.up_s, e.tempo.hold_s, e.tempo.down_s) if e.tempo else None
        calibration = None
        if e.calibration is not None:
            calibration = (e.calibration.rest_deg, e.calibration.end_deg)
            try:
                library.get(e.exercise).phases.calibrated_span(*calibration)
            except ValueError as exc:
                raise ProgramError(f"{origin}: exercises[{i}].{exc}") from None
        items.append(
            Prescribed(
                e.exercise, e.sets, e.reps, e.side, e.target_rom_deg, tempo, e.rest_s, e.notes,
                calibration,
            )
        )  # fmt: skip
    return Program(m.title, m.sessions_per_week, m.therapist_notes, tuple(items))


def load_program(path: str | Path, library: Library | None = None) -> Program:
    """Read and validate a program file."""
    return program_from_data(load_yaml(path), str(path), library)
