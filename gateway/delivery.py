"""Partner delivery: moving outbox items (our acks, 855/856/810) to the partner.

``channel = "rest"``: :class:`PartnerDelivery` workers claim due items and POST the
X12 to the profile's ``delivery.url`` (``Content-Type: application/edi-x12``,
``Idempotency-Key: <outbox item id>`` so a partner can drop a re-delivery after a
crash). 2xx: sent. 5xx, 408/425/429 and network errors: retried with backoff and
jitter, honouring Retry-After, until ``[outbound] max_attempts`` / ``max_age_hours``;
then, like any other 4xx at once, the item is ``failed`` (a dead letter an
operator can replay).

``channel = "mailbox"``: nothing is pushed; the partner lists and confirms its
items through gateway.api.mailbox, which calls :func:`mark_sent`.

Claiming takes a lease (status ``sending``, ``next_attempt_at`` = lease end) with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes sharing a database never send
one item at the same time, and an item whose sender died is sent again after the
lease: at least once, with the Idempotency-Key for the partner to deduplicate.
Items that are ``held`` (acks waiting for their message) are never touched here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import OutboundSettings
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import Document, Message, MessageEvent, OutboxItem, utcnow
from gateway.db.models_delivery import DeliveryAttempt
from gateway.erp import RETRYABLE_STATUS, RetryPolicy, parse_retry_after, truncate
from gateway.metrics import Metrics

log = logging.getLogger(__name__)


async def mark_sent(session: AsyncSession, item_id: str, now: datetime, *, via: str) -> bool:
    """Record that outbox item ``item_id`` reached the partner; an outbound message
    becomes ``sent`` (waiting for the partner's 997/999). False if it was not pending."""
    result = await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status.in_(("pending", "sending")))
        .values(status="sent", sent_at=now, last_error=None)
        .returning(OutboxItem.message_id, OutboxItem.kind)
    )
    row = result.first()
    if row is None:
        return False
    message_id, kind = row
    if message_id is None:
        return True
    message = await session.get(Message, message_id)
    if message is not None and message.direction == "out" and message.status in ("queued", "failed"):
        message.status, message.updated_at, message.reason = "sent", now, None
        await session.execute(
            update(Document).where(Document.message_id == message_id).values(status="sent", delivered_at=now)
        )
        session.add(MessageEvent(message_id=message_id, at=now, state="sent", detail={"via": via, "outbox_id": item_id}))
    elif message is not None:
        session.add(
            MessageEvent(message_id=message_id, at=now, state="ack_sent", detail={"kind": kind, "via": via, "outbox_id": item_id})
        )
    return True


async def mark_failed(session: AsyncSession, item: Any, now: datetime, reason: str) -> None:
    await session.execute(
        update(OutboxItem).where(OutboxItem.id == item.id).values(status="failed", last_error=reason)
    )
    if item.message_id is None:
        return
    message = await session.get(Message, item.message_id)
    if message is not None and message.direction == "out":
        message.status, message.updated_at, message.reason = "failed", now, reason
        session.add(MessageEvent(message_id=message.id, at=now, state="failed", detail={"reason": reason, "outbox_id": item.id}))
    elif message is not None:
        session.add(
            MessageEvent(message_id=message.id, at=now, state="ack_delivery_failed", detail={"reason": reason, "outbox_id": item.id})
        )


async def requeue(db: Database, item_id: str, now: datetime) -> bool:
    """Replay a failed outbox item: pending again with a fresh attempt count."""
    async with db.begin() as session:
        item = await session.get(OutboxItem, item_id, with_for_update=True)
        if item is None or item.status != "failed":
            return False
        item.status, item.attempts, item.next_attempt_at, item.last_error = "pending", 0, now, None
        if item.message_id is not None:
            message = await session.get(Message, item.message_id)
            if message is not None and message.direction == "out" and message.status == "failed":
                message.status, message.updated_at, message.reason = "queued", now, None
            session.add(MessageEvent(message_id=item.message_id, at=now, state="requeued", detail={"outbox_id": item_id}))
    return True


class PartnerDelivery:
    """REST delivery workers for this process."""

    def __init__(
        self,
        db: Database,
        partners: Callable[[], Any],
        settings: OutboundSettings,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.partners = partners
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.policy = RetryPolicy(
            settings.max_attempts, timedelta(hours=settings.max_age_hours), settings.retry_base_seconds,
            settings.retry_max_seconds,
        )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._claim_lock = asyncio.Lock()

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"delivery-{i}") for i in range(self.settings.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _worker(self) -> None:
        while True:
            try:
                did = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("partner delivery worker error")
                did = False
            if not did:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    async def run_until_idle(self, limit: int = 1000) -> int:
        done = 0
        while done < limit and await self.run_one():
            done += 1
        return done

    async def _claim(self) -> Any:
        now = self.clock()
        async with self._claim_lock, self.db.begin() as session:
            due = or_(
                and_(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now),
                and_(OutboxItem.status == "sending", OutboxItem.next_attempt_at <= now),
            )
            item = (
                await session.execute(
                    select(OutboxItem)
                    .where(OutboxItem.channel == "rest", due)
                    .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if item is None:
                return None
            item.status = "sending"
            item.attempts += 1
            item.next_attempt_at = now + timedelta(seconds=self.settings.lease_seconds)
            return item

    async def run_one(self) -> bool:
        item = await self._claim()
        if item is None:
            return False
        profile = self.partners().get(item.partner_id) if self.partners() is not None else None
        now = self.clock()
        if profile is None or profile.delivery.channel != "rest" or not profile.delivery.url:
            async with self.db.begin() as session:
                await mark_failed(session, item, now, f"partner {item.partner_id} has no REST delivery URL now")
            return True
        status, answer, retry_after, duration_ms = await self._post(item, profile)
        now = self.clock()
        async with self.db.begin() as session:
            if status is not None and 200 <= status < 300:
                await mark_sent(session, item.id, now, via="rest")
                await self._record(session, item, now, "delivered", status, None, duration_ms)
                return True
            what = f"HTTP {status}: {answer}" if status is not None else answer
            if self.metrics is not None:
                self.metrics.partner_failure(item.partner_id)
            retryable = status is None or status >= 500 or status in RETRYABLE_STATUS
            if retryable and not self.policy.gives_up(item.attempts, item.created_at, now):
                delay = self.policy.delay(item.attempts, retry_after)
                await session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == item.id, OutboxItem.status == "sending")
                    .values(status="pending", next_attempt_at=now + timedelta(seconds=delay), last_error=truncate(what))
                )
                await self._record(session, item, now, "retry", status, what, duration_ms)
                return True
            if retryable:
                what = f"gave up after {item.attempts} attempt(s): {what}"
            await mark_failed(session, item, now, truncate(what))
            await self._record(session, item, now, "dead", status, what, duration_ms)
        return True

    async def _post(self, item: Any, profile: Any) -> tuple[int | None, str, float | None, float]:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        headers = {
            "Content-Type": "application/edi-x12",
            "Idempotency-Key": item.id,
            "X-Gateway-Kind": item.kind,
            "X-Gateway-Interchange-Control": f"{item.interchange_control or 0:09d}",
        }
        started = time.perf_counter()
        try:
            async with self._http.post(
                profile.delivery.url,
                data=item.payload.encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=profile.delivery.timeout_seconds),
            ) as resp:
                answer = truncate(await resp.text(errors="replace"))
                return resp.status, answer, parse_retry_after(resp.headers.get("Retry-After"), self.clock()), (
                    time.perf_counter() - started
                ) * 1000
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}", None, (time.perf_counter() - started) * 1000

    async def _record(
        self, session: AsyncSession, item: Any, now: datetime, outcome: str, status: int | None,
        error: str | None, duration_ms: float,
    ) -> None:
        if item.message_id is None:
            return
        await session.execute(
            insert(DeliveryAttempt).values(
                message_id=item.message_id,
                outbox_id=item.id,
                target="partner",
                at=now,
                outcome=outcome,
                status_code=status,
                error=truncate(error) if error else None,
                duration_ms=round(duration_ms, 3),
            )
        )
