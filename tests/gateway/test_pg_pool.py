"""PostgreSQL's connection pool (gateway.db.engine): a connection taken from the pool
costs no round trip of its own, and one the server closed is replaced before use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.db.notify import asyncpg_dsn

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_db(pg_database: tuple[str, str]) -> AsyncIterator[Database]:
    db = open_database(pg_database[0])
    await schema.upgrade(db)
    yield db
    await db.close()


async def _backend_pid(db: Database) -> int:
    async with db.write() as conn:
        pid: int = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


async def test_a_pooled_connection_is_taken_without_a_ping(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[Any] = []
    real = pg_db.engine.dialect.do_ping
    monkeypatch.setattr(pg_db.engine.dialect, "do_ping", lambda conn: pings.append(conn) or real(conn))
    first = await _backend_pid(pg_db)
    second = await _backend_pid(pg_db)
    assert second == first  # the same pooled connection, taken again
    assert pings == []  # pool_pre_ping: BEGIN, an empty query and ROLLBACK on every checkout


async def test_a_connection_the_server_closed_is_replaced_before_use(pg_db: Database) -> None:
    first = await _backend_pid(pg_db)
    admin: Any = await asyncpg.connect(asyncpg_dsn(pg_db.engine.url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the loop reads the server's goodbye on the pooled connection
    second = await _backend_pid(pg_db)  # no error: the closed connection was not used
    assert second != first
