"""Status writes go through the transition table (gateway.domain.states): a write
that finds the message in a state that may not move there raises, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway import pipeline_rows as rows
from gateway.db import schema
from gateway.db.engine import open_database
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
                insert(Message).values(
                    id="01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    direction="in",
                    partner_id="acme",
                    channel="rest",
                    kind="x12",
                    status="acknowledged",
                    raw_sha256="0" * 64,
                    raw_size=1,
                    received_at=now,
                    updated_at=now,
                )
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
