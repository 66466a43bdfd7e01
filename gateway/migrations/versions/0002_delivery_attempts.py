"""Delivery attempts: every try to hand a document to the ERP or an outbox item
to a partner, with the answer and how long it took.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("document_id", sa.String(length=26), nullable=True),
        sa.Column("outbox_id", sa.String(length=26), nullable=True),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempts_message", "delivery_attempts", ["message_id", "id"])
    op.create_index("ix_delivery_attempts_document", "delivery_attempts", ["document_id"])
    op.create_index("ix_delivery_attempts_outbox", "delivery_attempts", ["outbox_id"])
    # The mailbox lists a partner's pending items; the feed lists available documents.
    op.create_index("ix_outbox_partner_status", "outbox", ["partner_id", "status", "id"])
    op.create_index("ix_documents_status_id", "documents", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_documents_status_id", table_name="documents")
    op.drop_index("ix_outbox_partner_status", table_name="outbox")
    op.drop_index("ix_delivery_attempts_outbox", table_name="delivery_attempts")
    op.drop_index("ix_delivery_attempts_document", table_name="delivery_attempts")
    op.drop_index("ix_delivery_attempts_message", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
