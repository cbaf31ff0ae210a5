"""The audit trail: who read, exported, watched or changed whose record, and
every login, failed or not.

Entries are added in the request's own transaction, so a read that fails
leaves no entry and a change is never stored without its entry. A failed login
is the exception: the request ends in 401 (its transaction rolls back), so it
is recorded in a transaction of its own (`record_apart`).

Cost: a read becomes a write. On PostgreSQL the commit of a look (read,
export, watch) does not wait for the WAL to reach the disk
(`synchronous_commit = off` for that transaction only): the entry is written
and ordered like any other, but a power cut within about 0.6 s of it may lose
it (never the database's consistency, never a change of a record). Measured in
`benchmarks/audit_overhead.py`.
"""

from __future__ import annotations

import re
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
    s: Session, actor: Actor, action: str, patient_id: int | None = None, target: str = ""
) -> None:
    """Add one entry in the caller's transaction."""
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
        )
    )


def record_apart(
    db, actor: Actor, action: str, patient_id: int | None = None, target: str = ""
) -> None:
    """Add one entry in a transaction of its own (kept when the request fails)."""
    with db.session() as s:
        record(s, actor, action, patient_id, target)


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


# What an entry's target names, by its wording in the routers (`record` calls):
# (pattern, kind of record). The first match wins; a session's, a therapist's
# and an exercise's id are the groups named so.
_KINDS = (
    (r"patient list", "patient_list"),
    (r"patient", "profile"),
    (r"patient invited by therapist \d+", "account"),
    (r"user \d+", "account"),
    (r"programs", "programs"),
    (r"program \d+ v\d+", "program_version"),
    (r"program \d+ versions", "program_history"),
    (r"program \d+", "program"),
    (r"sessions", "sessions"),
    (r"sessions CSV", "sessions_csv"),
    (r"FHIR bundle", "fhir"),
    (r"trends", "trends"),
    (r"session (?P<session>\d+) CSV", "session_csv"),
    (r"session (?P<session>\d+) \(diary\)", "diary"),
    (r"session (?P<session>\d+) movement of (?P<exercise>[\w.-]+)", "movement"),
    (r"session (?P<session>\d+)", "session"),
    (r"live session (?P<session>\d+)", "live_session"),
    (r"live session (?P<session>\d+) video", "live_video"),
    (r"live session (?P<session>\d+) feed", "live_feed"),
    (r"therapist (?P<therapist>\d+)", "care_link"),
    # an alert's id: kind:exercise:week (see server/trends.py)
    (r"[a-z_]+:(?P<exercise>[\w.-]+):\d{4}-W\d{2}", "alert"),
    (r"[a-z_]+:(?P<session>\d+)", "alert"),
    (r"[a-z_]+:\d{4}-W\d{2}", "alert"),
)
_KIND_PATTERNS = tuple((re.compile(pattern), kind) for pattern, kind in _KINDS)


@dataclass(frozen=True, slots=True)
class Touched:
    """What an entry touched, read from its target: the kind of record and the
    ids it names, for a reader to word (never shown raw to a patient)."""

    kind: str  # see _KINDS; "language", "trail", "request" or "other" besides
    session_id: int | None = None
    therapist_id: int | None = None
    exercise: str | None = None  # an exercise's id
    language: str | None = None  # a language's code


def touched(action: str, target: str) -> Touched:
    """The kind of record an entry of `action` with `target` touched."""
    if action == "account.language":
        return Touched("language", language=target or None)
    if action == "audit.read":
        return Touched("trail")
    if action == "denied":
        return Touched("request")
    for pattern, kind in _KIND_PATTERNS:
        m = pattern.fullmatch(target)
        if m:
            found = m.groupdict()
            return Touched(
                kind,
                session_id=int(found["session"]) if found.get("session") else None,
                therapist_id=int(found["therapist"]) if found.get("therapist") else None,
                exercise=found.get("exercise"),
            )
    return Touched("other")
