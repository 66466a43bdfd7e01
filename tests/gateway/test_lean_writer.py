"""The lean write path on SQLite (gateway.db.writer, gateway.db.lean): rows written
with plain sqlite3 read back through SQLAlchemy exactly like rows SQLAlchemy wrote
(timestamps, JSON, JSON null), constraint errors come back as SQLAlchemy's, a failed
batch writes nothing, and the intake commits through it in one transaction per batch."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from intake_rig import accept_rest, running_intake
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from gateway.db import lean, lean_steps, schema
from gateway.db.engine import open_database
from gateway.db.ids import new_id
from gateway.db.models import Job, Message, MessageEvent, OutboxItem
from gateway.domain.states import IllegalTransition, OutboxStatus
from gateway.intake import ExtraRow


def _message(message_id: str, at: datetime, key: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": "in",
        "partner_id": "acme",
        "channel": "rest",
        "transport_id": None,
        "idempotency_key": key,
        "kind": "x12",
        "status": "received",
        "reason": None,
        "raw_sha256": "0" * 64,
        "raw_size": 1,
        "interchange_sender": None,
        "interchange_control": None,
        "received_at": at,
        "updated_at": at,
    }


def _events(message_id: str, at: datetime) -> list[dict[str, Any]]:
    return [
        {"message_id": message_id, "at": at, "state": "received", "detail": None},
        {"message_id": message_id, "at": at, "state": "parsed", "detail": {"sets": [1, 2], "note": "é"}},
    ]


async def test_rows_match_what_sqlalchemy_writes(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    assert db.writer is not None
    # not UTC on purpose: stored as UTC, like the UTCDateTime column does
    at = datetime(2026, 12, 7, 11, 30, 5, 120, tzinfo=timezone(timedelta(hours=2)))
    try:
        await schema.upgrade(db)
        async with db.write() as conn:
            await conn.execute(insert(Message), [_message("A" * 26, at)])
            await conn.execute(insert(MessageEvent), _events("A" * 26, at))

        def write(conn: sqlite3.Connection) -> None:
            lean.insert(conn, Message, [_message("B" * 26, at)])
            lean.insert(conn, MessageEvent, _events("B" * 26, at))

        await db.lean_write(write)
        assert db.writer.transactions == 1
        async with db.read() as conn:
            raw = (
                await conn.execute(
                    text("SELECT message_id, at, detail FROM message_events ORDER BY message_id, id")
                )
            ).all()
            events = (
                await conn.execute(
                    select(MessageEvent.message_id, MessageEvent.at, MessageEvent.detail).order_by(
                        MessageEvent.message_id, MessageEvent.id
                    )
                )
            ).all()
            received = (await conn.execute(select(Message.received_at).order_by(Message.id))).scalars().all()
        # byte for byte the same text in the file, whichever path wrote it
        assert [r[1:] for r in raw[:2]] == [r[1:] for r in raw[2:]]
        assert raw[0][2] == "null"  # a None in a JSON column is JSON null, as SQLAlchemy stores it
        assert [e[1:] for e in events[:2]] == [e[1:] for e in events[2:]]
        assert events[3].detail == {"sets": [1, 2], "note": "é"}
        assert received == [at.astimezone(UTC), at.astimezone(UTC)]
    finally:
        await db.close()


async def test_a_failed_batch_writes_nothing_and_raises_sqlalchemy_errors(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    at = datetime.now(UTC)
    try:
        await schema.upgrade(db)
        await db.lean_write(partial(lean.insert, model=Message, rows=[_message("A" * 26, at, "k1")]))

        def clash(conn: sqlite3.Connection) -> None:
            lean.insert(conn, Message, [_message("B" * 26, at)])
            lean.insert(conn, Message, [_message("C" * 26, at, "k1")])  # same idempotency key

        with pytest.raises(IntegrityError):
            await db.lean_write(clash)
        # the writer goes on after the rollback; the batch's first row was not kept
        await db.lean_write(lambda conn: lean.insert(conn, Message, [_message("D" * 26, at)]))
        async with db.read() as conn:
            ids = (await conn.execute(select(Message.id).order_by(Message.id))).scalars().all()
        assert ids == ["A" * 26, "D" * 26]
    finally:
        await db.close()


async def test_intake_commits_a_batch_in_one_lean_transaction(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as (db, intake):
        results = await asyncio.gather(*(accept_rest(intake, n) for n in range(20)))
        assert db.writer is not None
        assert db.writer.transactions == intake.batches < 20  # grouped, one transaction each
        async with db.read() as conn:
            jobs = (await conn.execute(select(Job.message_id, Job.step, Job.state))).all()
            events = (await conn.execute(select(MessageEvent.message_id, MessageEvent.detail))).all()
        assert sorted(j.message_id for j in jobs) == sorted(r.message_id for r in results)
        assert {(j.step, j.state) for j in jobs} == {("translate", "ready")}
        assert len(events) == 20
        assert {(e.detail["channel"], e.detail["size"]) for e in events} == {("rest", 6), ("rest", 7)}


async def test_intake_commits_a_callers_extra_rows_in_the_same_lean_transaction(tmp_path: Path) -> None:
    """AS2's MDN record (an event, and an outbox row for an asynchronous MDN) is part
    of the writer's batch, after the message's own rows; a replayed key writes none."""
    at = datetime.now(UTC)

    def extra(n: int, message_id: str) -> list[ExtraRow]:
        rows: list[ExtraRow] = [
            (MessageEvent, {"message_id": message_id, "at": at, "state": "mdn_sent", "detail": {"n": n}})
        ]
        if n % 2:
            rows.append((OutboxItem, _outbox(message_id, at)))
        return rows

    async def accept(n: int, key: str) -> Any:
        async def body() -> Any:
            yield f"ISA*{key}~".encode()

        return await intake.accept(
            partner_id="acme",
            channel="as2",
            transport_id=key,
            idempotency_key=key,
            body=body(),
            limit=1024,
            look_up_key=False,
            also=partial(extra, n),
        )

    async with running_intake(tmp_path) as (db, intake):
        results = await asyncio.gather(*(accept(n, f"m{n}") for n in range(20)))
        assert db.writer is not None
        assert db.writer.transactions == intake.batches < 20  # grouped, one transaction each
        again = await accept(99, "m3")  # the same key and body: the earlier message, nothing new
        assert (again.created, again.message_id) == (False, results[3].message_id)
        async with db.read() as conn:
            events = (
                await conn.execute(
                    select(MessageEvent.message_id, MessageEvent.state, MessageEvent.detail).order_by(
                        MessageEvent.id
                    )
                )
            ).all()
            outbox = (await conn.execute(select(OutboxItem.message_id, OutboxItem.status))).all()
        for n, result in enumerate(results):
            mine = [(e.state, e.detail) for e in events if e.message_id == result.message_id]
            assert [state for state, _ in mine] == ["received", "mdn_sent"]
            assert mine[1][1] == {"n": n}
        assert sorted(outbox) == sorted((r.message_id, "pending") for r in results[1::2])


def _outbox(message_id: str, at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "partner_id": "acme",
        "message_id": message_id,
        "kind": "MDN",
        "channel": "as2",
        "payload": "{}",
        "interchange_control": None,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "sent_at": None,
        "locked_by": None,
    }


def _job(message_id: str, at: datetime, **over: Any) -> dict[str, Any]:
    row = {
        "message_id": message_id,
        "step": "deliver",
        "state": "ready",
        "attempts": 0,
        "next_attempt_at": at,
        "locked_by": None,
        "locked_until": None,
        "created_at": at,
        "updated_at": at,
    }
    return {**row, **over}


async def test_claim_and_record_delivered_keep_leases_and_guards(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    now = datetime.now(UTC)
    ids = [c * 26 for c in "ABCD"]
    try:
        await schema.upgrade(db)

        def setup(conn: sqlite3.Connection) -> None:
            lean.insert(conn, Message, [{**_message(m, now), "status": "translated"} for m in ids])
            # B has a second job running under a live lease elsewhere: B is not claimable now
            lean.insert(
                conn, Job, [_job(m, now - timedelta(seconds=len(ids) - n)) for n, m in enumerate(ids)]
            )
            lean.insert(
                conn,
                Job,
                [
                    _job(
                        ids[1],
                        now,
                        state="running",
                        locked_by="other",
                        locked_until=now + timedelta(minutes=1),
                    )
                ],
            )

        await db.lean_write(setup)
        claimed = await lean_steps.claim(db, worker="me", now=now, lease=timedelta(seconds=30), limit=10)
        assert [c.message_id for c in claimed] == [ids[0], ids[2], ids[3]]  # oldest first, B skipped
        assert {c.attempts for c in claimed} == {1}
        assert await lean_steps.claim(db, worker="me", now=now, lease=timedelta(seconds=30), limit=10) == []

        # D's job is taken over (lease lost): nothing of D is written, the others are.
        async with db.write() as conn:
            await conn.execute(
                text("UPDATE jobs SET locked_by = 'other' WHERE id = :id"), {"id": claimed[2].id}
            )
        a, c, d = claimed
        written = await db.lean_write(
            partial(lean_steps.record_delivered, attempts=[], complete=[(a, []), (c, []), (d, [])], now=now)
        )
        assert written.ours == {a.id, c.id}
        async with db.read() as conn:
            status = dict((await conn.execute(select(Message.id, Message.status))).all())
        assert status == {
            ids[0]: "acknowledged",
            ids[1]: "translated",
            ids[2]: "acknowledged",
            ids[3]: "translated",
        }

        # A guarded transition: B sits in a state that may not move to acknowledged.
        async with db.write() as conn:
            await conn.execute(text("UPDATE messages SET status = 'failed' WHERE id = :id"), {"id": ids[1]})
            await conn.execute(
                text("UPDATE jobs SET state = 'running', locked_by = 'me' WHERE message_id = :id"),
                {"id": ids[1]},
            )
            b_job = (await conn.execute(select(Job.id).where(Job.message_id == ids[1]).limit(1))).scalar_one()
        b = lean_steps.ClaimedJob(id=b_job, message_id=ids[1], step="deliver", attempts=1, worker="me")
        with pytest.raises(IllegalTransition):
            await db.lean_write(
                partial(lean_steps.record_delivered, attempts=[], complete=[(b, [])], now=now)
            )
        async with db.read() as conn:
            state = (await conn.execute(select(Job.state).where(Job.id == b_job))).scalar_one()
        assert state == "running"  # rolled back: the job was not finished either
    finally:
        await db.close()


async def test_callers_that_go_away_leave_the_committer_running(
    tmp_path: Path, database_url: str | None
) -> None:
    """A caller cancelled while its accept waits for the commit (a client gone) cancels
    only its own wait: its message is still committed with the batch, also in a batch
    that settles one accept at a time after a key clash, and the next accept works."""

    # look_up_key=False: the clash is found by the commit, which then settles one accept at a time
    accept = partial(accept_rest, look_up_key=False)

    async with running_intake(tmp_path, database_url) as (db, intake):
        callers = [asyncio.create_task(accept(intake, n, "same")) for n in range(2)]
        while intake.batches == 0 and (intake._queue.qsize() or not all(c._fut_waiter for c in callers)):  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        for caller in callers:
            caller.cancel()
        for caller in callers:
            with pytest.raises(asyncio.CancelledError):
                await caller
        async with asyncio.timeout(10):  # a dead committer would leave it waiting
            later = await accept(intake, 9, None)
        assert later.created
        async with db.read() as conn:
            stored = (await conn.execute(select(Message.transport_id).order_by(Message.id))).scalars().all()
        assert stored[0] in ("r0", "r1") and stored[1:] == ["r9"]  # the key's first, then the later one
