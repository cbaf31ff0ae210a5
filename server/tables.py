"""Database tables (SQLAlchemy 2 declarative). The API's request and response
schemas live in `schemas.py`; these are storage only.

What is kept: users, care relationships (therapist <-> patient), programs with
every version, sessions (program version, times, status, device, pain before /
after, effort, notes, video consent), per-set summaries and per-repetition
measurements. No video and no frames: `video_consent` records only whether the
patient allowed recording in that session.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from telerehab.rehab_programs.events import RepResult

ROLES = ("patient", "therapist", "admin")
# in_progress: open; complete: every prescribed repetition done; partial: ended
# with prescribed work not done; interrupted: the connection was lost and the
# session never resumed; diary: a pain-diary entry written by hand (no exercise
# measured: not a session for adherence).
SESSION_STATUSES = ("in_progress", "complete", "partial", "interrupted", "diary")
ENDED = ("complete", "partial", "interrupted")  # exercise sessions that took place


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the tables use."""
    return datetime.now(UTC)


def as_utc(t: datetime) -> datetime:
    """A stored time, aware and in UTC (SQLite hands datetimes back naive;
    they were stored in UTC)."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # what the pages say and speak to this user: a catalogue in server/locales.
    # The database's default, fetched when read: an insert names only the
    # columns every revision since 0001 has (older schemas stay writable).
    language: Mapped[str] = mapped_column(String(16), server_default="en")
    __mapper_args__: ClassVar = {"eager_defaults": False}


class CareLink(Base):
    """A therapist treats a patient: the therapist may see and prescribe."""

    __tablename__ = "care_links"
    __table_args__ = (UniqueConstraint("therapist_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthToken(Base):
    """A login: a browser cookie (with its CSRF token) or a bearer token.
    Only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # cookie | bearer | invite (no login)
    csrf_token: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class Program(Base):
    """A patient's prescription; its content lives in versions."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the latest version number
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    versions: Mapped[list[ProgramVersion]] = relationship(
        back_populates="program", order_by="ProgramVersion.version"
    )


class ProgramVersion(Base):
    """One immutable version of a program: the validated program document."""

    __tablename__ = "program_versions"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    program: Mapped[Program] = relationship(back_populates="versions")


class ExerciseSession(Base):
    """One exercise session of a patient."""

    __tablename__ = "sessions"
    # `movement_consent` is not asked back after an insert (the `User` rule)
    __mapper_args__: ClassVar = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    program_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("program_versions.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="in_progress")  # SESSION_STATUSES
    device: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16), default="live")  # live | video | diary
    pain_before: Mapped[int | None] = mapped_column(Integer, default=None)
    pain_after: Mapped[int | None] = mapped_column(Integer, default=None)
    rpe: Mapped[int | None] = mapped_column(Integer, default=None)  # Borg CR10 effort
    notes: Mapped[str] = mapped_column(Text, default="")
    video_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # the movement kept as a skeleton for the therapist's replay (`movement.py`);
    # the patient may decline it for a session
    # (filled by the database when not given, like `User.language`, and loaded
    # when first read: a row written or read as before this column existed
    # still works, as migration tests do)
    movement_consent: Mapped[bool] = mapped_column(Boolean, server_default=true(), deferred=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    program_version: Mapped[ProgramVersion | None] = relationship(viewonly=True)
    sets: Mapped[list[SetSummary]] = relationship(
        back_populates="session", order_by="SetSummary.id", cascade="all, delete-orphan"
    )
    repetitions: Mapped[list[Repetition]] = relationship(
        back_populates="session", order_by="Repetition.id", cascade="all, delete-orphan"
    )
    movements: Mapped[list[Movement]] = relationship(
        order_by="Movement.id", cascade="all, delete-orphan"
    )


class Movement(Base):
    """One exercise's movement in a session, as a skeleton (`movement.py`):
    thinned, compressed image landmarks; never video."""

    __tablename__ = "movements"
    __table_args__ = (UniqueConstraint("session_id", "exercise_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    exercise_id: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)  # the picture, pixels
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SetSummary(Base):
    __tablename__ = "set_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    exercise_id: Mapped[str] = mapped_column(String(64))
    set_index: Mapped[int] = mapped_column(Integer)
    reps: Mapped[int] = mapped_column(Integer)
    target_reps: Mapped[int | None] = mapped_column(Integer, default=None)
    mean_excursion_deg: Mapped[float | None] = mapped_column(Float, default=None)
    mean_quality: Mapped[float | None] = mapped_column(Float, default=None)
    # of the target range, over the repetitions whose landmarks were all seen
    mean_target_share: Mapped[float | None] = mapped_column(Float, default=None)
    session: Mapped[ExerciseSession] = relationship(back_populates="sets")


def repetition_columns(record: type = RepResult) -> dict[str, Any]:
    """A column per field of `record` (`RepResult`), derived from its type: int -> Integer,
    float -> Float (NULL allowed only where the field may be missing: a NaN
    default), str -> String of the field's `chars`, a tuple of ids -> JSON
    `{"ids": [...]}`."""
    hints = typing.get_type_hints(record)
    columns: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        kind = hints[f.name]
        missing = isinstance(f.default, float) and math.isnan(f.default)
        if kind is int:
            columns[f.name] = mapped_column(Integer, nullable=False)
        elif kind is float:
            columns[f.name] = mapped_column(Float, nullable=missing, default=None)
        elif kind is str:
            columns[f.name] = mapped_column(String(f.metadata["chars"]), nullable=False)
        elif typing.get_origin(kind) is tuple:
            columns[f.name] = mapped_column(JSON, nullable=False, default=dict)
        else:
            raise TypeError(f"{record.__name__}.{f.name}: no column type for {kind!r}")
    return columns


# The measured fields of a stored repetition, one column per RepResult field.
RepetitionFields = type("RepetitionFields", (), repetition_columns())


class Repetition(RepetitionFields, Base):
    """One completed repetition: where and when (`session_id`, `exercise_id`,
    `set_index`), then every `RepResult` field as a column."""

    __tablename__ = "repetitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    exercise_id: Mapped[str] = mapped_column(String(64))
    set_index: Mapped[int] = mapped_column(Integer, default=1)
    session: Mapped[ExerciseSession] = relationship(back_populates="repetitions")

    @classmethod
    def of(cls, rep: RepResult, **where: Any) -> Repetition:
        """The row of `rep` (NaN stored as NULL, faults as `{"ids": [...]}`)."""
        values = {f.name: getattr(rep, f.name) for f in dataclasses.fields(RepResult)}
        values["faults"] = {"ids": list(rep.faults)}
        return cls(**where, **{
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()
        })  # fmt: skip

    def result(self) -> RepResult:
        """The stored repetition as the engine reported it (NULL as NaN)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(RepResult)}
        values["faults"] = tuple((self.faults or {}).get("ids", []))
        return RepResult(**{k: float("nan") if v is None else v for k, v in values.items()})

    @property
    def fault_ids(self) -> list[str]:
        return list((self.faults or {}).get("ids", []))

    @property
    def target_share(self) -> float | None:
        """The share of its target range the repetition reached (None: no target)."""
        share = self.result().target_share
        return None if math.isnan(share) else share

    @property
    def rom_trusted(self) -> bool:
        """False when a landmark it needs was unseen (`RepResult.rom_trusted`)."""
        return self.result().rom_trusted


class AuditEvent(Base):
    """One entry of the audit trail: who did what, to whose record, when, from
    where. Append-only: the API has no way to change or delete an entry, and
    the database refuses UPDATE and DELETE on the table (triggers of migration
    0002). No foreign keys, so an entry outlives the accounts it names."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    actor_email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(16), default="")  # "" when nobody logged in
    action: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    target: Mapped[str] = mapped_column(String(100), default="")  # e.g. "session 12"
    client: Mapped[str] = mapped_column(String(64), default="")  # the client's address
    # what it touched (`audit.Touched`; migration 0009 read the older entries' targets)
    kind: Mapped[str | None] = mapped_column(String(32), default=None)  # one of audit.KINDS
    session_id: Mapped[int | None] = mapped_column(Integer, default=None)
    therapist_id: Mapped[int | None] = mapped_column(Integer, default=None)
    exercise_id: Mapped[str | None] = mapped_column(String(64), default=None)
    language: Mapped[str | None] = mapped_column(String(16), default=None)  # a language's code


class CustomExercise(Base):
    """An exercise a therapist added to this clinic's library (learned from a
    demonstration, then reviewed): its document in the library's YAML schema
    (`rehab_programs.exercise.ExerciseModel`). The demonstration itself is
    never kept."""

    __tablename__ = "custom_exercises"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]]
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertAck(Base):
    """A therapist read an alert and acted on it (`trends.Alert.id`): it stays
    listed, marked acknowledged, until its evidence changes (a new id)."""

    __tablename__ = "alert_acks"
    __table_args__ = (UniqueConstraint("patient_id", "alert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[str] = mapped_column(String(120))
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
