"""Whose each ``raw_journal`` row is: ``store``, the identity of the raw directory its
file was written to (``<raw_dir>/store-id``), and ``writer``, the process that wrote
it. A checkpoint deletes only its own process's rows, and a start replays only rows
of its own raw store (or rows from before this column, NULL): a process must never
delete the only durable copy of a payload whose file it cannot see (decision 0018).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_journal") as batch:
        batch.add_column(sa.Column("store", sa.String(32), nullable=True))
        batch.add_column(sa.Column("writer", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_journal") as batch:
        batch.drop_column("writer")
        batch.drop_column("store")
