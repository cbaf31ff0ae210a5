"""alerts a therapist acknowledged

Revision ID: 0008
Revises: 0007

`alert_acks`: per patient, the ids of the alerts (`trends.Alert.id`: the kind
and its evidence) a therapist acknowledged, by whom and when.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_acks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(),
                  sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("alert_id", sa.String(120), nullable=False),
        sa.Column("by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("patient_id", "alert_id"),
    )  # fmt: skip
    op.create_index("ix_alert_acks_patient_id", "alert_acks", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_acks_patient_id", "alert_acks")
    op.drop_table("alert_acks")
