"""Alerts and business metrics (issue 11): ``alert_events`` (one row per event, its
idempotency key unique) and ``alert_deliveries`` (one row per event and webhook
target, with its retries), see gateway/db/models_alerts.py; each order's milestones
(first 850, 855, 856, 810 and the times between) for the metrics.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("partner_id", sa.String(100), nullable=True),
        sa.Column("po_number", sa.String(80), nullable=True),
        sa.Column("correlation_id", sa.String(40), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_key", name="uq_alert_events_key"),
    )
    op.create_index("ix_alert_events_dispatch", "alert_events", ["dispatched_at", "id"])
    op.create_index("ix_alert_events_at", "alert_events", ["at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column(
            "event_id", sa.String(26), sa.ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("event_id", "target", name="uq_alert_deliveries_event_target"),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])
    # the milestones of each order, for the business metrics (gateway.metrics)
    with op.batch_alter_table("orders") as batch:
        for name in ("ordered_at", "acknowledged_at", "shipped_at", "invoiced_at"):
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("order_to_asn_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("asn_to_invoice_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for name in (
            "ordered_at",
            "acknowledged_at",
            "shipped_at",
            "invoiced_at",
            "order_to_asn_seconds",
            "asn_to_invoice_seconds",
        ):
            batch.drop_column(name)
    op.drop_table("alert_deliveries")
    op.drop_table("alert_events")
