"""Two gateway processes translating the same interchange (same sender + ISA13) at
once on PostgreSQL: the second writer must end ``duplicate`` (TA1 025), not
``failed`` on the unique key of ``interchanges_seen``.

The race is made deterministic: "the other process" is a transaction that claimed
the first message's job and inserted its ``interchanges_seen`` row, left open until
our pipeline's write is seen waiting on that row's lock, then committed."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850
from sqlalchemy import func, select, text

from gateway.app import DATABASE, PIPELINE, build_app
from gateway.db import jobs
from gateway.db.models import InterchangeSeen, Job, Message, OutboxItem, utcnow

pytestmark = pytest.mark.postgres


async def post(client: Any, body: bytes) -> str:
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def waiting_on_lock(db: Any, timeout: float = 10.0) -> None:
    """Until a backend of this database waits for a row lock (our pipeline's insert)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with db.read() as conn:
            found = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        if found:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the pipeline never waited for the other writer's row")


async def race(client: Any, first: str, control: int, work: Any) -> None:
    """Claim ``first``'s job as another process would, insert its interchanges_seen
    row in a transaction left open, run ``work`` (our pipeline) until it waits on
    that row, then commit, and let ``work`` finish."""
    db = client.app[DATABASE]
    async with db.write() as conn:
        claimed = await jobs.claim_many(
            conn, worker="other-process", now=utcnow(), lease=timedelta(minutes=5), limit=1
        )
    assert [j.message_id for j in claimed] == [first]
    async with db.begin() as other:
        other.add(
            InterchangeSeen(
                partner_id="acme",
                sender="ZZ/ACME",
                control_number=f"{control:09d}",  # ISA13 as sent
                first_message_id=first,
                seen_at=utcnow(),
            )
        )
        await other.flush()
        task = asyncio.create_task(work)
        await waiting_on_lock(db)
    await asyncio.wait_for(task, 30)


async def status(client: Any, message_id: str) -> tuple[str, str | None]:
    async with client.app[DATABASE].read() as conn:
        row = (
            await conn.execute(select(Message.status, Message.reason).where(Message.id == message_id))
        ).one()
    return row.status, row.reason


@pytest.fixture
async def pg_client(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, pg_database: tuple[str, str]
) -> Any:
    url, _name = pg_database
    return await aiohttp_client(build_app(make_settings(tmp_path, partners_dir, url)))


async def test_second_writer_of_one_interchange_ends_duplicate(pg_client: Any) -> None:
    first = await post(pg_client, order_850("ACME", 300))
    second = await post(pg_client, order_850("ACME", 300))
    await race(pg_client, first, 300, pg_client.app[PIPELINE].run_one())
    state, reason = await status(pg_client, second)
    assert state == "duplicate", reason
    assert reason is not None and first in reason
    async with pg_client.app[DATABASE].read() as conn:
        [ta1] = (
            await conn.execute(
                select(OutboxItem.kind, OutboxItem.status, OutboxItem.payload).where(
                    OutboxItem.message_id == second
                )
            )
        ).all()
    assert ta1.kind == "TA1" and ta1.status == "pending"
    assert "TA1*000000300*" in ta1.payload and "*R*025" in ta1.payload


async def test_batch_with_a_racing_interchange_writes_the_others(
    pg_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch transaction fails on the unique key; written one by one, the racing
    message is a duplicate and the other one of its batch is translated. The fallback
    is a warning naming the error's type, not its text (which may quote partner data)."""
    caplog.set_level(logging.INFO, logger="gateway.pipeline")
    first = await post(pg_client, order_850("ACME", 310))
    second = await post(pg_client, order_850("ACME", 310))
    other = await post(pg_client, order_850("ACME", 311))
    await race(pg_client, first, 310, pg_client.app[PIPELINE].run_one())
    [fallback] = [r for r in caplog.records if "one by one" in r.getMessage()]
    assert fallback.levelno == logging.WARNING
    assert "IntegrityError" in fallback.getMessage() and "ACME" not in fallback.getMessage()
    assert (await status(pg_client, second))[0] == "duplicate"
    assert (await status(pg_client, other))[0] in ("translated", "acknowledged")
    async with pg_client.app[DATABASE].read() as conn:
        failed = (
            await conn.execute(select(func.count()).select_from(Job).where(Job.state == "failed"))
        ).scalar_one()
    assert failed == 0
