"""The audit trail: who read, exported, watched or changed whose record, and
every login, failed or not.

Entries are added in the request's own transaction, so a read that fails
leaves no entry and a change is never stored without its entry. A failed login
is the exception: the request ends in 401 (its transaction rolls back), so it
is recorded in a transaction of its own (`record_apart`).

Each entry stores what it touched (`Touched`: the kind of record and the ids
it names) as the code that records it says so; its `target` is the same in
English, a line for admins. Nothing reads the target back: rewording it
changes no kind.

Cost: a read becomes a write. On PostgreSQL the commit of a look (read,
export, watch) does not wait for the WAL to reach the disk
(`synchronous_commit = off` for that transaction only): the entry is written
and ordered like any other, but a power cut within about 0.6 s of it may lose
it (never the database's consistency, never a change of a record). Measured in
`benchmarks/audit_overhead.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .accounts import Principal
from .tables import AuditEvent, as_utc

# action: what happened (the patient concerned is in `patient_id`)
ACTIONS = (
    "read",  # a record shown: patient, trends, programs, sessions, live status
    "export",  # CSV or FHIR export
    "watch",  # a live session followed (WebSocket) or its video received
    "record",  # a patient recorded a session (diary, live start or end)
    "prescribe",  # a program created or revised
    "account.create",
    "account.deactivate",
    "account.activate",
    "care_link.create",
    "care_link.end",
    "password.change",
    "account.language",  # the language of a user's pages and cues set (the target)
    "login",
    "login.failed",
    "login.throttled",
    "logout",
    "audit.read",  # the audit trail itself queried by an admin
    "exercise.learn",  # a therapist's demonstration analysed (nothing stored)
    "exercise.add",  # an exercise added to this server's library
    "alert.acknowledge",  # a therapist acknowledged a patient's alert (its id: the target)
    "denied",  # a logged-in user was refused (403): what they tried is the target
)
MAX_LIMIT = 1000
LOOKS = frozenset({"read", "export", "watch", "audit.read"})  # actions that change no record


# kind: what an entry touched, stored with it (`Touched`) for a reader to word;
# the target beside it is the same in English for admins
KINDS = (
    "profile",  # the patient's account details
    "patient_list",  # a therapist's list of patients, this one among them
    "account",  # an account created, deactivated or activated
    "programs",  # all of the patient's programs
    "program",  # one program
    "program_version",  # a version of a program (prescribed or revised)
    "program_history",  # a program's versions, compared
    "sessions",  # the list of the patient's sessions
    "session",  # one session (its session_id)
    "movement",  # one session's movement of one exercise (session_id, exercise_id)
    "diary",  # a pain-diary entry (session_id)
    "trends",  # the patient's trends and alerts
    "sessions_csv",  # all sessions exported
    "session_csv",  # one session exported (session_id)
    "fhir",  # the record as a FHIR bundle
    "live_session",  # a live session's status (session_id)
    "live_video",  # a live session's video (session_id)
    "live_feed",  # a live session's repetitions as they come (session_id)
    "care_link",  # a care link with a therapist (therapist_id)
    "alert",  # an alert: of an exercise (exercise_id) or a session (session_id), or a week
    "language",  # the language of pages and cues (language)
    "exercise",  # an exercise of the clinic's library (exercise_id)
    "trail",  # the audit trail itself
    "request",  # a refused request (the target: its method and path)
    "other",  # no record: a login, a logout, a password (or, before 0009, a target unread)
)


@dataclass(frozen=True, slots=True)
class Touched:
    """What an entry touched: the kind of record and the ids it names, stored
    with the entry for a reader to word (never shown raw to a patient)."""

    kind: str  # one of KINDS
    session_id: int | None = None
    therapist_id: int | None = None
    exercise_id: str | None = None
    language: str | None = None  # a language's code

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audit kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")


NO_RECORD = Touched("other")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts and from where: a logged-in user or, for a login, an e-mail."""

    id: int | None
    email: str
    role: str
    client: str  # the client's network address, as the server saw it

    @classmethod
    def of(cls, who: Principal | None, client: str, email: str = "") -> Actor:
        if who is None:
            return cls(None, email[:254], "", client[:64])
        return cls(who.id, who.email, who.role, client[:64])


def record(
    s: Session,
    actor: Actor,
    action: str,
    patient_id: int | None = None,
    target: str = "",
    *,
    what: Touched,
) -> None:
    """Add one entry in the caller's transaction: `what` was touched (`target`
    says it in English, for admins)."""
    if action not in ACTIONS:
        raise ValueError(f"audit action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    if action in LOOKS and s.get_bind().dialect.name == "postgresql":
        # A look changes nothing else: its commit need not wait for the disk
        # (see the module docstring).
        s.execute(text("SET LOCAL synchronous_commit TO OFF"))
    s.add(
        AuditEvent(
            actor_id=actor.id,
            actor_email=actor.email,
            role=actor.role,
            action=action,
            patient_id=patient_id,
            target=target[:100],
            client=actor.client,
            kind=what.kind,
            session_id=what.session_id,
            therapist_id=what.therapist_id,
            exercise_id=what.exercise_id,
            language=what.language,
        )
    )


def record_apart(
    db,
    actor: Actor,
    action: str,
    patient_id: int | None = None,
    target: str = "",
    *,
    what: Touched,
) -> None:
    """Add one entry in a transaction of its own (kept when the request fails)."""
    with db.session() as s:
        record(s, actor, action, patient_id, target, what=what)


@dataclass(frozen=True, slots=True)
class Query:
    """A filter on the trail; every field optional. Newest first."""

    patient_id: int | None = None
    actor_id: int | None = None
    not_actor_id: int | None = None  # leave out this actor (a patient's own actions)
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # paging: entries older than this one
    limit: int = 100


def entries(s: Session, q: Query) -> list[AuditEvent]:
    """The entries matching `q`, newest first, at most `q.limit` (<= MAX_LIMIT)."""
    stmt = select(AuditEvent)
    if q.patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == q.patient_id)
    if q.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == q.actor_id)
    if q.not_actor_id is not None:
        stmt = stmt.where((AuditEvent.actor_id != q.not_actor_id) | AuditEvent.actor_id.is_(None))
    if q.action is not None:
        stmt = stmt.where(AuditEvent.action == q.action)
    if q.since is not None:
        stmt = stmt.where(AuditEvent.at >= as_utc(q.since))
    if q.until is not None:
        stmt = stmt.where(AuditEvent.at < as_utc(q.until))
    if q.before_id is not None:
        stmt = stmt.where(AuditEvent.id < q.before_id)
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(max(1, min(q.limit, MAX_LIMIT)))
    return list(s.scalars(stmt))


def touched(entry: AuditEvent) -> Touched:
    """What `entry` touched, as stored with it (an entry without a kind,
    written by a server older than migration 0009 since it ran: `other`)."""
    if entry.kind is None:
        return NO_RECORD
    return Touched(
        entry.kind,
        session_id=entry.session_id,
        therapist_id=entry.therapist_id,
        exercise_id=entry.exercise_id,
        language=entry.language,
    )
