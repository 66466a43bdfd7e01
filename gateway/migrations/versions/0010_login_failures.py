"""The console's login rate limit shared by every process on one database:
``login_failures``, one row per failed login (the user name as typed, lower-cased;
the client address; when). Each ``gateway serve`` counts the rows of the sliding
window (gateway.users), so several processes on one PostgreSQL, or one SQLite file,
allow no more failures than one. Rows older than the window are deleted as new ones
arrive; a successful login deletes its own name and address's rows.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_at", "login_failures")
    op.drop_index("ix_login_failures_client_at", "login_failures")
    op.drop_table("login_failures")
