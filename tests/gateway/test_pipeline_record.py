"""The delivered batch's record on its lean path (SQLite's writer thread, PostgreSQL's
raw asyncpg connection: gateway.db.lean_steps, gateway.db.pg_steps) against the
SQLAlchemy path it replaces (gateway.pipeline_deliver's per-message bookkeeping):
the same rows, and no SQLAlchemy statement for the common cases. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
import pytest
from gwsamples import order_850
from sqlalchemy import event, select
from test_service_pipeline import post

from gateway.app import DATABASE, PIPELINE, Overrides, build_app
from gateway.db import pg_raw, pg_steps
from gateway.db.models import Document, InterchangeSeen, Job, Message, MessageEvent, OutboxItem
from gateway.db.models_delivery import DeliveryAttempt
from gateway.erp import FeedParkingSink
from gateway.ports import DeliveryResult, DocumentRecord, ErpSink


class Flagged:
    """A sink that says when its batch has been handed over and what it answered."""

    def __init__(self, inner: ErpSink, attempts: bool) -> None:
        self.inner = inner
        self.attempts = attempts
        self.handed = False

    async def deliver_batch(self, batch: list[list[DocumentRecord]]) -> list[list[DeliveryResult]]:
        results = await self.inner.deliver_batch(batch)
        if self.attempts:  # as the webhook sink: a delivery_attempts row per document
            results = [
                [
                    DeliveryResult(
                        ok=r.ok, parked=r.parked, detail=r.detail, attempt=_attempt(doc, "delivered")
                    )
                    for doc, r in zip(docs, done, strict=True)
                ]
                for docs, done in zip(batch, results, strict=True)
            ]
        self.handed = True
        return results

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        raise NotImplementedError

    async def close(self) -> None:
        await self.inner.close()


class TakesAll(FeedParkingSink):
    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        return DeliveryResult(ok=True, detail="ERP answered 200")


def _attempt(doc: DocumentRecord, outcome: str) -> dict[str, Any]:
    at = datetime.fromisoformat("2026-12-07T20:00:00+00:00")
    return {
        "message_id": doc.message_id,
        "document_id": doc.id,
        "target": "erp",
        "at": at,
        "outcome": outcome,
        "status_code": 200,
        "error": None,
        "duration_ms": 1.5,
    }


_TABLES = ("jobs", "documents", "message_events", "outbox", "messages", "delivery_attempts")
_RECORDED = {"available_in_feed", "delivered", "acknowledged"}
_WRITTEN = (*_TABLES, "interchanges_seen", "control_numbers", "document_keys", "orders", "order_exceptions")


async def _rows(client: Any, message_ids: list[str]) -> list[Any]:
    """Everything the record writes for ``message_ids``, ids and times made comparable."""
    out: list[Any] = []
    async with client.app[DATABASE].read() as conn:
        for n, message_id in enumerate(message_ids):
            message = (await conn.execute(select(Message).where(Message.id == message_id))).one()
            moved = message.updated_at >= message.received_at
            events = (
                await conn.execute(
                    select(MessageEvent.state, MessageEvent.detail, MessageEvent.at)
                    .where(MessageEvent.message_id == message_id)
                    .order_by(MessageEvent.id)
                )
            ).all()
            docs = (
                await conn.execute(
                    select(
                        Document.status,
                        Document.attempts,
                        Document.delivered_at,
                        Document.last_error,
                        Document.seq,
                        Document.partner_id,
                        Document.direction,
                        Document.kind,
                        Document.set_id,
                        Document.set_control,
                        Document.group_control,
                        Document.business_number,
                        Document.canonical,
                        Document.created_at,
                    )
                    .where(Document.message_id == message_id)
                    .order_by(Document.seq)
                )
            ).all()
            outbox = (
                await conn.execute(
                    select(
                        OutboxItem.status,
                        OutboxItem.partner_id,
                        OutboxItem.kind,
                        OutboxItem.channel,
                        OutboxItem.attempts,
                        OutboxItem.last_error,
                        OutboxItem.sent_at,
                        OutboxItem.locked_by,
                        OutboxItem.mdn_status,
                        OutboxItem.next_attempt_at.is_not(None),
                        OutboxItem.created_at.is_not(None),
                    ).where(OutboxItem.message_id == message_id)
                )
            ).all()
            seen = (
                await conn.execute(
                    select(InterchangeSeen.partner_id, InterchangeSeen.sender, InterchangeSeen.seen_at).where(
                        InterchangeSeen.first_message_id == message_id
                    )
                )
            ).all()
            jobs = (
                await conn.execute(
                    select(Job.step, Job.state, Job.locked_until, Job.last_error, Job.locked_by)
                    .where(Job.message_id == message_id)
                    .order_by(Job.id)
                )
            ).all()
            attempts = (
                await conn.execute(
                    select(
                        DeliveryAttempt.target,
                        DeliveryAttempt.at,
                        DeliveryAttempt.outcome,
                        DeliveryAttempt.status_code,
                        DeliveryAttempt.error,
                        DeliveryAttempt.duration_ms,
                    ).where(DeliveryAttempt.message_id == message_id)
                )
            ).all()
            out.append(
                (
                    n,
                    message.status,
                    message.reason,
                    moved,
                    # the record's events in full; the earlier ones name the posted bytes
                    [(s, d if s in _RECORDED else None, at is not None) for s, d, at in events],
                    # the canonical names its PO (PO-Qn): compared across the two halves apart
                    [(d[0], d[1], d[2] is not None, *d[3:12], d.created_at is not None) for d in docs],
                    sorted(tuple(o) for o in outbox),
                    [(p, sender, at is not None) for p, sender, at in seen],
                    [orjson.dumps(d.canonical).decode() for d in docs],
                    [(s, st, lu, le, lb is not None) for s, st, lu, le, lb in jobs],
                    attempts,
                )
            )
    return out


def _same_posts(row: Any) -> str:
    """``row`` with what tells the two halves' posts apart made equal: ISA13/GS06
    44n and 45n, purchase orders PO-Qn and PO-Q(n+3)."""
    return re.sub(r"PO-Q\d", "PO-Q", re.sub(r"\b0*4[45](\d)\b", r"4x\1", repr(row)))


@pytest.mark.parametrize("parks", [True, False], ids=["feed", "webhook"])
async def test_lean_record_writes_what_the_orm_path_writes(
    aiohttp_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, parks: bool
) -> None:
    sink = Flagged(FeedParkingSink() if parks else TakesAll(), attempts=not parks)
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=sink)))
    pipeline = client.app[PIPELINE]
    lean = [await post(client, order_850("ACME", 440 + n, po=f"PO-Q{n}")) for n in range(3)]
    assert await pipeline.run_one()

    async def full_bookkeeping(*args: Any) -> bool:
        return False

    monkeypatch.setattr(pipeline, "_record_lean", full_bookkeeping)

    async def no_driver(session: Any) -> None:
        return None

    monkeypatch.setattr(pg_raw, "driver", no_driver)  # the translate write through SQLAlchemy too
    orm = [await post(client, order_850("ACME", 450 + n, po=f"PO-Q{n + 3}")) for n in range(3)]
    assert await pipeline.run_one()
    written = await _rows(client, lean)
    assert list(map(_same_posts, written)) == list(map(_same_posts, await _rows(client, orm)))
    status = "translated" if parks else "acknowledged"
    assert [row[1] for row in written] == [status] * 3
    assert all(len(row[10]) == (0 if parks else 1) for row in written)


async def test_parked_batch_is_recorded_without_sqlalchemy(aiohttp_client: Any, settings: Any) -> None:
    """Feed mode: once the sink has parked a batch, its record runs no SQLAlchemy
    statement (PostgreSQL: raw asyncpg statements in one transaction; it was a job
    update, a document update and an event per message through the ORM)."""
    sink = Flagged(FeedParkingSink(), attempts=False)
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=sink)))
    ids = [await post(client, order_850("ACME", 460 + n, po=f"PO-P{n}")) for n in range(3)]
    after: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the record's tables only (a schedule's heartbeat may run meanwhile)
        if sink.handed and any(f" {t}" in statement for t in _TABLES):
            after.append(statement)

    engine = client.app[DATABASE].engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await client.app[PIPELINE].run_one()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sink.handed
    assert after == []
    rows = await _rows(client, ids)
    assert [row[1] for row in rows] == ["translated"] * 3
    assert all([d[:4] for d in row[5]] == [("available", 1, False, None)] for row in rows)


async def test_raw_errors_are_sqlalchemy_errors(aiohttp_client: Any, settings: Any) -> None:
    """On PostgreSQL asyncpg's errors from the raw statements come out as the classes
    SQLAlchemy raised (a key clash is an IntegrityError, not a storage outage; a
    server-side cancel is an OperationalError, which the pipeline retries)."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError, OperationalError

    from gateway.db.engine import is_storage_error

    client = await aiohttp_client(build_app(settings))
    db = client.app[DATABASE]
    if db.is_sqlite:
        pytest.skip("the raw asyncpg statements are PostgreSQL's")
    now = datetime.fromisoformat("2026-12-07T20:00:00+00:00")
    seen = {"partner_id": "acme", "sender": "ZZ/ACME", "control_number": "1", "first_message_id": "m"}
    with pytest.raises(IntegrityError) as clash:
        async with db.begin() as session:
            await session.execute(text("SELECT 1"))
            pg = await pg_raw.driver(session)
            assert pg is not None
            await pg_raw.insert(pg, InterchangeSeen, [{**seen, "seen_at": now}] * 2)
    assert not is_storage_error(clash.value)
    with pytest.raises(OperationalError) as cancelled:
        async with db.begin() as session:
            await session.execute(text("SET LOCAL statement_timeout = 1"))
            pg = await pg_raw.driver(session)
            async with pg_raw.as_sqlalchemy("sleep"):
                await pg.execute("SELECT pg_sleep(1)")
    assert is_storage_error(cancelled.value)


async def test_raw_errors_quote_no_values(aiohttp_client: Any, settings: Any) -> None:
    """A mapped asyncpg error's text leaves out the server's DETAIL, which quotes the
    row (a clashing key; a failing row in full, payload included), as the errors
    SQLAlchemy raises with hide_parameters do: the text reaches logs and a message's
    reason."""
    from sqlalchemy import insert, text
    from sqlalchemy.exc import IntegrityError

    client = await aiohttp_client(build_app(settings))
    db = client.app[DATABASE]
    if db.is_sqlite:
        pytest.skip("the raw asyncpg statements are PostgreSQL's")
    mid = await post(client, order_850("ACME", 480, po="PO-E1"))
    now = datetime.fromisoformat("2026-12-07T20:00:00+00:00")
    seen = {"partner_id": "acme", "sender": "ZZ/SECRET-KEY", "control_number": "1", "first_message_id": mid}
    # a clashing key, and a NOT NULL column left empty beside a payload
    cases = [
        (InterchangeSeen, [{**seen, "seen_at": now}] * 2, "SECRET-KEY"),
        (
            MessageEvent,
            [{"message_id": mid, "at": now, "state": None, "detail": {"x": "SECRET-BODY"}}],
            "SECRET-BODY",
        ),
    ]
    for model, rows, secret in cases:
        for raw in (True, False):
            with pytest.raises(IntegrityError) as failed:
                async with db.begin() as session:
                    await session.execute(text("SELECT 1"))
                    if raw:
                        pg = await pg_raw.driver(session)
                        assert pg is not None
                        await pg_raw.insert(pg, model, rows)
                    else:
                        await session.execute(insert(model), rows)
            assert secret not in str(failed.value), (raw, str(failed.value))
            assert getattr(failed.value.orig, "sqlstate", None) in ("23505", "23502")


async def test_raw_record_keeps_the_lease_and_status_guards(aiohttp_client: Any, settings: Any) -> None:
    """PostgreSQL's raw record refuses what the SQLAlchemy path refused: a job whose
    lease another instance took is not finished (nothing else written for it), and a
    message in a state that may not move to ``acknowledged`` rolls the whole record
    back (IllegalTransition), its job left running."""
    from sqlalchemy import text

    from gateway.db.jobs import ClaimedJob
    from gateway.domain.states import IllegalTransition

    client = await aiohttp_client(build_app(settings))
    db = client.app[DATABASE]
    if db.is_sqlite:
        pytest.skip("the raw asyncpg statements are PostgreSQL's")
    mid = await post(client, order_850("ACME", 490, po="PO-G1"))  # left "received"
    now = datetime.fromisoformat("2026-12-07T20:00:00+00:00")
    async with db.read() as conn:
        job_id = (await conn.execute(select(Job.id).where(Job.message_id == mid))).scalar_one()

    async def state() -> tuple[Any, ...]:
        async with db.read() as conn:
            job = (await conn.execute(select(Job.state, Job.locked_by).where(Job.id == job_id))).one()
            status = (await conn.execute(select(Message.status).where(Message.id == mid))).scalar_one()
            events = (
                await conn.execute(select(MessageEvent.state).where(MessageEvent.message_id == mid))
            ).scalars()
            return (*job, status, sorted(events))

    async with db.write() as conn:
        await conn.execute(
            text("UPDATE jobs SET state = 'running', locked_by = 'other' WHERE id = :id"), {"id": job_id}
        )
    before = await state()
    mine = ClaimedJob(id=job_id, message_id=mid, step="deliver", attempts=1, worker="me")
    written = await pg_steps.record_delivered(db, attempts=[], complete=[(mine, [])], now=now)
    assert written.ours == set()
    assert await state() == before  # the other instance's job, untouched

    async with db.write() as conn:
        await conn.execute(text("UPDATE jobs SET locked_by = 'me' WHERE id = :id"), {"id": job_id})
    before = await state()
    assert before[2] == "received"
    with pytest.raises(IllegalTransition):
        await pg_steps.record_delivered(db, attempts=[], complete=[(mine, [])], now=now)
    assert await state() == before  # rolled back: the job still running, no event


async def test_translate_write_runs_no_sqlalchemy_statement(aiohttp_client: Any, settings: Any) -> None:
    """PostgreSQL: a translated batch's write (look-ups, jobs finished, control numbers,
    documents, keys, order rows, acks, events, statuses, deliver jobs) runs on the
    session's asyncpg connection; SQLAlchemy only begins and commits it. On SQLite the
    whole write runs in the writer thread (no async engine statement either)."""
    sink = Flagged(TakesAll(), attempts=False)
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=sink)))
    ids = [await post(client, order_850("ACME", 470 + n, po=f"PO-W{n}")) for n in range(3)]
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # before the delivery: the claim and the translate write (on the write's tables:
        # a schedule's tick may run meanwhile)
        if not sink.handed and any(f" {t}" in statement for t in _WRITTEN):
            statements.append(" ".join(statement.split()))

    engine = client.app[DATABASE].engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await client.app[PIPELINE].run_one()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sink.handed
    # what is left: the claim of the translate jobs and the read of their messages
    # (steady state hands both over in memory), before the write
    claim = ("FOR UPDATE SKIP LOCKED", "UPDATE jobs SET state=", "SELECT messages.id, messages.direction")
    left = [s for s in statements if not any(c in s for c in claim)]
    assert left == [], left
    rows = await _rows(client, ids)
    assert [row[1] for row in rows] == ["acknowledged"] * 3


async def test_raw_begin_failure_is_a_storage_error(aiohttp_client: Any, settings: Any) -> None:
    """PostgreSQL: when the raw statements begin the session's transaction themselves
    (pg_raw.driver, before any SQLAlchemy statement) and the server has gone away, the
    error is an OperationalError the pipeline retries (503), as SQLAlchemy's own
    first statement would have raised."""
    from sqlalchemy.exc import OperationalError

    from gateway.db.engine import is_storage_error

    client = await aiohttp_client(build_app(settings))
    db = client.app[DATABASE]
    if db.is_sqlite:
        pytest.skip("the raw asyncpg statements are PostgreSQL's")
    with pytest.raises(OperationalError) as failed:
        async with db.begin() as session:
            conn = await session.connection()
            pg = (await conn.get_raw_connection()).driver_connection
            assert not pg.is_in_transaction()
            async with db.engine.connect() as other:
                await other.exec_driver_sql(f"SELECT pg_terminate_backend({pg.get_server_pid()})")
            await pg_raw.driver(session)
    assert is_storage_error(failed.value)
