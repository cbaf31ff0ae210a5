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


# Plain ALTER TABLE, not a batch: SQLite's batch copies the table and drops the
# old one, which would cascade to every row that refers to a user.
def upgrade() -> None:
    op.add_column(
        "users", sa.Column("language", sa.String(16), nullable=False, server_default="en")
    )


def downgrade() -> None:
    op.drop_column("users", "language")  # SQLite 3.35 or later
