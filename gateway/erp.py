"""ERP forwarding: the two :class:`~gateway.ports.ErpSink` modes and the retry policy.

``[erp] mode = "feed"`` (the default, so a fresh install works with no ERP):
:class:`FeedParkingSink` parks each document as ``available``; the ERP pulls
``GET /api/v1/feed`` and confirms with ``POST /api/v1/feed/ack``;
:func:`confirm_documents` then marks them ``delivered`` and, once every document of
a message is, moves the message to ``delivered`` and queues its acknowledgments.

``[erp] mode = "webhook"``: :class:`WebhookSink` POSTs the canonical JSON to
``[erp].url`` with

- ``Idempotency-Key``: the document's stable key (same on every retry and replay),
- ``X-Correlation-ID``: the order's correlation id (the message id for a document
  without a PO number); ``X-Gateway-Message-Id``; ``X-Gateway-Document-Id``,
- ``X-Gateway-Timestamp`` (Unix seconds) and ``X-Gateway-Signature:
  sha256=<hex HMAC-SHA256 of "<timestamp>." + body with [erp].secret>``,
- the same signature in the Standard Webhooks form (decision 0007):
  ``webhook-id`` (the idempotency key), ``webhook-timestamp``, ``webhook-signature``;
- with ``[erp].token``, ``Authorization: Bearer <token>`` as well.

2xx is delivered. 5xx, 429 and network errors/timeouts are retried with
exponential backoff and full jitter (never sooner than ``Retry-After``, seconds
or HTTP date) until ``max_attempts`` or ``max_age_hours``, then the document is
dead-lettered and its message stops there (later documents are not sent; the
message ends ``failed``, or ``partly_delivered`` if earlier ones were delivered).
Any other 4xx dead-letters that one document at once with the ERP's answer
(status and truncated body) and the message's next documents are still posted,
in order; the message then ends ``partly_delivered`` (``failed`` if none was
taken). Either way :func:`dead_letters` lists the document and a replay sends the
not-yet-delivered documents again under their same keys. Every try is a
``delivery_attempts`` row. Feed mode has no refusal: the ERP only confirms.

This module never decides a message's translation and never talks to partners.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import aiohttp
import orjson
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import ErpSettings
from gateway.db import jobs
from gateway.db.engine import Database
from gateway.db.models import Document, Message, MessageEvent, OutboxItem, utcnow
from gateway.db.models_delivery import MAX_ANSWER, DeliveryAttempt
from gateway.domain import alerts as webhooks
from gateway.domain.states import DEAD_LETTER_STATES, INBOUND, DocumentStatus, InboundStatus
from gateway.metrics import Metrics
from gateway.ports import DeliveryResult, DocumentRecord, ErpSink
from gateway.runner import Backoff

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gateway-Signature"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"
RETRYABLE_STATUS = frozenset({408, 425, 429})


# --------------------------------------------------------------------------- retry policy


# One retry policy for every leased kind of work (gateway.runner.Backoff).
RetryPolicy = Backoff


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Gateway-Signature value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What the ERP does (constant-time); it should also refuse stale timestamps."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def correlation_of(document: DocumentRecord) -> str:
    """The order's correlation id when the document names a PO (gateway.domain.alerts),
    else its message id."""
    return webhooks.correlation_of(
        document.partner_id, document.canonical.get("document") or {}, document.message_id
    )


def truncate(text: str, limit: int = MAX_ANSWER) -> str:
    """The far side's answer (or an error) as recorded: at most ``limit`` characters,
    a NUL spelled ``\\x00`` (PostgreSQL stores none in text: the whole delivery
    record would be refused, failing every message of its batch)."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- sinks


class OrderedSink:
    """A sink that hands documents over one at a time: ``deliver_batch`` runs the
    messages side by side, each message's documents in order. A refused document
    (not ok, not transient) does not stop its message; a transient failure does.
    Subclasses write ``deliver`` (and ``close`` when they hold resources)."""

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        raise NotImplementedError

    async def deliver_batch(self, messages: list[list[DocumentRecord]]) -> list[list[DeliveryResult]]:
        return list(await asyncio.gather(*(self._in_order(docs) for docs in messages)))

    async def _in_order(self, documents: list[DocumentRecord]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        for record in documents:
            result = await self.deliver(record)
            results.append(result)
            if not result.ok and result.transient:
                break
        return results

    async def close(self) -> None:
        return None


class FeedSink(OrderedSink):
    """Every document is simply available to the ERP's feed reader, delivered at once
    (tests and embedding; the service's feed mode parks documents instead)."""

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        return DeliveryResult(ok=True, detail="available in the ERP feed")


class FeedParkingSink(OrderedSink):
    """Feed mode: documents wait, ``available``, until the ERP confirms them."""

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        return DeliveryResult(ok=True, parked=True, detail="available in the ERP feed")


class WebhookSink:
    """Webhook mode (see the module doc). One HTTP client per process."""

    def __init__(
        self,
        settings: ErpSettings,
        db: Database,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.url:
            raise ValueError('[erp] url is required when mode = "webhook"')
        self.url = settings.url
        self.secret = settings.secret.get_secret_value() if settings.secret else ""
        self.token = settings.token.get_secret_value() if settings.token else ""
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self.policy = RetryPolicy(
            settings.max_attempts,
            timedelta(hours=settings.max_age_hours),
            settings.retry_base_seconds,
            settings.retry_max_seconds,
        )
        self.db = db
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self._http

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        """One document, its attempt recorded in a transaction of its own."""
        history = await self._histories([document])
        result, _ = await self._post(document, *history[document.id])
        if result.attempt is not None:
            async with self.db.begin() as session:
                await session.execute(insert(DeliveryAttempt).values(**result.attempt))
        return result

    async def deliver_batch(self, messages: list[list[DocumentRecord]]) -> list[list[DeliveryResult]]:
        """Several messages' documents: one read for all their histories, the messages
        posted side by side over the shared connection pool, each message's documents
        in order. A document refused for good (4xx) does not stop its message: the
        next documents are posted. A transient failure stops the message there (its
        results end with it: retried later from that document), and so does a
        document given up on after retries (the ERP is unwell, not the document).
        The caller records ``attempt`` rows."""
        histories = await self._histories([d for documents in messages for d in documents])

        async def one_message(documents: list[DocumentRecord]) -> list[DeliveryResult]:
            results: list[DeliveryResult] = []
            for document in documents:
                result, stop = await self._post(document, *histories[document.id])
                results.append(result)
                if stop:
                    break
            return results

        return list(await asyncio.gather(*(one_message(documents) for documents in messages)))

    async def _post(
        self, document: DocumentRecord, attempt: int, first_at: datetime | None, received_at: datetime | None
    ) -> tuple[DeliveryResult, bool]:
        """Post one document: its result, and whether its message must stop there
        (a transient failure, or retries given up); a refusal does not stop it."""
        body = orjson.dumps(document.canonical)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": document.idempotency_key,
            "X-Correlation-ID": correlation_of(document),
            "X-Gateway-Message-Id": document.message_id,
            "X-Gateway-Document-Id": document.id,
            "X-Gateway-Kind": document.kind,
            TIMESTAMP_HEADER: timestamp,
            # Standard Webhooks (decision 0007), beside the older signature header
            webhooks.ID_HEADER: document.idempotency_key,
            webhooks.TIMESTAMP_HEADER: timestamp,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
            headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(
                self.secret, document.idempotency_key, int(timestamp), body
            )
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        status: int | None = None
        answer = ""
        retry_after: float | None = None
        try:
            async with self._client().post(
                self.url, data=body, headers=headers, timeout=self.timeout
            ) as resp:
                status = resp.status
                answer = truncate(await resp.text(errors="replace"))
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), self.clock())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            answer = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = (time.perf_counter() - started) * 1000
        now = self.clock()
        first_at = first_at or now

        def attempt_row(outcome: str, error: str | None) -> dict[str, Any]:
            return _attempt_row(document, now, outcome, status, error, duration_ms)

        if status is not None and 200 <= status < 300:
            if self.metrics is not None and received_at is not None:
                self.metrics.observe_latency((now - received_at).total_seconds())
            return DeliveryResult(
                ok=True, detail=f"ERP answered {status}", attempt=attempt_row("delivered", None)
            ), False

        what = f"HTTP {status}: {answer}" if status is not None else answer
        if self.metrics is not None:
            self.metrics.erp_failure("http_" + str(status) if status is not None else "network")
        retryable = status is None or status >= 500 or status in RETRYABLE_STATUS
        if retryable and not self.policy.gives_up(attempt, first_at, now):
            delay = self.policy.delay(attempt, retry_after, self.rng)
            return DeliveryResult(
                ok=False,
                transient=True,
                retry_after=delay,
                detail=truncate(what),
                attempt=attempt_row("retry", what),
            ), True
        if retryable:
            what = f"gave up after {attempt} attempt(s) over {now - first_at}: {what}"
        if self.metrics is not None:
            self.metrics.erp_dead_letter()
        dead = DeliveryResult(
            ok=False, transient=False, detail=truncate(what), attempt=attempt_row("dead", what)
        )
        return dead, retryable

    async def _histories(
        self, documents: list[DocumentRecord]
    ) -> dict[str, tuple[int, datetime | None, datetime | None]]:
        """Per document id: (number of this attempt, time of the first attempt since
        the last dead letter, when the message was received). A replay starts a fresh
        count. One read for all of them."""
        result: dict[str, tuple[int, datetime | None, datetime | None]] = {}
        if not documents:
            return result
        looked_up = [d for d in documents if not d.first_attempt]  # the others have no history
        rows: list[Any] = []
        received: dict[str, datetime] = {d.message_id: d.received_at for d in documents if d.received_at}
        if looked_up:
            # SQLite: both reads in one hop to the writer thread (gateway.db.writer)
            rows, read = await self.db.lean_read(
                partial(_read_histories, [d.id for d in looked_up], sorted({d.message_id for d in looked_up}))
            )
            received.update(read)
        runs: dict[str, list[datetime]] = {}
        for document_id, outcome, at in rows:
            if document_id is None:
                continue
            run = runs.setdefault(document_id, [])
            if outcome in ("dead", "delivered", CONFIRMED):
                run.clear()
            else:
                run.append(at)
        for d in documents:
            run = runs.get(d.id, [])
            result[d.id] = (len(run) + 1, (run[0] if run else None), received.get(d.message_id))
        return result


async def _read_histories(
    document_ids: list[str], message_ids: list[str], conn: Any
) -> tuple[list[Any], dict[str, datetime]]:
    """The delivery attempts of ``document_ids`` in order, and when each message was received."""
    attempts = (
        await conn.execute(
            select(DeliveryAttempt.document_id, DeliveryAttempt.outcome, DeliveryAttempt.at)
            .where(DeliveryAttempt.document_id.in_(document_ids))
            .order_by(DeliveryAttempt.id)
        )
    ).all()
    received = dict(
        (await conn.execute(select(Message.id, Message.received_at).where(Message.id.in_(message_ids)))).all()
    )
    return attempts, received


def _attempt_row(
    document: DocumentRecord,
    now: datetime,
    outcome: str,
    status: int | None,
    error: str | None,
    duration_ms: float,
) -> dict[str, Any]:
    """A ``delivery_attempts`` row for one try at ``document``."""
    return {
        "message_id": document.message_id,
        "document_id": document.id,
        "target": "erp",
        "at": now,
        "outcome": outcome,
        "status_code": status,
        "error": truncate(error) if error else None,
        "duration_ms": round(duration_ms, 3),
    }


def build_sink(
    settings: ErpSettings, db: Database, *, metrics: Metrics | None, clock: Callable[[], datetime]
) -> ErpSink:
    if settings.mode == "webhook":
        return WebhookSink(settings, db, metrics=metrics, clock=clock)
    return FeedParkingSink()


# --------------------------------------------------------------------------- feed


@dataclass(frozen=True, slots=True)
class Confirmed:
    delivered: list[str]  # document ids that became delivered now
    unknown: list[str]  # ids that are not documents waiting in the feed (already confirmed, or never)
    messages_delivered: list[str]


CONFIRMED = "confirmed"  # a delivery attempt: the ERP confirmed a feed document


async def confirm_documents(
    db: Database, ids: Iterable[str], *, now: datetime, metrics: Metrics | None = None
) -> Confirmed:
    """The ERP confirmed these feed documents: mark them delivered; a message whose
    documents are all delivered becomes ``delivered`` and its acks are queued. Each
    confirmation is a delivery attempt with outcome ``confirmed`` whose duration is
    the feed's ERP latency: from the document stored to the ERP's confirmation (the
    dashboard's figure in feed mode)."""
    wanted = list(dict.fromkeys(ids))
    async with db.begin() as session:
        rows = (
            await session.execute(
                select(Document.id, Document.message_id, Document.created_at)
                .where(Document.id.in_(wanted), Document.status == "available", Document.direction == "in")
                .with_for_update()
            )
        ).all()
        found = {r.id for r in rows}
        if found:
            await session.execute(
                update(Document).where(Document.id.in_(found)).values(status="delivered", delivered_at=now)
            )
            await session.execute(
                insert(DeliveryAttempt),
                [
                    {
                        "message_id": r.message_id,
                        "document_id": r.id,
                        "target": "erp",
                        "at": now,
                        "outcome": CONFIRMED,
                        "status_code": None,
                        "error": None,
                        "duration_ms": max((now - r.created_at).total_seconds() * 1000, 0.0),
                    }
                    for r in rows
                ],
            )
        done: list[str] = []
        for message_id in sorted({r.message_id for r in rows}):
            if await _complete_message(session, message_id, now, metrics):
                done.append(message_id)
    return Confirmed(
        delivered=[i for i in wanted if i in found],
        unknown=[i for i in wanted if i not in found],
        messages_delivered=done,
    )


async def _complete_message(
    session: AsyncSession, message_id: str, now: datetime, metrics: Metrics | None
) -> bool:
    # Lock the message so two concurrent confirmations cannot both complete it.
    message = (
        await session.execute(select(Message).where(Message.id == message_id).with_for_update())
    ).scalar_one()
    waiting = (
        await session.execute(
            select(Document.id)
            .where(Document.message_id == message_id, Document.status != "delivered")
            .limit(1)
        )
    ).first()
    if waiting is not None or not INBOUND.allowed(message.status, InboundStatus.DELIVERED):
        return False
    message.status, message.updated_at = InboundStatus.DELIVERED, now
    session.add(MessageEvent(message_id=message_id, at=now, state="delivered", detail={"via": "feed"}))
    await jobs.enqueue(session, message_id, "acknowledge", now=now)
    if metrics is not None:
        metrics.observe_latency((now - message.received_at).total_seconds())
    return True


# --------------------------------------------------------------------------- dead letters


DEAD_LETTER_TYPES = ("erp_document", "partner_delivery")


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters a list shows (``GET /api/v1/dead-letters``, the console):
    ``type`` erp_document | partner_delivery; ``kind`` a transaction set (850, 856,
    810, 997...) or a canonical kind (order, shipment, invoice...); ``partner_id``; ``before``:
    only dead letters made before that time (the "older than N hours" filter)."""

    type: str | None = None
    kind: str | None = None
    partner_id: str | None = None
    before: datetime | None = None


async def dead_letters(
    db: Database, *, limit: int = 100, after: str | None = None, where: DeadLetterFilter | None = None
) -> list[dict[str, Any]]:
    """ERP documents given up on (their message ended ``failed`` or
    ``partly_delivered`` while delivering) and partner outbox items that failed,
    oldest first, as JSON-ready dicts; ``where`` narrows the list."""
    f = where or DeadLetterFilter()
    docs: list[Any] = []
    items: list[Any] = []
    async with db.read() as conn:
        if f.type in (None, "erp_document"):
            query = (
                select(Document)
                .join(Message, Message.id == Document.message_id)
                .where(
                    Document.direction == "in",
                    # not delivered, not cancelled (given up on by an operator): named, so
                    # the status index finds the few candidates (docs/performance.md)
                    Document.status.in_((DocumentStatus.PENDING, DocumentStatus.AVAILABLE)),
                    Document.last_error.is_not(None),
                    Message.status.in_(DEAD_LETTER_STATES),
                )
                .order_by(Document.id)
                .limit(limit)
            )
            if after:
                query = query.where(Document.id > after)
            if f.before:
                query = query.where(Document.created_at < f.before)
            if f.partner_id:
                query = query.where(Document.partner_id == f.partner_id)
            if f.kind:
                query = query.where(or_(Document.set_id == f.kind, Document.kind == f.kind))
            docs = list((await conn.execute(query)).all())
        if f.type in (None, "partner_delivery"):
            outbox_query = (
                select(OutboxItem).where(OutboxItem.status == "failed").order_by(OutboxItem.id).limit(limit)
            )
            if after:
                outbox_query = outbox_query.where(OutboxItem.id > after)
            if f.before:
                outbox_query = outbox_query.where(OutboxItem.created_at < f.before)
            if f.partner_id:
                outbox_query = outbox_query.where(OutboxItem.partner_id == f.partner_id)
            if f.kind:
                outbox_query = outbox_query.where(OutboxItem.kind == f.kind)
            items = list((await conn.execute(outbox_query)).all())
    result: list[dict[str, Any]] = [
        {
            "id": row.id,
            "type": "erp_document",
            "message_id": row.message_id,
            "partner_id": row.partner_id,
            "kind": row.kind,
            "set_id": row.set_id,
            "business_number": row.business_number,
            "idempotency_key": row.idempotency_key,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
        }
        for row in docs
    ]
    result += [
        {
            "id": row.id,
            "type": "partner_delivery",
            "message_id": row.message_id,
            "partner_id": row.partner_id,
            "kind": row.kind,
            "set_id": row.kind if row.kind.isdigit() else None,
            "business_number": None,
            "idempotency_key": row.id,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
        }
        for row in items
    ]
    result.sort(key=lambda item: item["id"])
    return result[:limit]
