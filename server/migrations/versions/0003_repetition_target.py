"""repetitions keep the target they were judged against; sets their share of it

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repetitions") as batch:
        batch.add_column(sa.Column("target_rom_deg", sa.Float(), nullable=True))
    with op.batch_alter_table("set_summaries") as batch:
        batch.add_column(sa.Column("mean_target_share", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("set_summaries") as batch:
        batch.drop_column("mean_target_share")
    with op.batch_alter_table("repetitions") as batch:
        batch.drop_column("target_rom_deg")
