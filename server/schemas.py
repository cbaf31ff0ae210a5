"""Request and response bodies of the HTTP API (pydantic, at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_In):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1000)
    kind: Literal["cookie", "bearer"] = "cookie"


class PasswordChange(_In):
    current: str
    new: str = Field(min_length=1, max_length=1000)


class UserIn(_In):
    email: str = Field(max_length=254)
    name: str = Field(min_length=1, max_length=200)
    role: Literal["patient", "therapist", "admin"]
    password: str = Field(max_length=1000)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: str
    is_demo: bool = False


class CareLinkIn(_In):
    therapist_id: int
    patient_id: int


class ProgramIn(_In):
    document: dict[str, Any] = Field(description="a program, as in a program YAML file")


class ProgramRevision(_In):
    document: dict[str, Any]
    based_on_version: int = Field(ge=1, description="the version this edit started from")


class ProgramVersionOut(BaseModel):
    program_id: int
    version: int
    document: dict[str, Any]
    created_at: datetime
    created_by: int | None


class SessionIn(_In):
    """A session recorded by hand (the pain diary), without the camera."""

    started_at: datetime | None = None
    status: Literal["complete", "interrupted"] = "complete"
    pain_before: int | None = Field(default=None, ge=0, le=10)
    pain_after: int | None = Field(default=None, ge=0, le=10)
    rpe: int | None = Field(default=None, ge=0, le=10)
    notes: str = Field(default="", max_length=5000)


class RepetitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    exercise_id: str
    set_index: int
    index: int
    side: str
    t_start_s: float
    t_peak_s: float
    t_end_s: float
    rom_min_deg: float
    rom_max_deg: float
    excursion_deg: float
    duration_s: float
    up_s: float
    hold_s: float
    down_s: float
    quality: int
    faults: list[str]
    target_rom_deg: float | None = None
    target_share: float | None = None  # of the target range reached
    rom_trusted: bool = True  # False: a needed landmark was unseen (left out of trends)


class SessionOut(BaseModel):
    id: int
    patient_id: int
    program_version_id: int | None
    started_at: datetime
    ended_at: datetime | None
    status: str
    source: str
    device: str
    pain_before: int | None
    pain_after: int | None
    rpe: int | None
    notes: str
    video_consent: bool
    is_demo: bool
    repetitions: int
    exercises: list[str]
    # over the repetitions whose landmarks were all seen and that had a target
    mean_target_share: float | None = None


class SessionDetail(SessionOut):
    reps: list[RepetitionOut]
