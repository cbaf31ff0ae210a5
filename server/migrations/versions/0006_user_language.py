"""each user's language: of their pages and spoken cues

Revision ID: 0006
Revises: 0005

`users.language`: a code with a catalogue in server/locales ("en", "es");
every existing user gets English, as new users do.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(16), nullable=False, server_default="en"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
