"""The MDN status of what we sent over AS2: ``outbox.mdn_status`` (pending,
processed, error; NULL when no MDN was asked for or the channel has none),
``mdn_at`` (when the MDN was read) and ``mdn_detail`` (its disposition, or the error
text). ``overdue`` is not stored: it is a pending MDN older than
``[as2] mdn_overdue_minutes`` (gateway.domain.mdn). Indexed for the messages API's
``mdn=`` filter.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("mdn_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("mdn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("mdn_detail", sa.Text(), nullable=True))
    op.create_index("ix_outbox_mdn", "outbox", ["mdn_status", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_mdn", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("mdn_detail")
        batch.drop_column("mdn_at")
        batch.drop_column("mdn_status")
