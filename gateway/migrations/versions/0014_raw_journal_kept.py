"""Small payloads kept in the database for good (decision 0025): ``raw_journal.kept``
marks a row that *is* the payload's copy (no file is written for it), and an index on
``sha256`` serves the readers that look a payload up by its hash (translation,
downloads, replay, retention); a partial index holds only the rows to replay.

New rows are kept (the server default, so the accept statements name no new column).
The rows already there when this runs are journal rows of decision 0018 whose files
may not be synced (a database upgraded after a crash): they are marked ``kept =
false``, and the next start replays them to files and deletes them as before.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added with "false" so every row already there is one to replay to its file, then
    # the default switched to "true" for the rows the intake adds from now on.
    with op.batch_alter_table("raw_journal") as batch:
        batch.add_column(sa.Column("kept", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("raw_journal") as batch:
        batch.alter_column("kept", existing_type=sa.Boolean(), server_default=sa.true())
    op.create_index("ix_raw_journal_sha256", "raw_journal", ["sha256"])
    op.create_index(
        "ix_raw_journal_replay",
        "raw_journal",
        ["id"],
        sqlite_where=sa.text("kept = 0"),
        postgresql_where=sa.text("kept = false"),
    )


def downgrade() -> None:
    # Kept rows have no file: a downgrade must replay them first (not automatic).
    op.drop_index("ix_raw_journal_replay", table_name="raw_journal")
    op.drop_index("ix_raw_journal_sha256", table_name="raw_journal")
    with op.batch_alter_table("raw_journal") as batch:
        batch.drop_column("kept")
