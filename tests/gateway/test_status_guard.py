"""Status writes go through the transition table (gateway.domain.states): a write
that finds the message in a state that may not move there raises, and writes nothing;
also the translate batch's status updates, written together at its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gwsamples import message_row
from sqlalchemy import insert, select

from gateway import pipeline_rows as rows
from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.db.models import Message, MessageEvent, utcnow
from gateway.domain.states import IllegalTransition


def _url(database_url: str | None, tmp_path: Path) -> str:
    return database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


async def test_guarded_status_write(database_url: str | None, tmp_path: Path) -> None:
    db = open_database(_url(database_url, tmp_path))
    now = utcnow()
    try:
        await schema.upgrade(db)
        async with db.begin() as session:
            await session.execute(
                insert(Message).values(message_row("01HZZZZZZZZZZZZZZZZZZZZZZZ", "acknowledged", now))
            )
        with pytest.raises(IllegalTransition, match="acknowledged -> delivered"):
            async with db.begin() as session:
                await rows.set_status(session, "01HZZZZZZZZZZZZZZZZZZZZZZZ", "delivered", now, None, None)
        with pytest.raises(IllegalTransition, match="acknowledged -> partly_delivered"):
            async with db.begin() as session:
                await rows.set_status(
                    session,
                    "01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    "partly_delivered",
                    now,
                    None,
                    None,
                    old="acknowledged",
                )
        async with db.begin() as session:  # a replay is legal from every state
            await rows.set_status(
                session, "01HZZZZZZZZZZZZZZZZZZZZZZZ", "received", now, None, {"replay": True}
            )
        async with db.read() as conn:
            assert (await conn.execute(select(Message.status))).scalar_one() == "received"
            assert (await conn.execute(select(MessageEvent.state))).scalars().all() == ["received"]
    finally:
        await db.close()


async def _batched(db: Database, moves: list[tuple[str, str, str]], *, lean: bool = True) -> None:
    """(message, old state as read before, new state) written as the translate batch
    writes them: buffered in its BatchWrites, flushed together (on SQLite in the
    writer thread's transaction, on PostgreSQL on the asyncpg connection; ``lean=False``
    on SQLite: SQLAlchemy's async session, the fallback)."""
    now = utcnow()

    async def work(session: Any) -> None:
        writes = await rows.BatchWrites.begin(session, [m for m, _, _ in moves], [])
        for message_id, old, new in moves:
            await rows.set_status(session, message_id, new, now, None, None, old=old)
        await writes.flush(session)
        await rows.flush_events(session)

    if db.writer is not None and lean:
        await db.lean_session(work)
    else:
        async with db.begin() as session:
            await work(session)


async def test_the_translate_batchs_status_updates_are_guarded(
    database_url: str | None, tmp_path: Path
) -> None:
    """The batch checks each move against the state it read before; the UPDATE is
    guarded too (a message moved since, e.g. by a replay or another process, is not
    overwritten): the whole batch raises and writes nothing, and the pipeline then
    writes its messages one by one."""
    db = open_database(_url(database_url, tmp_path))
    now = utcnow()
    a, b, c = (f"01HZZZZZZZZZZZZZZZZZZZZZZ{n}" for n in "ABC")
    try:
        await schema.upgrade(db)
        async with db.begin() as session:
            await session.execute(
                insert(Message),
                [
                    message_row(a, "received", now),
                    message_row(b, "quarantined", now),
                    message_row(c, "received", now),
                ],
            )
        for lean in (True, False) if db.writer is not None else (True,):
            with pytest.raises(IllegalTransition, match=f"translated is not a legal transition .*{b}"):
                await _batched(db, [(a, "received", "translated"), (b, "received", "translated")], lean=lean)
        # A message that is not there at all (the SQLAlchemy path's bulk update by key
        # noticed it; the raw ones did not): the same error on every path.
        gone = "01HZZZZZZZZZZZZZZZZZZZZZZD"
        with pytest.raises(IllegalTransition, match=gone):
            await _batched(db, [(a, "received", "translated"), (gone, "received", "translated")])
        async with db.read() as conn:
            found = {r.id: r.status for r in await conn.execute(select(Message.id, Message.status))}
            assert found == {a: "received", b: "quarantined", c: "received"}
            assert (await conn.execute(select(MessageEvent.state))).scalars().all() == []
        await _batched(db, [(a, "received", "translated"), (c, "received", "failed")])
        async with db.read() as conn:
            found = {r.id: r.status for r in await conn.execute(select(Message.id, Message.status))}
        assert found == {a: "translated", b: "quarantined", c: "failed"}
    finally:
        await db.close()
