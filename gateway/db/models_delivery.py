"""Tables added by the delivery side (ERP forwarding, partner delivery):
``delivery_attempts``, one row per try to hand something over.

Kept apart from :mod:`gateway.db.models` so the forwarding code can grow its own
tables without editing the core schema module; it shares the same ``Base`` and is
created by migration 0002. Never store a secret or a whole payload here: the
answer of the far side is truncated to :data:`MAX_ANSWER` characters.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import ID, SERIAL_ID, Base

MAX_ANSWER = 2000


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ID, ForeignKey("messages.id", ondelete="CASCADE"))
    document_id: Mapped[str | None] = mapped_column(ID)  # ERP deliveries
    outbox_id: Mapped[str | None] = mapped_column(ID)  # partner deliveries
    target: Mapped[str] = mapped_column(String(16))  # erp | partner
    at: Mapped[datetime]
    # delivered | retry | dead (given up or refused for good) | confirmed (feed mode: the
    # ERP confirmed the document; duration_ms is from the document stored to then)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no HTTP answer (timeout, refused)
    error: Mapped[str | None] = mapped_column(Text)  # the far side's answer or our error, truncated
    duration_ms: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_delivery_attempts_message", "message_id", "id"),
        Index("ix_delivery_attempts_document", "document_id"),
        Index("ix_delivery_attempts_outbox", "outbox_id"),
    )
