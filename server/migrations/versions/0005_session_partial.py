"""sessions that left prescribed work undone are partial; diary entries are no sessions

Revision ID: 0005
Revises: 0004

Data only, no schema change: `status` gains the values `partial` and `diary`.
Pain-diary entries (source `diary`) become `diary`; each `complete` session is
judged against the program version it followed by the same rule as new ones
(`records.work_of`), and becomes `partial` when repetitions are missing.
Downgrade turns both back into `complete`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

sessions = sa.table(
    "sessions",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("source", sa.String),
    sa.column("program_version_id", sa.Integer),
)
versions = sa.table("program_versions", sa.column("id", sa.Integer), sa.column("document", sa.JSON))
repetitions = sa.table(
    "repetitions",
    sa.column("session_id", sa.Integer),
    sa.column("exercise_id", sa.String),
    sa.column("set_index", sa.Integer),
    sa.column("excursion_deg", sa.Float),
)


def upgrade() -> None:
    from telerehab.server.records import work_of
    from telerehab.server.tables import Repetition

    bind = op.get_bind()
    bind.execute(sessions.update().where(sessions.c.source == "diary").values(status="diary"))
    judged = bind.execute(
        sa.select(sessions.c.id, versions.c.document)
        .join(versions, versions.c.id == sessions.c.program_version_id)
        .where(sessions.c.status == "complete")
    ).all()
    partial = []
    for session_id, document in judged:
        rows = bind.execute(sa.select(repetitions).where(repetitions.c.session_id == session_id))
        done = [Repetition(exercise_id=r.exercise_id, set_index=r.set_index, faults={},
                           excursion_deg=r.excursion_deg) for r in rows]  # fmt: skip
        if any(w.missing_reps for w in work_of(done, document)):
            partial.append(session_id)
    if partial:
        bind.execute(sessions.update().where(sessions.c.id.in_(partial)).values(status="partial"))


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sessions.update()
        .where(sessions.c.status.in_(("partial", "diary")))
        .values(status="complete")
    )
