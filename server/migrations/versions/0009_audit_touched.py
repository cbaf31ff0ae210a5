"""each audit entry stores what it touched

Revision ID: 0009
Revises: 0008

`audit_events.kind`, `session_id`, `therapist_id`, `exercise_id`, `language`:
the kind of record an entry touched and the ids it names (`audit.Touched`),
written with the entry from now on. Until now they were read back from the
target's English wording; the entries stored before get them here, once, by
that reading as it stood at this revision (copied below: the routers' wording
may change, this must not). Downgrade drops the columns.

The table is append-only (0002): its triggers are set aside for the one
backfill, in this migration's transaction, and restored before it commits.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REFUSE = "audit_events is append-only"  # as 0002 words it
COLUMNS = {  # name: type, every one nullable
    "kind": sa.String(32),
    "session_id": sa.Integer(),
    "therapist_id": sa.Integer(),
    "exercise_id": sa.String(64),
    "language": sa.String(16),
}

# The routers' targets as server/audit.py read them at 0008: (pattern, kind),
# the first full match wins; a session's, a therapist's and an exercise's id
# are the groups named so.
KINDS = (
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
    # an alert's id: kind:exercise:week, kind:session, kind:week
    (r"[a-z_]+:(?P<exercise>[\w.-]+):\d{4}-W\d{2}", "alert"),
    (r"[a-z_]+:(?P<session>\d+)", "alert"),
    (r"[a-z_]+:\d{4}-W\d{2}", "alert"),
)
PATTERNS = tuple((re.compile(pattern), kind) for pattern, kind in KINDS)
# Actions whose target is no record's wording. An exercise's id is its own
# target: read as one above, an exercise named "trends" would be taken for
# the patient's trends.
BY_ACTION = {"audit.read": "trail", "denied": "request"}
EXERCISE_ACTIONS = ("exercise.learn", "exercise.add")

events = sa.table(
    "audit_events",
    sa.column("action", sa.String),
    sa.column("target", sa.String),
    *(sa.column(name, type_) for name, type_ in COLUMNS.items()),
)


def touched(action: str, target: str) -> dict:
    """The columns of an entry of `action` with `target`, read as at 0008."""
    found = dict.fromkeys(COLUMNS) | {"kind": "other"}
    if action == "account.language":
        return found | {"kind": "language", "language": target or None}
    if action in BY_ACTION:
        return found | {"kind": BY_ACTION[action]}
    if action in EXERCISE_ACTIONS:
        return found | {"kind": "exercise", "exercise_id": target[:64] or None}
    for pattern, kind in PATTERNS:
        m = pattern.fullmatch(target)
        if m:
            ids = m.groupdict()
            return found | {
                "kind": kind,
                "session_id": int(ids["session"]) if ids.get("session") else None,
                "therapist_id": int(ids["therapist"]) if ids.get("therapist") else None,
                "exercise_id": ids.get("exercise"),
            }
    return found


def _backfill(bind) -> None:
    pairs = bind.execute(sa.select(events.c.action, events.c.target).distinct()).all()
    if not pairs:
        return
    fill = (
        events.update()
        .where(events.c.action == sa.bindparam("b_action"))
        .where(events.c.target == sa.bindparam("b_target"))
        .values({name: sa.bindparam(f"b_{name}") for name in COLUMNS})
    )
    rows = []
    for action, target in pairs:
        columns = touched(action, target)
        rows.append({"b_action": action, "b_target": target,
                     **{f"b_{name}": value for name, value in columns.items()}})  # fmt: skip
    bind.execute(fill, rows)


def upgrade() -> None:
    # Plain ALTER TABLE, not a batch: SQLite's batch would copy the table and
    # lose its append-only triggers.
    for name, type_ in COLUMNS.items():
        op.add_column("audit_events", sa.Column(name, type_, nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
        _backfill(bind)
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        _backfill(bind)
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSE}'); END"
        )


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("audit_events", name)  # SQLite 3.35 or later
