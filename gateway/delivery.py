"""Partner delivery: moving outbox items (our acks, 855/856/810) to partners.

:class:`OutboxSender` claims due items and hands each to the
:class:`~gateway.ports.PartnerTransport` of the partner's delivery channel *as the
profile says now* (a partner moved from mailbox to REST gets its waiting items over
REST). Channels whose transport does not push (``mailbox``) are never claimed: the
partner collects through gateway.api.mailbox, which calls :func:`mark_sent`.

Fair across partners: a claim round takes at most ``per_partner`` items of each
partner that has something due, rotating which partner comes first, so a flood of
one partner's acks never starves another's ASN. A partner found with nothing due
is not asked again until something is queued (:meth:`OutboxSender.wake`) or the
poll interval passes.

Claiming takes a lease (status ``sending``, ``locked_by`` = this instance,
``next_attempt_at`` = lease end, renewed by the instance heartbeat while the send
runs; gateway.runner) with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes
sharing a database never send one item at the same time; an item whose sender died
is released by the others' heartbeat and sent again: at least once, with the
Idempotency-Key (the outbox id) for the partner to deduplicate. Transient failures
are retried with :class:`gateway.runner.Backoff` (jitter, Retry-After honoured)
until ``[outbound] max_attempts`` / ``max_age_hours``; then, like a permanent
refusal at once, the item is ``failed``: a dead letter an operator can replay.
``held`` items (acks waiting for their message) are never touched here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import OutboundSettings
from gateway.db.engine import Database
from gateway.db.models import Document, Message, MessageEvent, OutboxItem, utcnow
from gateway.db.models_delivery import DeliveryAttempt
from gateway.domain import mdn
from gateway.domain.states import OUTBOUND, OUTBOX, OutboundStatus, OutboxStatus
from gateway.erp import truncate
from gateway.metrics import Metrics
from gateway.ports import OutboundItem, PartnerTransport, SendOutcome, SendResult
from gateway.runner import Backoff, new_instance_id

log = logging.getLogger(__name__)

# Outbox channels this sender never claims: the partner collects (mailbox), or another
# loop sends them (AS2 asynchronous MDNs, gateway.as2_async_mdn).
ASYNC_MDN = "as2-mdn"
SENT_ELSEWHERE = ("mailbox", ASYNC_MDN)


async def mark_sent(session: AsyncSession, item_id: str, now: datetime, *, via: str) -> bool:
    """Record that outbox item ``item_id`` reached the partner; an outbound message
    becomes ``sent`` (waiting for the partner's 997/999). False if it was not pending."""
    result = await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status.in_(OUTBOX.sources(OutboxStatus.SENT)))
        .values(status=OutboxStatus.SENT, sent_at=now, last_error=None, locked_by=None)
        .returning(OutboxItem.message_id, OutboxItem.kind)
    )
    row = result.first()
    if row is None:
        return False
    message_id, kind = row
    if message_id is None:
        return True
    message = await session.get(Message, message_id)
    if (
        message is not None
        and message.direction == "out"
        and OUTBOUND.allowed(message.status, OutboundStatus.SENT)
    ):
        message.status, message.updated_at, message.reason = OutboundStatus.SENT, now, None
        await session.execute(
            update(Document).where(Document.message_id == message_id).values(status="sent", delivered_at=now)
        )
        session.add(
            MessageEvent(
                message_id=message_id, at=now, state="sent", detail={"via": via, "outbox_id": item_id}
            )
        )
    elif message is not None:
        session.add(
            MessageEvent(
                message_id=message_id,
                at=now,
                state="ack_sent",
                detail={"kind": kind, "via": via, "outbox_id": item_id},
            )
        )
    return True


async def mark_failed(session: AsyncSession, item: Any, now: datetime, reason: str) -> None:
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item.id, OutboxItem.status.in_(OUTBOX.sources(OutboxStatus.FAILED)))
        .values(status=OutboxStatus.FAILED, last_error=reason, locked_by=None)
    )
    if item.message_id is None:
        return
    message = await session.get(Message, item.message_id)
    if message is None:
        return
    if message.direction == "out":
        if OUTBOUND.allowed(message.status, OutboundStatus.FAILED):
            message.status, message.updated_at, message.reason = OutboundStatus.FAILED, now, reason
        session.add(
            MessageEvent(
                message_id=message.id, at=now, state="failed", detail={"reason": reason, "outbox_id": item.id}
            )
        )
    else:
        session.add(
            MessageEvent(
                message_id=message.id,
                at=now,
                state="ack_delivery_failed",
                detail={"reason": reason, "outbox_id": item.id},
            )
        )


async def requeue(db: Database, item_id: str, now: datetime) -> bool:
    """Replay a failed outbox item: pending again with a fresh attempt count."""
    async with db.begin() as session:
        item = await session.get(OutboxItem, item_id, with_for_update=True)
        if (
            item is None
            or not OUTBOX.allowed(item.status, OutboxStatus.PENDING)
            or item.status != OutboxStatus.FAILED
        ):
            return False
        item.status, item.attempts, item.next_attempt_at, item.last_error = OutboxStatus.PENDING, 0, now, None
        if item.message_id is not None:
            message = await session.get(Message, item.message_id)
            if message is not None and message.direction == "out" and message.status == OutboundStatus.FAILED:
                message.status, message.updated_at, message.reason = OutboundStatus.QUEUED, now, None
            session.add(
                MessageEvent(
                    message_id=item.message_id, at=now, state="requeued", detail={"outbox_id": item_id}
                )
            )
    return True


class OutboxSender:
    """Sends due outbox items through the partners' transports (see the module doc)."""

    def __init__(
        self,
        db: Database,
        partners: Callable[[], Any],
        settings: OutboundSettings,
        transports: Mapping[str, PartnerTransport],
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        per_partner: int = 4,
    ) -> None:
        self.db = db
        self.partners = partners
        self.settings = settings
        self.transports = dict(transports)
        self.metrics = metrics
        self.clock = clock
        self.per_partner = per_partner
        self.backoff = Backoff(
            settings.max_attempts,
            timedelta(hours=settings.max_age_hours),
            settings.retry_base_seconds,
            settings.retry_max_seconds,
        )
        self.worker_id = worker_id or new_instance_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._claim_lock = asyncio.Lock()
        # partner -> when (monotonic) it was found with nothing due; not asked again
        # until a wake() or for poll_seconds (its retries come due by time)
        self._idle: dict[str, float] = {}
        self._turn = 0  # which partner goes first in the next round

    def wake(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        if self.settings.workers > 0:
            self._task = asyncio.create_task(self._forever(), name="outbox-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Hand back what was in flight: the next sender need not wait for the lease.
        with contextlib.suppress(Exception):
            async with self.db.write() as conn:
                await conn.execute(
                    update(OutboxItem)
                    .where(OutboxItem.locked_by == self.worker_id, OutboxItem.status == OutboxStatus.SENDING)
                    .values(status=OutboxStatus.PENDING, locked_by=None, next_attempt_at=self.clock())
                )

    async def _forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                did = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox sender error")
                did = False
            if not did:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    async def run_until_idle(self, limit: int = 1000) -> int:
        self._idle.clear()
        done = 0
        while done < limit and await self.run_one():
            done += 1
        return done

    def _push_partners(self) -> tuple[list[str], list[str]]:
        """(partners whose channel pushes, partners with no profile now)."""
        directory = self.partners()
        push: list[str] = []
        if directory is not None:
            for entry in directory.entries.values():
                transport = self.transports.get(entry.transport.delivery.channel)
                if transport is not None and transport.push:
                    push.append(entry.profile.id)
        known = list(directory.entries) if directory is not None else []
        return push, known

    async def claim(self) -> list[Any]:
        """One fair round: up to ``per_partner`` due items of each partner with work,
        at most ``workers * per_partner`` in all."""
        push, known = self._push_partners()
        now = self.clock()
        limit = max(1, self.settings.workers) * self.per_partner
        due = and_(
            OutboxItem.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            OutboxItem.next_attempt_at <= now,
        )
        claimed: list[Any] = []
        async with self._claim_lock, self.db.begin() as session:
            # Items of partners removed from the directory fail at once (below).
            orphans = (
                (
                    await session.execute(
                        select(OutboxItem)
                        .where(
                            due,
                            OutboxItem.channel.not_in(SENT_ELSEWHERE),
                            OutboxItem.partner_id.not_in(known),
                        )
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            claimed += orphans
            if push:
                start = self._turn % len(push)
                self._turn += 1
                for partner_id in push[start:] + push[:start]:
                    if len(claimed) >= limit:
                        break
                    if time.monotonic() - self._idle.get(partner_id, -1e9) < self.settings.poll_seconds:
                        continue
                    rows = (
                        (
                            await session.execute(
                                select(OutboxItem)
                                .where(
                                    OutboxItem.partner_id == partner_id, due, OutboxItem.channel != ASYNC_MDN
                                )
                                .order_by(OutboxItem.id)
                                .limit(min(self.per_partner, limit - len(claimed)))
                                .with_for_update(skip_locked=True)
                            )
                        )
                        .scalars()
                        .all()
                    )
                    if not rows:
                        self._idle[partner_id] = time.monotonic()
                    claimed += rows
            for item in claimed:
                OUTBOX.check(item.status, OutboxStatus.SENDING, item.id)
                item.status = OutboxStatus.SENDING
                item.locked_by = self.worker_id
                item.attempts += 1
                item.next_attempt_at = now + timedelta(seconds=self.settings.lease_seconds)
        return claimed

    async def run_one(self) -> bool:
        """Claim one fair round and send it (``workers`` at a time); False when idle."""
        claimed = await self.claim()
        if not claimed:
            return False
        gate = asyncio.Semaphore(max(1, self.settings.workers))

        async def one(item: Any) -> None:
            async with gate:
                try:
                    await self._send(item)
                except Exception:
                    log.exception("sending outbox item %s failed; its lease runs out", item.id)

        await asyncio.gather(*(one(item) for item in claimed))
        return True

    async def _send(self, item: Any) -> None:
        directory = self.partners()
        entry = directory.entry(item.partner_id) if directory is not None else None
        transport = self.transports.get(entry.transport.delivery.channel) if entry is not None else None
        if entry is None or transport is None or not transport.push:
            result = SendResult(
                SendOutcome.PERMANENT, f"partner {item.partner_id} has no push delivery channel now"
            )
        else:
            result = await transport.send(_outbound(item), entry.transport)
        now = self.clock()
        via = transport.channel if transport is not None else "none"
        async with self.db.begin() as session:
            if item.message_id is not None:
                for state, detail in result.events:
                    session.add(MessageEvent(message_id=item.message_id, at=now, state=state, detail=detail))
            verdict = mdn.after_send(result.events, result.outcome is SendOutcome.SENT, result.detail)
            if verdict is not None:
                values = mdn.columns(verdict, now)
                await session.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(**values))
            if result.outcome is SendOutcome.SENT:
                await mark_sent(session, item.id, now, via=via)
                await self._record(session, item, now, "delivered", result, None)
                return
            if self.metrics is not None:
                self.metrics.partner_failure(item.partner_id)
            what = result.detail
            if result.outcome is SendOutcome.TRANSIENT and not self.backoff.gives_up(
                item.attempts, item.created_at, now
            ):
                delay = self.backoff.delay(item.attempts, result.retry_after)
                await session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == item.id, OutboxItem.status == OutboxStatus.SENDING)
                    .values(
                        status=OutboxStatus.PENDING,
                        locked_by=None,
                        next_attempt_at=now + timedelta(seconds=delay),
                        last_error=truncate(what),
                    )
                )
                await self._record(session, item, now, "retry", result, what)
                return
            if result.outcome is SendOutcome.TRANSIENT:
                what = f"gave up after {item.attempts} attempt(s): {what}"
            log.warning(
                "outbox item %s to %s dead-lettered: %s",
                item.id,
                item.partner_id,
                truncate(what, 300),
                extra={"outbox_id": item.id, "partner_id": item.partner_id, "message_id": item.message_id},
            )
            await mark_failed(session, item, now, truncate(what))
            await self._record(session, item, now, "dead", result, what)

    async def _record(
        self,
        session: AsyncSession,
        item: Any,
        now: datetime,
        outcome: str,
        result: SendResult,
        error: str | None,
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
                status_code=result.status_code,
                error=truncate(error) if error else None,
                duration_ms=round(result.duration_ms, 3),
            )
        )


def _outbound(item: Any) -> OutboundItem:
    return OutboundItem(
        id=item.id,
        partner_id=item.partner_id,
        kind=item.kind,
        payload=item.payload.encode("utf-8"),
        interchange_control=item.interchange_control,
        message_id=item.message_id,
        attempts=item.attempts,
        created_at=item.created_at,
    )
