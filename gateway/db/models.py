"""The tables of the gateway, as SQLAlchemy 2 declarative models.

- ``messages``: one row per thing received or sent (an inbound X12 file, a posted
  canonical document, later an outbound interchange), with its current status.
- ``message_events``: the timeline of each message, one row per transition.
- ``documents``: one canonical document per transaction set, with the idempotency
  key the ERP sees (stable across retries and replays).
- ``interchanges_seen``: sender + ISA13 -> first message, for duplicate detection.
- ``jobs``: the work queue the pipeline workers claim from.
- ``control_numbers``: last control number used per partner and kind.
- ``outbox``: items waiting for delivery to a partner (acknowledgments, documents).

Statuses are plain strings (see :mod:`gateway.pipeline` for their meaning) so a new
state never needs a schema migration. Times are stored in UTC and always come back
timezone-aware. Changing a table here needs a migration in ``gateway/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ID = String(26)
# A serial row id: 64-bit on PostgreSQL (a 32-bit serial runs out after 2^31 rows, about
# 430 million messages at five events each: migration 0015); exactly INTEGER on SQLite,
# where INTEGER PRIMARY KEY is the 64-bit rowid (another type name is not its alias).
SERIAL_ID = BigInteger().with_variant(Integer(), "sqlite")
# messages.transport_id and idempotency_key: VARCHAR(255). PostgreSQL refuses a longer
# value (and any NUL) where SQLite stores it, so a transport checks its identifiers
# with ``storable_identifier`` before they reach a batch.
IDENTIFIER_CHARS = 255


def storable_identifier(value: str | None) -> bool:
    """Whether ``value`` fits messages.transport_id / idempotency_key on every database
    (a lone surrogate, which no driver encodes, failed its whole batch too)."""
    if value is None:
        return True
    if len(value) > IDENTIFIER_CHARS or "\x00" in value:
        return False
    try:
        value.isascii() or value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and returned timezone-aware on every backend
    (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    partner_id: Mapped[str | None] = mapped_column(String(100), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # rest | as2 | sftp | api
    # request id, AS2 Message-ID, file name
    transport_id: Mapped[str | None] = mapped_column(String(IDENTIFIER_CHARS))
    idempotency_key: Mapped[str | None] = mapped_column(String(IDENTIFIER_CHARS))
    kind: Mapped[str] = mapped_column(String(32))  # "x12" | "canonical"
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    raw_sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_size: Mapped[int] = mapped_column(BigInteger)
    interchange_sender: Mapped[str | None] = mapped_column(String(64))  # "ZZ/ACME" of the first ISA
    interchange_control: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]

    __table_args__ = (
        # A retried request with the same key finds the first message. NULL keys never clash.
        UniqueConstraint("partner_id", "channel", "idempotency_key", name="uq_messages_idempotency"),
        Index("ix_messages_transport_id", "transport_id"),  # 0006: the console's search box
        # 0006: per partner traffic, error rate and the 14-day chart, from the index alone
        Index("ix_messages_partner_received", "partner_id", "received_at", "status"),
        Index("ix_messages_interchange_control", "interchange_control"),  # 0006: search by ISA13
        Index("ix_messages_status_id", "status", "id"),  # 0006: a status filter pages in id order
    )


class MessageEvent(Base):
    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ID, ForeignKey("messages.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_message_events_message", "message_id", "id"),)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    message_id: Mapped[str] = mapped_column(ID, ForeignKey("messages.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # order of the set inside the message, from 1
    partner_id: Mapped[str | None] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(3), default="in")
    kind: Mapped[str] = mapped_column(String(40))  # canonical kind, e.g. purchase_order
    set_id: Mapped[str | None] = mapped_column(String(6))  # 850, 856...
    set_control: Mapped[str | None] = mapped_column(String(16))
    group_control: Mapped[str | None] = mapped_column(String(16))
    interchange_control: Mapped[str | None] = mapped_column(String(16))
    business_number: Mapped[str | None] = mapped_column(String(80), index=True)
    canonical: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("message_id", "seq", name="uq_documents_message_seq"),
        Index("ix_documents_status_id", "status", "id"),  # 0002: the feed
        Index("ix_documents_set_control", "set_control"),  # 0006: search by ST02
    )


class InterchangeSeen(Base):
    __tablename__ = "interchanges_seen"

    partner_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), primary_key=True)  # "ZZ/ACME"
    control_number: Mapped[str] = mapped_column(String(16), primary_key=True)  # ISA13
    first_message_id: Mapped[str] = mapped_column(ID)
    seen_at: Mapped[datetime]


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ID, ForeignKey("messages.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))  # translate | deliver | acknowledge | ...
    state: Mapped[str] = mapped_column(String(16))  # ready | running | done | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # 0008: how far a running step is (translate: sets done / sets in the payload); gateway.progress
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_jobs_claim", "state", "next_attempt_at"),
        Index("ix_jobs_message", "message_id"),
        Index("ix_jobs_locked_by", "locked_by"),  # 0004: lease renewal and release per instance
    )


class ControlNumber(Base):
    __tablename__ = "control_numbers"

    partner_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # interchange | group | set
    last_value: Mapped[int] = mapped_column(BigInteger)


class OutboxItem(Base):
    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(100), index=True)
    message_id: Mapped[str | None] = mapped_column(ID, ForeignKey("messages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # TA1 | 997 | 999 | 855 | 856 | 810 ...
    channel: Mapped[str] = mapped_column(String(16))  # the partner's delivery channel
    payload: Mapped[str] = mapped_column(Text)
    interchange_control: Mapped[int | None] = mapped_column(BigInteger)
    # held: waits for the source message to finish; pending: ready to send; sent; failed
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(64))  # 0004: the instance sending it
    # 0009: the MDN of an AS2 send (gateway.domain.mdn): pending | processed | error
    mdn_status: Mapped[str | None] = mapped_column(String(16))
    mdn_at: Mapped[datetime | None]
    mdn_detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_partner_status", "partner_id", "status", "id"),  # 0002: the mailbox
        Index("ix_outbox_message", "message_id"),  # 0003: a message's acks, retention
        Index("ix_outbox_mdn", "mdn_status", "sent_at"),  # 0009: the messages API's mdn= filter
    )


class Instance(Base):
    """A running gateway process (serve or worker) and its heartbeat (0004)."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # serve | worker | cli
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class Schedule(Base):
    """Periodic work run by one instance at a time under a lease (0004)."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_run_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class DocumentKey(Base):
    """A business key a document refers to (0005): PO number, shipment id, invoice
    number, bill of lading, tracking number, SSCC, control numbers, transport id.
    Per partner: two partners may use the same PO number (gateway.orders)."""

    __tablename__ = "document_keys"

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ID, ForeignKey("documents.id", ondelete="CASCADE"))
    partner_id: Mapped[str] = mapped_column(String(100))
    key_kind: Mapped[str] = mapped_column(String(16))  # po | shipment | invoice | bol | tracking | sscc | ...
    value: Mapped[str] = mapped_column(String(80))

    __table_args__ = (
        Index("ix_document_keys_lookup", "partner_id", "key_kind", "value"),
        Index("ix_document_keys_document", "document_id"),
        Index("ix_document_keys_value", "value"),  # 0006: a search that does not name the partner
    )


class Order(Base):
    """One purchase order of one partner, its derived state (0005, gateway.orders)."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(100))
    po_number: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(24))
    open_exceptions: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)
    next_check_at: Mapped[datetime | None]  # when a deadline may open an exception (the periodic check)
    # 0007: the milestones (gateway.domain.orders.milestones), for the business metrics
    ordered_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    invoiced_at: Mapped[datetime | None]
    order_to_asn_seconds: Mapped[float | None] = mapped_column(Float)
    asn_to_invoice_seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("partner_id", "po_number", name="uq_orders_partner_po"),
        Index("ix_orders_state", "state", "id"),
        Index("ix_orders_next_check", "next_check_at"),
    )


class OrderExceptionRow(Base):
    """A reconciliation exception of an order, open until its gap closes (0005)."""

    __tablename__ = "order_exceptions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(100))
    po_number: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))  # a line, a document; "" for the whole order
    since: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    documents: Mapped[list[str]] = mapped_column(JSON)
    detail: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_order_exceptions_order", "partner_id", "po_number"),
        Index("ix_order_exceptions_open", "closed_at", "id"),
    )


class JournaledPayload(Base):
    """Small raw payloads written with the messages that refer to them (0011). A
    ``kept`` row (0014, the default) is the payload's only copy, for good: no file is
    written (gateway.blobs, decision 0025). A row with ``kept`` false is a journal row
    of decision 0018 from before 0014: the durable copy of a file that may not be
    synced, replayed to its file at start (gateway.raw_journal). ``store`` is the raw
    directory's identity, ``writer`` the process (0012)."""

    __tablename__ = "raw_journal"
    __table_args__ = (
        # Only the rows to replay (none in steady state): counted by the metrics, found
        # at start; kept rows never enter it, so an accept does not pay for it.
        Index(
            "ix_raw_journal_replay",
            "id",
            sqlite_where=text("kept = 0"),
            postgresql_where=text("kept = false"),
        ),
    )

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    store: Mapped[str | None] = mapped_column(String(32), nullable=True)
    writer: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kept: Mapped[bool] = mapped_column(server_default=true())
