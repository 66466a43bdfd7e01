"""An identifier the messages table cannot hold on PostgreSQL (over 255 characters,
a NUL) is refused for its own accept, before it joins a group commit: on PostgreSQL
it failed every accept of its batch, other partners' included, while SQLite stored
it. Transports check their identifiers first (REST, AS2, the SFTP poller and drop
box); this is the guard behind them, the same on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from intake_rig import running_intake
from sqlalchemy import select

from gateway.db.models import Message
from gateway.intake import Intake, UnstorableIdentifier


async def _accept(intake: Intake, n: int, transport_id: str, key: str | None = None) -> str:
    async def body() -> AsyncIterator[bytes]:
        yield f"ISA*{n}~".encode()

    accepted = await intake.accept(
        partner_id="acme", channel="sftp", transport_id=transport_id, idempotency_key=key,
        body=body(), limit=1024,
    )  # fmt: skip
    return accepted.message_id


async def test_an_unstorable_identifier_fails_only_its_own_accept(
    tmp_path: Path, database_url: str | None
) -> None:
    async with running_intake(tmp_path, database_url) as (db, intake):
        results = await asyncio.gather(
            _accept(intake, 1, "ok-1.edi"),
            _accept(intake, 2, "x" * 256),
            _accept(intake, 3, "nul\x00.edi"),
            _accept(intake, 4, "ok-4.edi", key="k" * 256),
            _accept(intake, 5, "y" * 255, key="k" * 255),
            # A lone surrogate (a name decoded with surrogateescape) no driver can encode.
            _accept(intake, 6, "bad-\udcff.edi"),
            return_exceptions=True,
        )
        async with db.read() as conn:
            stored = (await conn.execute(select(Message.transport_id))).scalars().all()
    assert [type(r) for r in (*results[1:4], results[5])] == [UnstorableIdentifier] * 4
    assert all(isinstance(r, str) for r in (results[0], results[4]))
    assert sorted(stored) == ["ok-1.edi", "y" * 255]
    assert "over 255 characters, with a NUL or not UTF-8" in str(results[1])
