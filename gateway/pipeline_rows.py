"""The rows a pipeline step writes, and the batching that keeps them few: timeline
events buffered into one insert, a translate batch's documents, outbox acks, new
``interchanges_seen`` and status updates written together, control numbers taken
in chunks under the counter's row lock, documents stored idempotently on replay.

Everything here runs inside the caller's transaction (an ``AsyncSession``) and
never commits; :mod:`gateway.pipeline` decides what is written when.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import lean, pg_raw
from gateway.db.control_numbers import allocate
from gateway.db.models import Base, Document, InterchangeSeen, Message, MessageEvent, OutboxItem
from gateway.db.one_of import one_of
from gateway.db.plain import plain
from gateway.db.writer import lean_connection
from gateway.domain.states import INBOUND, IllegalTransition, OutboxStatus
from gateway.orders import link_documents

ACK_KINDS = ("TA1", "997", "999")


def add_event(
    session: AsyncSession, message_id: str, at: datetime, state: str, detail: dict[str, Any] | None
) -> None:
    buffered = session.info.get(EVENT_BUFFER)
    if buffered is not None:
        buffered.append({"message_id": message_id, "at": at, "state": state, "detail": detail})
    else:
        session.add(MessageEvent(message_id=message_id, at=at, state=state, detail=detail))


EVENT_BUFFER = "gateway.pipeline.events"


def buffer_events(session: AsyncSession) -> None:
    """From now on :func:`add_event` collects rows for :func:`flush_events` (one
    multi-row insert instead of one insert per event; order kept)."""
    session.info.setdefault(EVENT_BUFFER, [])


BATCH = "gateway.pipeline.batch"


@dataclass(slots=True)
class NewSeen:
    """An ``interchanges_seen`` row first seen in this batch (inserted at its flush)."""

    partner_id: str
    sender: str
    control_number: str
    first_message_id: str
    seen_at: datetime


async def seen_or_insert(
    session: AsyncSession, key: dict[str, str], message_id: str, now: datetime
) -> InterchangeSeen | None:
    """The ``interchanges_seen`` row of ``key``, locked; None when there was none and
    this message's row was inserted. Another process may be inserting the same key
    at this moment (PostgreSQL: two gateways translating one interchange). The
    insert then waits for that transaction and, once it commits, does nothing; the
    re-read finds its row, so this message is the duplicate instead of failing on
    the primary key."""
    seen = await session.get(InterchangeSeen, key, with_for_update=True)
    if seen is not None:
        return seen
    dialect: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    inserted = await session.execute(
        dialect.insert(InterchangeSeen)
        .values(**key, first_message_id=message_id, seen_at=now)
        .on_conflict_do_nothing()
    )
    if inserted.rowcount == 1:  # type: ignore[attr-defined]
        return None
    return await session.get(InterchangeSeen, key, with_for_update=True)


def interchange_key(interchange: Any) -> tuple[str, str, str] | None:
    if interchange.profile is None:
        return None
    header = interchange.outcome.header
    sender = f"{header.sender_qualifier.strip()}/{header.sender_id.strip()}"
    return (interchange.profile.id, sender, header.control_number.strip())


@dataclass(slots=True)
class BatchWrites:
    """A translate batch's writes done once for all its messages: what was looked up
    at the start (acks already issued, documents already stored: replays) and the
    rows inserted together at the end (:meth:`flush`)."""

    acks_issued: set[str]
    have_documents: set[str]
    documents: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    # message status updates (primary key + columns), written by one executemany per column set
    statuses: list[dict[str, Any]] = field(default_factory=list)
    # (partner, sender, ISA13) -> the stored row (locked) or one new in this batch
    seen: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    @classmethod
    async def begin(
        cls, session: AsyncSession, message_ids: list[str], interchanges: list[tuple[str, str, str]]
    ) -> BatchWrites:
        raw = await plain(session)  # SQLite's writer thread, PostgreSQL's asyncpg (gateway.db.plain)
        if raw is not None:
            batch = cls(
                await raw.message_ids_with("outbox", message_ids, kinds=True),
                await raw.message_ids_with("documents", message_ids, kinds=False),
            )
        else:
            issued = await session.execute(
                select(OutboxItem.message_id)
                .where(one_of(session, OutboxItem.message_id, message_ids), OutboxItem.kind.in_(ACK_KINDS))
                .distinct()
            )
            stored = await session.execute(
                select(Document.message_id)
                .where(one_of(session, Document.message_id, message_ids))
                .distinct()
            )
            batch = cls({m for m in issued.scalars() if m is not None}, set(stored.scalars()))
        # Seen rows are read as ORM objects (a later write in the batch may move them);
        # a plain look first skips that read when none is there (the usual case).
        if interchanges and (raw is None or await raw.any_seen(interchanges)):
            wanted = set(interchanges)
            rows = await session.execute(
                select(InterchangeSeen)
                .where(
                    one_of(session, InterchangeSeen.partner_id, {k[0] for k in wanted}),
                    one_of(session, InterchangeSeen.control_number, {k[2] for k in wanted}),
                )
                .with_for_update()
            )
            for row in rows.scalars():
                key = (row.partner_id, row.sender, row.control_number)
                if key in wanted:
                    batch.seen[key] = row
        session.info[BATCH] = batch
        return batch

    async def flush(self, session: AsyncSession) -> None:
        new_seen = [
            {
                "partner_id": s.partner_id,
                "sender": s.sender,
                "control_number": s.control_number,
                "first_message_id": s.first_message_id,
                "seen_at": s.seen_at,
            }
            for s in self.seen.values()
            if isinstance(s, NewSeen)
        ]
        raw = lean_connection(session)  # SQLite's writer thread: plain executemany
        if new_seen:
            await _insert(session, raw, InterchangeSeen, new_seen)
            self.seen = {k: v for k, v in self.seen.items() if not isinstance(v, NewSeen)}
        if self.documents:
            await _insert(session, raw, Document, self.documents)
            await link_documents(session, self.documents, now=self.documents[0]["created_at"])
        if self.outbox:
            await _insert(session, raw, OutboxItem, self.outbox)
        await _update_statuses(session, raw, self.statuses)
        self.documents, self.outbox, self.statuses = [], [], []


async def _update_statuses(
    session: AsyncSession, raw: sqlite3.Connection | None, statuses: list[dict[str, Any]]
) -> None:
    """The batch's message status updates, each guarded as :func:`set_status`'s own:
    ``WHERE status IN`` the states that may move to it. A message no longer in such a
    state (the old state each row was checked against was read before) raises
    IllegalTransition naming the batch's messages of that target, as the delivered
    batch's record does: the whole transaction is rolled back, and the translate
    batch writes its messages one by one, where only that message fails."""
    pg = None if raw is not None else await pg_raw.driver(session)
    targets: dict[str, list[dict[str, Any]]] = {}
    for row in statuses:
        targets.setdefault(row["status"], []).append(row)
    for target, rows in targets.items():
        sources = INBOUND.sources(target)
        if raw is not None:
            moved = lean.update_by_id(raw, Message, rows, status_in=sources)
        elif pg is not None:  # PostgreSQL: a pipelined batch on asyncpg (gateway.db.pg_raw)
            moved = await pg_raw.update_by_id(pg, Message, rows, status_in=sources)
        else:
            moved = 0
            for row in rows:
                result = await session.execute(
                    update(Message)
                    .where(Message.id == row["id"], Message.status.in_(sources))
                    .values({k: v for k, v in row.items() if k != "id"})
                    .execution_options(synchronize_session=False)
                )
                moved += result.rowcount  # type: ignore[attr-defined]
        if moved != len(rows):
            raise IllegalTransition(INBOUND.name, None, target, ", ".join(r["id"] for r in rows))


async def _insert(
    session: AsyncSession, raw: sqlite3.Connection | None, model: type[Base], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` in the session's transaction: plain executemany on the writer
    thread's connection (gateway.db.lean) or on PostgreSQL's asyncpg connection
    (gateway.db.pg_raw), else through SQLAlchemy."""
    if raw is not None:
        lean.insert(raw, model, rows)
    elif (pg := await pg_raw.driver(session)) is not None:
        await pg_raw.insert(pg, model, rows)
    else:
        await session.execute(insert(model), rows)


CONTROL_POOL = "gateway.pipeline.control_numbers"
POOL_CHUNK = 64


def pool_control_numbers(session: AsyncSession) -> None:
    """From now on :func:`allocate_pooled` takes control numbers in chunks; call
    :func:`return_control_numbers` before the commit. The chunk is allocated under
    the counter's row lock, which this transaction then holds to its end, so handing
    back what was not used leaves exactly the numbers one-by-one allocation would:
    consecutive, no gaps."""
    session.info.setdefault(CONTROL_POOL, {})


async def allocate_pooled(session: AsyncSession, partner_id: str, kind: str, count: int = 1) -> list[int]:
    pool: dict[tuple[str, str], list[int]] | None = session.info.get(CONTROL_POOL)
    if pool is None:
        return await allocate(session, partner_id, kind, count)
    free = pool.setdefault((partner_id, kind), [])
    if len(free) < count:
        free += await allocate(session, partner_id, kind, max(POOL_CHUNK, count - len(free)))
    taken, free[:] = free[:count], free[count:]
    return taken


async def return_control_numbers(session: AsyncSession) -> None:
    from gateway.db.models import ControlNumber

    pool: dict[tuple[str, str], list[int]] = session.info.get(CONTROL_POOL) or {}
    raw = await plain(session) if any(pool.values()) else None
    for (partner_id, kind), free in pool.items():
        if free and raw is not None:
            await raw.give_back(partner_id, kind, len(free))
            free.clear()
        elif free:
            await session.execute(
                update(ControlNumber)
                .where(ControlNumber.partner_id == partner_id, ControlNumber.kind == kind)
                .values(last_value=ControlNumber.last_value - len(free))
            )
            free.clear()


async def flush_events(session: AsyncSession) -> None:
    buffered = session.info.get(EVENT_BUFFER)
    if buffered:
        rows = list(buffered)
        buffered.clear()
        await _insert(session, lean_connection(session), MessageEvent, rows)


async def set_status(
    session: AsyncSession,
    message_id: str,
    status: str,
    now: datetime,
    reason: str | None,
    detail: dict[str, Any] | None,
    *,
    keep_reason: bool = False,
    old: str | None = None,
    **columns: Any,
) -> None:
    """Move inbound message ``message_id`` to ``status`` (gateway.domain.states.INBOUND).
    ``old``, when the caller knows it, is checked against the table before anything
    is written; otherwise the UPDATE itself is guarded and a message found in a state
    that may not move to ``status`` raises IllegalTransition."""
    values: dict[str, Any] = {"status": status, "updated_at": now, **columns}
    if not keep_reason:
        values["reason"] = reason
    if old is not None:
        INBOUND.check(old, status, message_id)
    batch: BatchWrites | None = session.info.get(BATCH)
    if batch is not None:
        if old is None:
            raise IllegalTransition(
                INBOUND.name, None, status, f"{message_id}: a batched write needs the old state"
            )
        batch.statuses.append({"id": message_id, **values})
    else:
        result = await session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status.in_(INBOUND.sources(status)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            found = await session.scalar(select(Message.status).where(Message.id == message_id))
            raise IllegalTransition(INBOUND.name, found, status, message_id)
    event_detail = dict(detail or {})
    if reason:
        event_detail["reason"] = reason
    add_event(session, message_id, now, status, event_detail or None)


async def release_acks(session: AsyncSession, message_id: str) -> int:
    result = await session.execute(
        update(OutboxItem)
        .where(OutboxItem.message_id == message_id, OutboxItem.status == OutboxStatus.HELD)
        .values(status=OutboxStatus.PENDING)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def store_documents(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert new documents; on replay, refresh the ones not yet delivered and leave
    delivered ones alone (the ERP has them under the same idempotency key)."""
    batch: BatchWrites | None = session.info.get(BATCH)
    if batch is not None:
        # Messages without stored documents (all but replays): inserted with the batch.
        fresh = [row for row in rows if row["message_id"] not in batch.have_documents]
        batch.documents += fresh
        rows = [row for row in rows if row["message_id"] in batch.have_documents]
        if not rows:
            return
    fresh, replayed = [], []
    for row in rows:
        existing = (
            await session.execute(
                select(Document).where(Document.message_id == row["message_id"], Document.seq == row["seq"])
            )
        ).scalar_one_or_none()
        if existing is None:
            session.add(Document(**row))
            fresh.append(row)
        elif existing.status != "delivered":
            replayed.append({**row, "id": existing.id})
            for key in (
                "kind",
                "set_id",
                "set_control",
                "group_control",
                "interchange_control",
                "business_number",
                "canonical",
            ):
                setattr(existing, key, row[key])
            existing.status = "pending"
    await session.flush()
    if fresh or replayed:
        now = (fresh or replayed)[0]["created_at"]
        await link_documents(session, fresh, now=now)
        await link_documents(session, replayed, now=now, replace=True)
