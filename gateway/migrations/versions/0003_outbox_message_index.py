"""Index on outbox.message_id: the pipeline issues and releases a message's acks by
message id, retention deletes a message's outbox items, and deleting a message sets
its items' message_id to NULL; without it each of these scans the outbox.

The other child tables already have one led by message_id (message_events,
documents through uq_documents_message_seq, jobs, delivery_attempts).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_message", "outbox", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message", table_name="outbox")
