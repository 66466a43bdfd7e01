"""The intake's batch on PostgreSQL as one statement (gateway.db.lean_pg): rows read
back exactly like rows SQLAlchemy's ``insert`` wrote (timestamps, JSON, JSON null,
values equal in every row sent once), a batch of one row, the new jobs' ids, and an
idempotency-key clash raised as SQLAlchemy's IntegrityError with nothing kept, a value
too long for its column refused (not cut), the wake-up sent only with a commit, and
the AUTOCOMMIT connection back in the pool as a transactional one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.db import lean_pg, schema
from gateway.db.engine import open_database
from gateway.db.models import Job, JournaledPayload, Message, MessageEvent

pytestmark = pytest.mark.postgres


def _rows(ids: list[str], at: datetime, partner: str = "acme") -> tuple[list[dict[str, Any]], ...]:
    messages = [
        {
            "id": i,
            "direction": "in",
            "partner_id": partner if n % 2 == 0 else "globex",  # varies in a batch of two or more
            "channel": "rest",
            "transport_id": f"req-{i}",
            "idempotency_key": None,
            "kind": "x12",
            "status": "received",
            "reason": None,
            "raw_sha256": "ab" * 32,
            "raw_size": 10 + n,
            "interchange_sender": None,
            "interchange_control": None,
            "received_at": at,
            "updated_at": at,
        }
        for n, i in enumerate(ids)
    ]
    events = [
        {"message_id": i, "at": at, "state": "received", "detail": None if n else {"sha256": "é", "n": [1]}}
        for n, i in enumerate(ids)
    ]
    jobs = [
        {
            "message_id": i,
            "step": "translate",
            "state": "ready",
            "attempts": 0,
            "locked_by": None,
            "locked_until": None,
            "next_attempt_at": at,
            "created_at": at,
            "updated_at": at,
        }
        for i in ids
    ]
    journaled = [
        {"sha256": "ab" * 32, "data": b"ISA*\x00" + i.encode(), "store": "s1", "writer": "w1"} for i in ids
    ]
    return journaled, messages, events, jobs


async def _read(conn: Any, ids: list[str], prefix: str) -> list[dict[str, Any]]:
    """The rows of messages ``ids``, their events and jobs, with the generated ids left
    out and the message ids' first letter replaced by ``prefix`` (to compare twins)."""
    out: list[dict[str, Any]] = []
    for model, key in ((Message, "id"), (MessageEvent, "message_id"), (Job, "message_id")):
        table = model.__table__
        found = await conn.execute(select(table).where(table.c[key].in_(ids)).order_by(table.c[key]))
        for row in found.mappings():
            values = {k: v for k, v in row.items() if k != "id" or model is Message}
            for name in ("id", "message_id", "transport_id"):
                if isinstance(values.get(name), str):
                    values[name] = values[name].replace(values[name].lstrip("req-")[0], prefix, 1)
            out.append(values)
    return out


async def test_one_statement_writes_what_sqlalchemy_writes(pg_database: tuple[str, str]) -> None:
    db = open_database(pg_database[0])
    at = datetime(2026, 12, 7, 11, 30, 5, 120, tzinfo=timezone(timedelta(hours=2)))
    try:
        await schema.upgrade(db)
        for size in (3, 1):
            theirs = [f"A{size}{n:024d}" for n in range(size)]
            ours = [f"B{size}{n:024d}" for n in range(size)]
            journaled, messages, events, jobs = _rows(theirs, at)
            async with db.write() as conn:
                await conn.execute(insert(JournaledPayload), journaled)
                await conn.execute(insert(Message), messages)
                await conn.execute(insert(MessageEvent), events)
                await conn.execute(insert(Job), jobs)
            journaled, messages, events, jobs = _rows(ours, at)
            async with db.write() as conn:
                ids = await lean_pg.insert_accept_batch(
                    conn, journaled, messages, events, jobs, returning=True
                )
            assert sorted(ids) == ours and all(isinstance(v, int) for v in ids.values())
            async with db.read() as conn:
                mine = await _read(conn, ours, "X")
                twin = await _read(conn, theirs, "X")
                data = (
                    (await conn.execute(select(JournaledPayload.data).order_by(JournaledPayload.id)))
                    .scalars()
                    .all()
                )
                job_ids = dict(
                    (await conn.execute(select(Job.message_id, Job.id).where(Job.message_id.in_(ours)))).all()
                )
            assert len(mine) == 3 * size and mine == twin
            assert ids == job_ids
            assert data[-size:] == [b"ISA*\x00" + i.encode() for i in ours]
        async with db.read() as conn:
            found = await conn.execute(text("SELECT detail::text FROM message_events ORDER BY id"))
            details = found.scalars().all()
        # the text in the table, whichever path wrote it: a None is the JSON null, as SQLAlchemy stores it
        assert details[:3] == details[3:6] and details[6] == details[7]
        assert details[4] == "null" and orjson.loads(details[3]) == {"sha256": "é", "n": [1]}
    finally:
        await db.close()


async def test_an_idempotency_key_clash_is_an_integrity_error_and_keeps_nothing(
    pg_database: tuple[str, str],
) -> None:
    db = open_database(pg_database[0])
    at = datetime.now(UTC)
    try:
        await schema.upgrade(db)
        journaled, messages, events, jobs = _rows(["C" * 26, "D" * 26], at)
        messages[0]["idempotency_key"] = messages[1]["idempotency_key"] = "k1"
        messages[1]["partner_id"] = messages[0]["partner_id"]
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await lean_pg.insert_accept_batch(conn, journaled, messages, events, jobs, returning=False)
        async with db.read() as conn:
            assert (await conn.execute(select(Message.id))).all() == []
            assert (await conn.execute(select(JournaledPayload.id))).all() == []
    finally:
        await db.close()


@pytest.mark.parametrize("too_long", ["transport_id", "store"])
async def test_a_value_too_long_for_its_column_is_refused_not_cut(
    pg_database: tuple[str, str], too_long: str
) -> None:
    """As SQLAlchemy's insert refuses it: an explicit cast to ``VARCHAR(255)`` would
    cut the value silently (a raw store id cut to 32 characters is never replayed by
    that store's recovery), and the batch is kept whole or not at all."""
    db = open_database(pg_database[0])
    try:
        await schema.upgrade(db)
        journaled, messages, events, jobs = _rows(["L" * 26, "M" * 26], datetime.now(UTC))
        if too_long == "store":
            for row in journaled:
                row["store"] = "s" * 33
        else:
            messages[1]["transport_id"] = "x" * 256
        with pytest.raises(DBAPIError, match="value too long"):
            await lean_pg.accept_batch(db, journaled, messages, events, jobs, returning=False, notify=False)
        async with db.read() as conn:
            assert (await conn.execute(select(Message.id))).all() == []
            assert (await conn.execute(select(JournaledPayload.id))).all() == []
    finally:
        await db.close()


async def test_the_wake_up_comes_with_the_commit_and_the_connection_goes_back_transactional(
    pg_database: tuple[str, str],
) -> None:
    """``accept_batch`` on its AUTOCOMMIT connection: one ``NOTIFY`` per committed batch,
    none for a batch that failed, and the pooled connection it used runs the next
    ``db.write()`` as a transaction again (a rollback there keeps nothing)."""
    db = open_database(pg_database[0], pool_size=1)
    listener = await asyncpg.connect(pg_database[0].replace("postgresql+asyncpg", "postgresql"))
    woken: list[str] = []
    await listener.add_listener("gateway_jobs", lambda *args: woken.append(args[-1]))
    try:
        await schema.upgrade(db)
        at = datetime.now(UTC)
        await lean_pg.accept_batch(db, *_rows(["N" * 26, "O" * 26], at), returning=False, notify=True)
        with pytest.raises(IntegrityError):  # the same message ids again
            await lean_pg.accept_batch(db, *_rows(["N" * 26], at), returning=False, notify=True)
        await lean_pg.accept_batch(db, *_rows(["P" * 26], at), returning=False, notify=False)
        for _ in range(50):
            await asyncio.sleep(0.02)
        assert woken == [""]
        _, messages, _, _ = _rows(["Q" * 26], at)
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await conn.execute(insert(Message), messages)
                raise RuntimeError("rolled back")
        async with db.read() as conn:
            stored = (await conn.execute(select(Message.id).order_by(Message.id))).scalars().all()
        assert stored == ["N" * 26, "O" * 26, "P" * 26]
    finally:
        await listener.close()
        await db.close()
