"""Initial schema: messages, timeline, documents, duplicate register, jobs,
control numbers and outbox.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "control_numbers",
        sa.Column("partner_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "kind"),
    )
    op.create_table(
        "interchanges_seen",
        sa.Column("partner_id", sa.String(length=100), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("control_number", sa.String(length=16), nullable=False),
        sa.Column("first_message_id", sa.String(length=26), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "sender", "control_number"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("partner_id", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("transport_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_size", sa.BigInteger(), nullable=False),
        sa.Column("interchange_sender", sa.String(length=64), nullable=True),
        sa.Column("interchange_control", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "channel", "idempotency_key", name="uq_messages_idempotency"),
    )
    op.create_index("ix_messages_partner_id", "messages", ["partner_id"])
    op.create_index("ix_messages_raw_sha256", "messages", ["raw_sha256"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_messages_status", "messages", ["status"])

    op.create_table(
        "documents",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=100), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("set_id", sa.String(length=6), nullable=True),
        sa.Column("set_control", sa.String(length=16), nullable=True),
        sa.Column("group_control", sa.String(length=16), nullable=True),
        sa.Column("interchange_control", sa.String(length=16), nullable=True),
        sa.Column("business_number", sa.String(length=80), nullable=True),
        sa.Column("canonical", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("message_id", "seq", name="uq_documents_message_seq"),
    )
    op.create_index("ix_documents_business_number", "documents", ["business_number"])
    op.create_index("ix_documents_created_at", "documents", ["created_at"])
    op.create_index("ix_documents_status", "documents", ["status"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["state", "next_attempt_at"])
    op.create_index("ix_jobs_message", "jobs", ["message_id"])

    op.create_table(
        "message_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_id", "id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("partner_id", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("interchange_control", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_partner_id", "outbox", ["partner_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_partner_id", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")

    op.drop_table("outbox")
    op.drop_index("ix_message_events_message", table_name="message_events")

    op.drop_table("message_events")
    op.drop_index("ix_jobs_message", table_name="jobs")
    op.drop_index("ix_jobs_claim", table_name="jobs")

    op.drop_table("jobs")
    op.drop_index("ix_documents_status", table_name="documents")
    op.drop_index("ix_documents_created_at", table_name="documents")
    op.drop_index("ix_documents_business_number", table_name="documents")

    op.drop_table("documents")
    op.drop_index("ix_messages_status", table_name="messages")
    op.drop_index("ix_messages_received_at", table_name="messages")
    op.drop_index("ix_messages_raw_sha256", table_name="messages")
    op.drop_index("ix_messages_partner_id", table_name="messages")

    op.drop_table("messages")
    op.drop_table("interchanges_seen")
    op.drop_table("control_numbers")
