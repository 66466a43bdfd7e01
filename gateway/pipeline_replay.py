"""The pipeline's replays: an inbound message run again from a stage (translate,
deliver, acknowledge; the rules are gateway.domain.replay). A mixin of
:class:`gateway.pipeline.Pipeline`, which provides the database, raw store, clock
and the wake-up of its workers.

Every replay is one transaction on the message's row (locked), refused while a job
of the message runs under a live lease, and leaves an event on the message's
timeline naming the stage and who asked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import pipeline_rows as rows
from gateway.db import jobs
from gateway.db.ids import new_id
from gateway.db.models import Document, Message, OutboxItem
from gateway.domain.replay import ReplayNotAllowed, ReplayStage, acks_to_resend, replay_status
from gateway.domain.states import OUTBOX, DocumentStatus, OutboxStatus
from gateway.ports import BlobStore


class ReplayRefused(Exception):
    """The message cannot be replayed now (unknown, being processed, or the stage
    does not apply to it); the message says why."""


class ReplayStep:
    db: Any
    blobs: BlobStore
    clock: Any

    def wake(self) -> None:
        raise NotImplementedError

    async def replay(
        self,
        message_id: str,
        *,
        requested_by: str = "operator",
        stage: ReplayStage = ReplayStage.TRANSLATE,
        redeliver: bool = False,
    ) -> None:
        """Run ``message_id`` again from ``stage`` (gateway.domain.replay); with
        ``redeliver``, a replay from deliver also hands over documents the ERP has."""
        now = self.clock()
        detail: dict[str, Any] = {"replay": True, "from": str(stage), "requested_by": requested_by}
        async with self.db.begin() as session:
            message = await session.get(Message, message_id, with_for_update=True)
            if message is None or message.direction != "in":
                raise ReplayRefused(f"no inbound message {message_id}")
            if await jobs.running_job(session, message_id, now=now) is not None:
                raise ReplayRefused(f"message {message_id} is being processed; try again when it settles")
            try:
                if stage is ReplayStage.TRANSLATE:
                    await self._from_translate(session, message, detail, now)
                elif stage is ReplayStage.DELIVER:
                    await _from_deliver(session, message, detail, now, redeliver=redeliver)
                else:
                    await _from_acknowledge(session, message_id, detail, now)
            except ReplayNotAllowed as exc:
                raise ReplayRefused(str(exc)) from None
        if stage is not ReplayStage.ACKNOWLEDGE:
            self.wake()

    async def _from_translate(
        self, session: AsyncSession, message: Message, detail: dict[str, Any], now: datetime
    ) -> None:
        target = replay_status(ReplayStage.TRANSLATE, message.status, 0)
        if not await self.blobs.exists(message.raw_sha256):
            raise ReplayNotAllowed(f"the raw payload of {message.id} is gone (pruned by retention)")
        await jobs.cancel_pending(session, message.id, now=now)
        await rows.set_status(session, message.id, str(target), now, None, detail)
        await jobs.enqueue(session, message.id, "translate", now=now)


async def _from_deliver(
    session: AsyncSession, message: Message, detail: dict[str, Any], now: datetime, *, redeliver: bool
) -> None:
    """Back to ``translated`` and a deliver job: the deliver step hands over every
    document not ``delivered`` (gateway.pipeline_deliver; the dead letters it skips
    are counted from this event on)."""
    docs = (
        await session.execute(
            select(Document.id, Document.status).where(
                Document.message_id == message.id, Document.direction == "in"
            )
        )
    ).all()
    target = replay_status(ReplayStage.DELIVER, message.status, len(docs))
    delivered = [d.id for d in docs if d.status == DocumentStatus.DELIVERED]
    if len(delivered) == len(docs) and not redeliver:
        raise ReplayNotAllowed(
            f"every document of {message.id} is with the ERP already: ask to send the delivered ones again"
        )
    await jobs.cancel_pending(session, message.id, now=now)
    if redeliver and delivered:
        await session.execute(
            update(Document)
            .where(Document.id.in_(delivered), Document.status == DocumentStatus.DELIVERED)
            .values(status=DocumentStatus.PENDING)
        )
    handed = len(docs) if redeliver else len(docs) - len(delivered)
    await rows.set_status(
        session,
        message.id,
        str(target),
        now,
        None,
        {**detail, "documents": handed, "redeliver": redeliver},
        old=message.status,
    )
    await jobs.enqueue(session, message.id, "deliver", now=now)


async def _from_acknowledge(
    session: AsyncSession, message_id: str, detail: dict[str, Any], now: datetime
) -> None:
    """A copy of each sent acknowledgment queued for the partner (the first send stays
    on record as sent), each failed one queued again."""
    found = (
        await session.execute(
            select(OutboxItem)
            .where(OutboxItem.message_id == message_id, OutboxItem.kind.in_(rows.ACK_KINDS))
            .order_by(OutboxItem.id)
        )
    ).scalars()
    items = {item.id: item for item in found}
    plan = acks_to_resend((i.id, i.status) for i in items.values())
    queued: list[str] = []
    for item_id in plan.copy:
        old = items[item_id]
        queued.append(new_id())
        await session.execute(
            insert(OutboxItem).values(
                id=queued[-1],
                partner_id=old.partner_id,
                message_id=message_id,
                kind=old.kind,
                channel=old.channel,
                payload=old.payload,
                interchange_control=old.interchange_control,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    if plan.requeue:
        await session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id.in_(plan.requeue),
                OutboxItem.status.in_(OUTBOX.sources(OutboxStatus.PENDING)),
            )
            .values(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, last_error=None, locked_by=None
            )
        )
    rows.add_event(
        session,
        message_id,
        now,
        "acks_resent",
        {
            **detail,
            "acks": [items[i].kind for i in (*plan.copy, *plan.requeue)],
            "outbox_ids": [*queued, *plan.requeue],
        },
    )
