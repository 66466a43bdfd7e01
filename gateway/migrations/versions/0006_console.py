"""The operations console (issue 12): people who log in, their sessions, and the
audit log of what they did; two indexes the console's search box needs.

- ``users``: name, role (viewer | operator | admin), scrypt password hash, disabled.
- ``console_sessions``: one row per login, keyed by the SHA-256 of the cookie value
  (the value itself is never stored), with its CSRF token and expiry.
- ``audit_log``: who, when, action, target, outcome (and the client address).
- ``ix_document_keys_value`` and ``ix_messages_transport_id``: a search by a number
  or an AS2 Message-ID / file name without knowing the partner;
  ``ix_messages_partner_received`` (partner, received_at, status): per-partner
  traffic, error rate and the dashboard's 14-day chart read from the index alone;
  ``ix_messages_interchange_control``, ``ix_documents_set_control``: a search by
  ISA13 or ST02 is a lookup; ``ix_messages_status_id``: a status filter pages in id
  order without scanning the other statuses.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(26), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_document_keys_value", "document_keys", ["value"])
    op.create_index("ix_messages_transport_id", "messages", ["transport_id"])
    op.create_index("ix_messages_partner_received", "messages", ["partner_id", "received_at", "status"])
    op.create_index("ix_messages_interchange_control", "messages", ["interchange_control"])
    op.create_index("ix_messages_status_id", "messages", ["status", "id"])
    op.create_index("ix_documents_set_control", "documents", ["set_control"])


def downgrade() -> None:
    op.drop_index("ix_documents_set_control", "documents")
    op.drop_index("ix_messages_status_id", "messages")
    op.drop_index("ix_messages_interchange_control", "messages")
    op.drop_index("ix_messages_partner_received", "messages")
    op.drop_index("ix_messages_transport_id", "messages")
    op.drop_index("ix_document_keys_value", "document_keys")
    op.drop_table("audit_log")
    op.drop_table("console_sessions")
    op.drop_table("users")
