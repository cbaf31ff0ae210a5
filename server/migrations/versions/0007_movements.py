"""a session's movement kept as a skeleton for the therapist's replay, and
the patient's consent to it

Revision ID: 0007
Revises: 0006

`movements`: per session and exercise, thinned, compressed image landmarks
(`server/movement.py`), never video. `sessions.movement_consent`: whether the
patient allowed it for that session (true for new sessions unless declined;
sessions stored before have no movement kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("movement_consent", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))  # fmt: skip
    op.create_table(
        "movements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.Integer(),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("exercise_id", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("session_id", "exercise_id"),
    )  # fmt: skip
    op.create_index("ix_movements_session_id", "movements", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_movements_session_id", "movements")
    op.drop_table("movements")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("movement_consent")
