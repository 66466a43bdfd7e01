"""The ports: what the gateway's core needs from the world, as protocols.

    ErpSink           translated documents -> the ERP (webhook, feed)
    PartnerTransport  an outbox item -> one partner (REST, mailbox, later AS2, SFTP)
    BlobStore         raw payloads by sha256 (gateway.blobs.Blobs: rows and files)
    Clock             now, timezone-aware UTC

Adapters implement them (gateway.erp, gateway.transports, gateway.blobs); the
composition root (gateway.bootstrap) picks and wires them; the runner and the
pipeline only ever see these names. Tests swap an adapter for a small real one
(a fake ERP server, a partner's server), never a patch of our own code.

This module holds types only: no I/O, no imports of adapters.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

# --------------------------------------------------------------------------- clock


class Clock(Protocol):
    def __call__(self) -> datetime: ...


# --------------------------------------------------------------------------- ERP


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """What the ERP side receives for one stored document."""

    id: str
    message_id: str
    seq: int
    partner_id: str | None
    kind: str
    business_number: str | None
    idempotency_key: str  # the same on every retry and replay: the ERP dedupes on it
    canonical: dict[str, Any]
    set_control: str | None = None
    group_control: str | None = None
    interchange_control: str | None = None
    # Set by the pipeline for a document it stored in the step that hands it over
    # (never handed over before): a sink need not look up its delivery history.
    first_attempt: bool = False
    received_at: datetime | None = None  # the message's, with first_attempt


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    transient: bool = True  # when not ok: retry later (True) or dead-letter the document (False)
    detail: str = ""
    # When transient: the sink's own delay (backoff, Retry-After); the sink then owns
    # the give-up decision and the pipeline's max_attempts does not apply.
    retry_after: float | None = None
    # When ok: the document waits for the ERP to confirm it (feed mode). It becomes
    # "available"; gateway.erp.confirm_documents later makes it (and the message) delivered.
    parked: bool = False
    # A ``delivery_attempts`` row (column -> value) the pipeline inserts in the same
    # transaction that records the outcome.
    attempt: dict[str, Any] | None = None


@runtime_checkable
class ErpSink(Protocol):
    """Where translated documents go. Must be idempotent on ``idempotency_key``:
    after a crash a document may be handed over again.

    ``deliver_batch`` gets one list per message, each message's documents in order:
    deliver them in that order, stop at a message's first transient failure (its
    results end there; a permanent refusal carries on with the next document), and
    leave the recording to the pipeline (``attempt``)."""

    async def deliver(self, document: DocumentRecord) -> DeliveryResult: ...

    async def deliver_batch(self, messages: list[list[DocumentRecord]]) -> list[list[DeliveryResult]]: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- partners


class SendOutcome(enum.StrEnum):
    SENT = "sent"  # the partner (or its drop box) has it
    TRANSIENT = "transient"  # try again later (network, 5xx, 429, a full disk on their side)
    PERMANENT = "permanent"  # never going to work as configured (4xx, refused key): dead letter


@dataclass(frozen=True, slots=True)
class OutboundItem:
    """One thing to send to a partner: our ack or one of our documents, as X12 text."""

    id: str  # outbox id: the partner's idempotency key for a re-delivery
    partner_id: str
    kind: str  # TA1 | 997 | 999 | 855 | 856 | 810 ...
    payload: bytes
    interchange_control: int | None
    message_id: str | None
    attempts: int  # including this one
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    detail: str = ""
    retry_after: float | None = None  # the partner's own delay (Retry-After)
    status_code: int | None = None  # the protocol's answer code, when it has one
    transport_id: str | None = None  # e.g. the AS2 Message-ID or the remote file name
    duration_ms: float = 0.0
    # Evidence for the message's timeline, whatever the outcome: (state, detail) pairs
    # the sender records as message events (e.g. AS2 ``mdn_received``).
    events: tuple[tuple[str, dict[str, Any]], ...] = ()


class PartnerTransport(Protocol):
    """Sends outbox items to partners over one channel.

    ``push`` is False for a channel where the partner collects (mailbox, our hosted
    SFTP ``/outbound`` when files are placed at render time): the sender never
    claims those items; the collecting side marks them sent."""

    channel: ClassVar[str]
    push: ClassVar[bool]

    async def send(self, item: OutboundItem, partner: Any) -> SendResult: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- blobs


@dataclass(frozen=True, slots=True)
class BlobRef:
    sha256: str
    size: int


class BlobStore(Protocol):
    """Inbound raw payloads, content-addressed, wherever they are kept: small ones as
    database rows, large ones as raw store files (gateway.blobs, decision 0025)."""

    async def read(self, sha256: str) -> bytes | None: ...

    async def exists(self, sha256: str) -> bool: ...

    async def locate(self, sha256: str) -> bytes | Path | None: ...

    async def read_rows(self, shas: Iterable[str]) -> dict[str, bytes]: ...

    def open_file(self, sha256: str) -> BinaryIO: ...


def partner_transports(transports: Mapping[str, PartnerTransport]) -> dict[str, PartnerTransport]:
    """A registry keyed by channel, checked: one transport per channel name."""
    registry: dict[str, PartnerTransport] = {}
    for name, transport in transports.items():
        if name != transport.channel:
            raise ValueError(
                f"transport {type(transport).__name__} is for {transport.channel!r}, not {name!r}"
            )
        registry[name] = transport
    return registry
