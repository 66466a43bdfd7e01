"""Operator actions shared by the internal API and the console, so both do exactly
the same thing: replay a dead letter (an ERP document: its message runs again; a
partner delivery: the outbox item is requeued), cancel a dead letter (given up on
for good: it leaves the dead-letter list; a later replay of its message still sends
it), replay or release a message, from a stage (gateway.domain.replay: translate,
deliver, acknowledge).

Errors carry what the caller answers: :class:`NotFound` (404) and
:class:`Refused` (409, with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from gateway.db.engine import Database
from gateway.db.models import Document, Message, OutboxItem
from gateway.delivery import requeue
from gateway.domain.replay import ReplayStage
from gateway.domain.states import DEAD_LETTER_STATES, OUTBOX, DocumentStatus, OutboxStatus
from gateway.pipeline_replay import ReplayRefused
from gateway.pipeline_rows import add_event

# What a message is after a replay from each stage was accepted (the API's answer).
STATUS_AFTER = {
    ReplayStage.TRANSLATE: "received",
    ReplayStage.DELIVER: "translated",
    ReplayStage.ACKNOWLEDGE: "acks_queued",
}


class NotFound(Exception):
    pass


class Refused(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Replayed:
    kind: str  # erp_document | partner_delivery
    message_id: str | None
    status: str  # replaying | pending


async def replay_dead_letter(
    db: Database,
    pipeline: Any,
    sender: Any,
    item_id: str,
    *,
    now: datetime,
    requested_by: str,
    stage: ReplayStage = ReplayStage.TRANSLATE,
) -> Replayed:
    """An ERP document: its message is replayed from ``stage`` (translate or deliver);
    a partner delivery: the outbox item is queued again (``stage`` does not apply)."""
    async with db.read() as conn:
        found = (
            await conn.execute(select(Document.message_id, Document.status).where(Document.id == item_id))
        ).first()
        box = (await conn.execute(select(OutboxItem.id).where(OutboxItem.id == item_id))).scalar_one_or_none()
    if found is not None:
        if found[1] == "delivered":
            raise Refused(f"document {item_id} is with the ERP already: not a dead letter")
        if stage is ReplayStage.ACKNOWLEDGE:
            raise Refused("a dead letter is replayed from translate or deliver")
        await replay_message(pipeline, None, found[0], requested_by=requested_by, stage=stage)
        return Replayed("erp_document", found[0], "replaying")
    if box is not None:
        if not await requeue(db, item_id, now):
            raise Refused(f"outbox item {item_id} is not a dead letter")
        sender.wake()
        return Replayed("partner_delivery", None, "pending")
    raise NotFound(f"no dead letter {item_id}")


async def replay_message(
    pipeline: Any,
    sender: Any,
    message_id: str,
    *,
    requested_by: str,
    stage: ReplayStage = ReplayStage.TRANSLATE,
    redeliver: bool = False,
) -> str:
    """Run an inbound message again from ``stage`` (from translate, the default, is
    also what releases a quarantined one once its partner's profile is there).
    Returns the status the caller reports (STATUS_AFTER)."""
    try:
        await pipeline.replay(message_id, requested_by=requested_by, stage=stage, redeliver=redeliver)
    except ReplayRefused as exc:
        raise Refused(str(exc)) from None
    if stage is ReplayStage.ACKNOWLEDGE and sender is not None:
        sender.wake()
    return STATUS_AFTER[stage]


async def cancel_dead_letter(db: Database, item_id: str, *, now: datetime, requested_by: str) -> str:
    """Give up on a dead letter: an ERP document becomes ``cancelled`` (its message
    keeps its final status), a failed outbox item ``cancelled`` (gateway.domain.states
    OUTBOX). The message's timeline records who did it. Returns ``erp_document`` or
    ``partner_delivery``."""
    async with db.begin() as session:
        doc = (
            await session.execute(
                select(Document.id, Document.message_id, Document.status, Document.last_error, Message.status)
                .join(Message, Message.id == Document.message_id)
                .where(Document.id == item_id)
            )
        ).first()
        if doc is not None:
            if doc[2] in ("delivered", "cancelled") or doc[3] is None or doc[4] not in DEAD_LETTER_STATES:
                raise Refused(f"document {item_id} is not a dead letter")
            done = await session.execute(
                update(Document)
                .where(Document.id == item_id, Document.status == doc[2])
                .values(status=DocumentStatus.CANCELLED)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Refused(f"document {item_id} changed meanwhile; look again")
            add_event(
                session, doc[1], now, "dead_letter_cancelled", {"document_id": item_id, "by": requested_by}
            )
            return "erp_document"
        box = (
            await session.execute(
                select(OutboxItem.message_id, OutboxItem.status).where(OutboxItem.id == item_id)
            )
        ).first()
        if box is None:
            raise NotFound(f"no dead letter {item_id}")
        done = await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.status.in_(OUTBOX.sources(OutboxStatus.CANCELLED)))
            .values(status=OutboxStatus.CANCELLED, locked_by=None)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Refused(f"outbox item {item_id} is not a dead letter")
        if box[0] is not None:
            add_event(
                session, box[0], now, "dead_letter_cancelled", {"outbox_id": item_id, "by": requested_by}
            )
        return "partner_delivery"
