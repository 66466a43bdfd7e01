"""Review of decision 0025 (small payloads kept as ``raw_journal`` rows), on SQLite and
PostgreSQL: a payload accepted many times is read once, not once per copy; and a
replay that saw the payload cannot be left without it by a prune running meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import ACME_KEY, auth, make_settings
from sqlalchemy import delete, event, func, select, update
from test_retention import storage

from gateway import retention
from gateway.app import BLOBS, DATABASE, PARTNERS, PIPELINE, RAWSTORE, build_app
from gateway.db.models import Job, JournaledPayload, Message, utcnow
from gateway.pipeline_replay import ReplayRefused

COPIES = 150


async def _post(client: Any, body: bytes) -> str:
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def test_a_payload_accepted_many_times_is_read_once(client: Any) -> None:
    """The same bytes accepted again are a new message with a row of its own (one per
    accept): a reader by hash must load one copy, not all of them (150 x 60 KiB here;
    a partner resending one document could make it any number)."""
    body = b"ISA*" + b"7" * 60_000 + b"~"
    sha = hashlib.sha256(body).hexdigest()
    await _post(client, body)
    db, blobs = client.app[DATABASE], client.app[BLOBS]
    row = {"sha256": sha, "data": body, "store": None, "writer": None}
    async with db.write() as conn:  # the rows further accepts of the same bytes add
        await conn.execute(JournaledPayload.__table__.insert(), [row] * (COPIES - 1))

    for read in (blobs.read(sha), blobs.read_rows([sha]), blobs.locate(sha)):
        tracemalloc.start()
        try:
            found = await read
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert found in (body, {sha: body})
        assert peak < 20 * len(body), f"{peak:,} bytes traced to read one {len(body):,}-byte payload"


class _PausingBlobs:
    """The real adapter, pausing after ``exists`` answered (where a replay has decided
    the payload is there and not yet committed)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.checked = asyncio.Event()
        self.go = asyncio.Event()

    async def exists(self, sha256: str) -> bool:
        found = bool(await self.real.exists(sha256))
        self.checked.set()
        await self.go.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_a_prune_during_a_replay_never_leaves_it_without_its_payload(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    """Retention's row pass reads a settled old message's row, a replay of that message
    checks its payload is there, the prune deletes: the replay must then be refused,
    or the row must stay. A replay that goes ahead with its payload deleted sends the
    message into retries that can never succeed."""
    settings = make_settings(tmp_path, partners_dir, database_url, **storage(raw_retention_days=30))
    client = await aiohttp_client(build_app(settings))
    db, pipeline = client.app[DATABASE], client.app[PIPELINE]
    body = b"ISA*replayed-while-pruned~"
    message_id = await _post(client, body)
    old = utcnow() - timedelta(days=40)
    async with db.write() as conn:
        await conn.execute(delete(Job).where(Job.message_id == message_id))
        await conn.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status="failed", received_at=old, updated_at=old)
        )
    real = pipeline.blobs
    pausing = pipeline.blobs = _PausingBlobs(real)
    try:
        replay = asyncio.create_task(pipeline.replay(message_id))
        await asyncio.wait_for(pausing.checked.wait(), 10)
        prune = asyncio.create_task(
            retention.prune(db, client.app[RAWSTORE], settings, partners=client.app[PARTNERS]())
        )
        await asyncio.wait({prune}, timeout=1.5)  # done here unless it waits for the replay
        pausing.go.set()
        try:
            await replay
            replayed = True
        except ReplayRefused:
            replayed = False
        report = await asyncio.wait_for(prune, 30)
    finally:
        pipeline.blobs = real
    async with db.read() as conn:
        status = (await conn.execute(select(Message.status).where(Message.id == message_id))).scalar_one()
    payload = await real.read(hashlib.sha256(body).hexdigest())
    if replayed:
        assert payload == body, f"replayed (now {status}) with its payload deleted ({report.summary()})"
        assert report.raw_rows == 0
    else:
        assert payload is None and status == "failed"


async def test_the_row_pass_stops_at_rows_newer_than_the_cutoff(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    """Rows are committed with their messages, so ids follow acceptance: a prune reads
    the rows it may delete and one batch of newer ones, not every row kept (with
    months of small payloads, every row on every prune)."""
    settings = make_settings(tmp_path, partners_dir, database_url, **storage(raw_retention_days=30))
    client = await aiohttp_client(build_app(settings))
    db = client.app[DATABASE]
    old_body = b"ISA*old-and-settled~"
    old_id = await _post(client, old_body)
    old = utcnow() - timedelta(days=40)
    async with db.write() as conn:
        await conn.execute(delete(Job).where(Job.message_id == old_id))
        await conn.execute(
            update(Message)
            .where(Message.id == old_id)
            .values(status="acknowledged", received_at=old, updated_at=old)
        )
    newer = 2 * retention.LOOKUP_BATCH
    for start in range(0, newer, 50):
        await asyncio.gather(*(_post(client, b"ISA*newer-%d~" % n) for n in range(start, start + 50)))
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM raw_journal" in statement:
            reads.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        report = await retention.prune(db, client.app[RAWSTORE], settings, partners=client.app[PARTNERS]())
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert (report.raw_rows, report.raw_row_bytes) == (1, len(old_body))
    assert len(reads) == 2, f"{len(reads)} reads of raw_journal for 1 + {newer} rows"
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(JournaledPayload))).scalar_one() == newer


def test_a_kill_mid_accept_on_postgres_leaves_every_message_with_its_payload(
    tmp_path: Path, partners_dir: Path, pg_database: tuple[str, str]
) -> None:
    """A real process on PostgreSQL SIGKILLed while posts stream in (SQLite's run is
    test_service_process's mid-stream kill): every 202 has its message, and every
    message (acknowledged or not) has its payload's row, whole, committed with it."""
    import signal

    import aiohttp
    import asyncpg
    from gwsamples import order_850
    from test_service_process import free_port, start, wait_ready

    url = pg_database[0]
    port = free_port()
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir), "GATEWAY_DATABASE_URL": url}
    proc = start(tmp_path, port, workers=0, extra_env=env)
    accepted: list[str] = []

    async def stream() -> None:
        async with aiohttp.ClientSession() as session:

            async def one(n: int) -> None:
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/partners/acme/edi",
                        data=order_850("ACME", 8000 + n),
                        headers=auth(ACME_KEY),
                    ) as resp:
                        if resp.status == 202:
                            accepted.append((await resp.json())["message_id"])
                except (aiohttp.ClientError, OSError):
                    pass  # not acknowledged: the partner would send it again

            tasks = []
            for n in range(300):
                tasks.append(asyncio.create_task(one(n)))
                if n == 120:
                    proc.send_signal(signal.SIGKILL)
                await asyncio.sleep(0.002)
            await asyncio.gather(*tasks)

    async def stored() -> tuple[dict[str, str], dict[str, set[str]]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            messages = {
                r["id"]: r["raw_sha256"] for r in await conn.fetch("SELECT id, raw_sha256 FROM messages")
            }
            rows: dict[str, set[str]] = {}
            for r in await conn.fetch("SELECT sha256, data FROM raw_journal WHERE kept"):
                rows.setdefault(r["sha256"], set()).add(hashlib.sha256(r["data"]).hexdigest())
            return messages, rows
        finally:
            await conn.close()

    try:
        wait_ready(port, proc)
        asyncio.run(stream())
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert accepted, "nothing was accepted before the kill"
    messages, rows = asyncio.run(stored())
    assert [m for m in accepted if m not in messages] == [], "a 202 without its message"
    assert [m for m, sha in messages.items() if rows.get(sha) != {sha}] == [], "a message without its payload"
    assert len(rows) == len(messages)  # no row without its message either (one body per post)
