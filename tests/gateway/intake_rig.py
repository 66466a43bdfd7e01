"""A real intake on a real database (SQLite in tmp_path, or the PostgreSQL test
database) and raw store, for the tests of what it commits; and a REST accept of a
small body from partner acme."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.intake import AcceptResult, Intake
from gateway.rawstore import RawStore


@contextlib.asynccontextmanager
async def running_intake(
    tmp_path: Path, database_url: str | None = None, **options: Any
) -> AsyncIterator[tuple[Database, Intake]]:
    """(database, started intake); ``options`` go to :class:`Intake`. Stopped and
    closed at the end of the block."""
    db = open_database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    rawstore = RawStore(tmp_path / "raw")
    rawstore.open_store()
    try:
        await schema.upgrade(db)
        intake = Intake(db, rawstore, **options)
        await intake.start()
        try:
            yield db, intake
        finally:
            await intake.stop()
    finally:
        rawstore.close()
        await db.close()


async def accept_rest(
    intake: Intake, n: int, key: str | None = None, *, look_up_key: bool = True
) -> AcceptResult:
    """Accept ``ISA*<n>~`` from acme over REST, transport id ``r<n>``, with ``key`` as
    its idempotency key (none by default)."""

    async def body() -> AsyncIterator[bytes]:
        yield f"ISA*{n}~".encode()

    return await intake.accept(
        partner_id="acme",
        channel="rest",
        transport_id=f"r{n}",
        idempotency_key=key,
        body=body(),
        limit=1024,
        look_up_key=look_up_key,
    )
