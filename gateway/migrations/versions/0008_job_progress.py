"""Progress of a running step: ``jobs.progress_done`` and ``jobs.progress_total``
(for the translate step, sets translated and sets in the payload, NULL when not
counted). Written while a large message is being translated (gateway.progress)
and shown by ``GET /api/v1/messages/{id}``; never a status.

Revision ID: 0008
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("progress_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress_total", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("progress_total")
        batch.drop_column("progress_done")
