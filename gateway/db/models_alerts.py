"""Tables of the alerts (gateway.alerts, migration 0007).

- ``alert_events``: one row per event (an exception opened or closed, a dead letter,
  a certificate expiring, a partner gone silent), its ``event_key`` unique: the
  idempotency key a receiver sees as ``webhook-id``, so an event is recorded once
  however often it is noticed. Written in the transaction that makes the event
  (an order exception) or by the watch (the others), so a crash loses none.
- ``alert_deliveries``: one row per event and ``[[alerts]]`` target (unique), with
  its retry state. Never a secret here; the receiver's answer is truncated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import ID, Base


class AlertEventRow(Base):
    __tablename__ = "alert_events"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    partner_id: Mapped[str | None] = mapped_column(String(100))
    po_number: Mapped[str | None] = mapped_column(String(80))
    correlation_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    dispatched_at: Mapped[datetime | None]  # fanned out to the targets configured then

    __table_args__ = (
        UniqueConstraint("event_key", name="uq_alert_events_key"),
        Index("ix_alert_events_dispatch", "dispatched_at", "id"),
        Index("ix_alert_events_at", "at"),
    )


class AlertDelivery(Base):
    __tablename__ = "alert_deliveries"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(ID, ForeignKey("alert_events.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # gateway.domain.states.AlertStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    first_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("event_id", "target", name="uq_alert_deliveries_event_target"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    )
