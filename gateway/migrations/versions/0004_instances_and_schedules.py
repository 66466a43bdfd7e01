"""Instances, leases the runner renews, and scheduled work.

- ``instances``: one row per running gateway process (``gateway serve`` or
  ``gateway worker``) with its heartbeat. Leases held by an instance whose heartbeat
  stopped are released at once by the others (gateway.runner), not after the lease.
- ``outbox.locked_by``: who holds a ``sending`` item, so its lease can be renewed
  while the send runs and released when its holder dies.
- ``schedules``: periodic work not tied to a message (retention, the overdue-ack
  check, later SFTP polls per partner), each run by one instance at a time under a
  lease.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(64), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("locked_by", sa.String(64), nullable=True))
    op.create_index("ix_jobs_locked_by", "jobs", ["locked_by"])


def downgrade() -> None:
    op.drop_index("ix_jobs_locked_by", table_name="jobs")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("locked_by")
    op.drop_table("schedules")
    op.drop_table("instances")
