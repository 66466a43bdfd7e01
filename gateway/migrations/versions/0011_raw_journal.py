"""The raw store's journal in the database: ``raw_journal``, one row per small raw
payload accepted (its SHA-256 and bytes), inserted in the transaction that commits
the message, so an accept batch is one durable commit instead of a journal sync
then a commit. Rows live until the raw store has synced the payloads' files (a few
seconds); a start replays the rows left by a crash (gateway.raw_journal, decision 0018).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_journal",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("raw_journal")
