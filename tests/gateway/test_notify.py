"""Cross-process wake-ups on PostgreSQL (gateway.db.notify): the intake's commit
notifies, a listener on another connection (another process in production) hears
it, and the listener comes back after its connection is killed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.db.notify import JobsListener, asyncpg_dsn
from gateway.intake import Intake
from gateway.rawstore import RawStore

pytestmark = pytest.mark.postgres

WAIT = 30  # generous: a loaded machine; the test fails if the wake-up never comes


async def _body() -> AsyncIterator[bytes]:
    yield b"ISA*00~"


async def _accept(intake: Intake, n: int) -> str:
    result = await intake.accept(
        partner_id="acme",
        channel="rest",
        transport_id=f"n{n}",
        idempotency_key=None,
        body=_body(),
        limit=1024,
    )
    return result.message_id


async def _next(queue: asyncio.Queue[None]) -> None:
    await asyncio.wait_for(queue.get(), WAIT)


@pytest.fixture
async def pg_db(pg_database: tuple[str, str]) -> AsyncIterator[Database]:
    db = open_database(pg_database[0])
    await schema.upgrade(db)
    yield db
    await db.close()


async def test_an_intake_commit_wakes_a_listener_on_another_connection(
    pg_db: Database, tmp_path: Path
) -> None:
    rawstore = RawStore(tmp_path / "raw")
    rawstore.open_store()
    woken: asyncio.Queue[None] = asyncio.Queue()
    listener = JobsListener(pg_db.engine.url, lambda: woken.put_nowait(None), retry_seconds=0.05)
    await listener.start()
    intake = Intake(pg_db, rawstore)
    await intake.start()
    try:
        await asyncio.wait_for(listener.wait_listening(), WAIT)
        assert woken.empty()
        await _accept(intake, 1)
        await _next(woken)
        assert listener.notifications >= 1

        # The listener's connection dies (a PostgreSQL restart, a network cut): it
        # reconnects, looks once for what it may have missed, and hears the next commit.
        admin: Any = await asyncpg.connect(asyncpg_dsn(pg_db.engine.url))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'"
            )
        finally:
            await admin.close()
        assert killed == 1
        await _next(woken)  # the look after reconnecting
        await asyncio.wait_for(listener.wait_listening(), WAIT)
        before = listener.notifications
        await _accept(intake, 2)
        await _next(woken)
        assert listener.notifications == before + 1
    finally:
        await intake.stop()
        await listener.stop()
        rawstore.close()
