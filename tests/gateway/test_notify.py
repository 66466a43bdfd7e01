"""Cross-process wake-ups on PostgreSQL (gateway.db.notify): the intake's commit
notifies, a listener on another connection (another process in production) hears
it, and the listener comes back after its connection is killed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from intake_rig import accept_rest, running_intake

from gateway.db.notify import JobsListener, asyncpg_dsn

pytestmark = pytest.mark.postgres

WAIT = 30  # generous: a loaded machine; the test fails if the wake-up never comes


async def _next(queue: asyncio.Queue[None]) -> None:
    await asyncio.wait_for(queue.get(), WAIT)


async def test_an_intake_commit_wakes_a_listener_on_another_connection(
    pg_database: tuple[str, str], tmp_path: Path
) -> None:
    woken: asyncio.Queue[None] = asyncio.Queue()
    async with running_intake(tmp_path, pg_database[0]) as (pg_db, intake):
        listener = JobsListener(pg_db.engine.url, lambda: woken.put_nowait(None), retry_seconds=0.05)
        await listener.start()
        try:
            await asyncio.wait_for(listener.wait_listening(), WAIT)
            assert woken.empty()
            await accept_rest(intake, 1)
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
            await accept_rest(intake, 2)
            await _next(woken)
            assert listener.notifications == before + 1
        finally:
            await listener.stop()
