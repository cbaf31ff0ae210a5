"""Request and response bodies of the HTTP API (pydantic, at the edge).

Everything that comes in is bounded: ids to 1..2^31-1, strings in length and
free of NUL and unpaired surrogates (neither can be stored), numbers finite,
dates plausible (a diary entry within the last year, a query from 2000 on, none
later than tomorrow), program documents in size.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

from telerehab.rehab_programs.events import REP_DERIVED, RepResult

from .audit import KINDS

MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; beyond is no record
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DOCUMENT_NODES = 2000  # a program of 50 exercises with every option is about 600
MAX_DOCUMENT_DEPTH = 8
DIARY_DAYS = 366


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogates (invalid Unicode)") from None
    return value


def _plausible_time(value: datetime) -> datetime:
    """Aware (naive is taken as UTC), from 2000 to a day from now."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value <= datetime.now(UTC) + timedelta(days=1):
        raise ValueError("expected a time from 2000-01-01 to tomorrow")
    return value


def _recent_time(value: datetime) -> datetime:
    """A session's time: from a year ago to a day from now (a diary entry is
    written after the session; the trends span from the first one to today)."""
    value = _plausible_time(value)
    if value < datetime.now(UTC) - timedelta(days=DIARY_DAYS):
        raise ValueError(f"expected a time within the last {DIARY_DAYS} days")
    return value


def _bounded_document(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON document of at most MAX_DOCUMENT_NODES values, MAX_DOCUMENT_DEPTH
    deep, with finite numbers and clean strings (the program checks the rest)."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_DOCUMENT_NODES:
            raise ValueError(f"too large: more than {MAX_DOCUMENT_NODES} values")
        if depth > MAX_DOCUMENT_DEPTH:
            raise ValueError(f"too deep: more than {MAX_DOCUMENT_DEPTH} levels")
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite (no NaN or infinity)")
        if isinstance(node, str):
            _clean_text(node)
        elif isinstance(node, dict):
            for k, v in node.items():
                _clean_text(k)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return value


def _aware(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back naive."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


Text = Annotated[str, AfterValidator(_clean_text)]
Utc = Annotated[datetime, AfterValidator(_aware)]  # every time the API sends
Moment = Annotated[datetime, AfterValidator(_plausible_time)]  # 2000 .. tomorrow
RecentMoment = Annotated[datetime, AfterValidator(_recent_time)]  # a year ago .. tomorrow
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Document = Annotated[dict[str, Any], AfterValidator(_bounded_document)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_In):
    # empty is a 422 naming the field, not a failed login: nothing was tried
    email: Text = Field(min_length=1, max_length=254)
    password: Text = Field(min_length=1, max_length=1000)
    kind: Literal["cookie", "bearer"] = "cookie"


class PasswordChange(_In):
    current: Text = Field(max_length=1000)
    new: Text = Field(min_length=1, max_length=1000)


class UserIn(_In):
    email: Text = Field(max_length=254)
    name: Text = Field(min_length=1, max_length=200)
    role: Literal["patient", "therapist", "admin"]
    password: Text = Field(max_length=1000)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: str
    is_demo: bool = False
    active: bool = True
    language: str = "en"


class InviteIn(_In):
    email: Text = Field(min_length=3, max_length=254)
    name: Text = Field(min_length=1, max_length=200)
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
        max_length=16,
        description="the patient's pages and cues",
    )


class InvitationIn(_In):
    token: Text = Field(min_length=10, max_length=200, description="the invitation's secret")


class WelcomeIn(InvitationIn):
    password: Text = Field(min_length=1, max_length=1000)


class LanguageIn(_In):
    language: str = Field(
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", max_length=16,
        description="one of the languages GET /api/i18n lists",
    )  # fmt: skip


class CareLinkIn(_In):
    therapist_id: Id
    patient_id: Id


class CareLinkOut(BaseModel):
    id: int
    therapist_id: int
    patient_id: int
    created_at: Utc


class AccessOut(BaseModel):
    """One access to a patient's record, as the patient sees it."""

    id: int
    at: Utc
    who: str = Field(description="the name of whoever acted")
    role: str
    action: str
    what: str = Field(description="the entry's target as recorded (ids and English)")
    record_kind: str = Field(
        description=f"what was touched, for the page to word: {', '.join(KINDS)}"
    )
    record_at: Utc | None = Field(None, description="the session's start, where one was touched")
    exercise: str | None = Field(None, description="the exercise's id, where one was touched")
    therapist: str | None = Field(None, description="the therapist's name, for a care link")
    language: str | None = Field(None, description="the language's code, for a language set")


class AuditOut(BaseModel):
    """One entry of the audit trail, as an admin sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: Utc
    actor_id: int | None
    actor_email: str
    role: str
    action: str
    patient_id: int | None
    target: str
    client: str
    kind: str | None = Field(description=f"what was touched: {', '.join(KINDS)}")
    session_id: int | None = Field(description="the session touched, where one was")
    therapist_id: int | None = Field(description="the therapist of a care link")
    exercise_id: str | None = Field(description="the exercise touched, where one was")
    language: str | None = Field(description="the language's code, for a language set")


class ProgramIn(_In):
    document: Document = Field(description="a program, as in a program YAML file")


class ProgramRevision(_In):
    document: Document
    based_on_version: Id = Field(description="the version this edit started from")


class ProgramVersionOut(BaseModel):
    program_id: int
    version: int
    document: dict[str, Any]
    created_at: Utc
    created_by: int | None


class ProgramChange(BaseModel):
    """One change from the version before (`prescriptions.changes`): data, for
    the page to word in its reader's language."""

    kind: Literal[
        "created", "program_changed", "exercise_added", "exercise_removed", "exercise_changed"
    ]
    exercise: str | None = Field(description="the exercise's id (exercise kinds)")
    side: str | None = Field(description="the exercise's side as prescribed (exercise kinds)")
    field: str | None = Field(description="the field changed, e.g. `reps`, `tempo.up_s`, `title`")
    before: Any = Field(description="the value before; null: the default (the library's)")
    after: Any = Field(description="the value after; null: the default (the library's)")


class ProgramHistoryItem(BaseModel):
    version: int
    created_at: Utc
    created_by: int | None
    author: str | None = Field(description="the author's name; null once the account is gone")
    changes: list[ProgramChange]


class ProgramConflict(BaseModel):
    """A 409 on a revision: the newest version, and who saved it when."""

    detail: str
    version: int
    saved_by: str | None
    saved_at: Utc


class SessionIn(_In):
    """A pain-diary entry, written by hand (not an exercise session)."""

    started_at: RecentMoment | None = None
    pain_before: int | None = Field(default=None, ge=0, le=10)
    pain_after: int | None = Field(default=None, ge=0, le=10)
    rpe: int | None = Field(default=None, ge=0, le=10)
    notes: Text = Field(default="", max_length=5000)


class _RepetitionRecord(BaseModel):
    """Read from a stored repetition (`tables.Repetition`): faults as a list."""

    model_config = ConfigDict(from_attributes=True)

    @field_validator("faults", mode="before", check_fields=False)
    @classmethod
    def _fault_ids(cls, value: Any) -> Any:
        return value.get("ids", []) if isinstance(value, dict) else value


def repetition_out(record: type = RepResult) -> type[BaseModel]:
    """`RepetitionOut`: where (`exercise_id`, `set_index`), then every field
    of `record` (`RepResult`) with its type and description, then what is derived
    from them (`REP_DERIVED`)."""
    hints = typing.get_type_hints(record)
    fields: dict[str, Any] = {
        "exercise_id": (str, Field(description="the exercise's id in the library")),
        "set_index": (int, Field(description="the set, from 1")),
    }
    for f in dataclasses.fields(record):
        kind = hints[f.name]
        if typing.get_origin(kind) is tuple:
            kind = list[str]
        if isinstance(f.default, float) and math.isnan(f.default):  # may be missing
            fields[f.name] = (kind | None, Field(None, description=f.metadata["doc"]))
        else:
            fields[f.name] = (kind, Field(description=f.metadata["doc"]))
    share, trusted = REP_DERIVED["target_share"][0], REP_DERIVED["rom_trusted"][0]
    fields["target_share"] = (float | None, Field(None, description=share))
    fields["rom_trusted"] = (bool, Field(True, description=trusted))
    return create_model("RepetitionOut", __base__=_RepetitionRecord, **fields)


RepetitionOut = repetition_out()


class SessionOut(BaseModel):
    id: int
    patient_id: int
    program_version_id: int | None
    started_at: Utc
    ended_at: Utc | None
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


class WorkOut(BaseModel):
    """One exercise of a session against its prescription (`records.ExerciseWork`)."""

    model_config = ConfigDict(from_attributes=True)

    exercise_id: str
    name: str
    sets: int = Field(description="sets prescribed (0: not prescribed)")
    reps: int = Field(description="repetitions per set prescribed")
    planned_reps: int = Field(description="repetitions prescribed in all")
    done_sets: int
    done_reps: int
    target_rom_deg: float
    mean_rom_deg: float | None = Field(description="over repetitions with every landmark seen")


class SessionDetail(SessionOut):
    reps: list[RepetitionOut]
    work: list[WorkOut] = Field(description="each exercise against the prescription")
    movement_consent: bool = Field(description="the patient allowed a skeleton replay")
    movements: list[str] = Field(description="exercises whose movement was kept for a replay "
                                 "(GET /api/sessions/{id}/movement/{exercise_id})")  # fmt: skip


class AlertAckIn(_In):
    alert_id: str = Field(min_length=1, max_length=120, description="the alert's `id`")


class MovementOut(BaseModel):
    """One exercise's movement as a skeleton: never video."""

    exercise_id: str
    width: int = Field(description="the picture's width, pixels")
    height: int = Field(description="the picture's height, pixels")
    t_s: list[float] = Field(description="each frame's time, seconds (as the repetitions')")
    landmarks: list[list[list[float | None]] | None] = Field(
        description="per frame, 33 landmarks as [x, y, visibility] (x, y normalised to the "
        "picture); a frame is null where no one was seen"
    )
    view: str | None = Field(
        default=None,
        description="the camera view the skeleton is seen from (side, front), "
        "where known (an exercise's demonstration)",
    )
