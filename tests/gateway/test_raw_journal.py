"""Small payloads kept in the database (gateway.raw_journal, decisions 0018 and
0025): an accept batch's small bodies are rows of the commit that records their
messages, kept for good with no file; large ones are files. Journal rows from before
migration 0014 (``kept`` false, their files maybe unsynced) are replayed to files by
a start of their raw store, never by another's; kept rows are never touched there."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db import schema
from gateway.db.engine import Database, StorageUnavailable, open_database
from gateway.db.models import JournaledPayload, Message
from gateway.intake import Intake
from gateway.raw_journal import RawJournal
from gateway.rawstore import RawStore


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _open(tmp_path: Path, database_url: str | None) -> tuple[Database, RawStore, RawJournal, Intake]:
    db = open_database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await schema.upgrade(db)
    store = RawStore(tmp_path / "raw", spill_bytes=1024)
    store.open_store()
    journal = RawJournal(db, store)
    intake = Intake(db, store, journal=journal)
    await intake.start()
    return db, store, journal, intake


async def _accept(intake: Intake, data: bytes, n: int) -> Any:
    return await intake.accept(
        partner_id="acme",
        channel="rest",
        transport_id=f"r{n}",
        idempotency_key=None,
        body=_body(data),
        limit=1 << 20,
    )


async def _journaled(db: Database, *, kept: bool = True) -> dict[str, bytes]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(JournaledPayload.sha256, JournaledPayload.data).where(JournaledPayload.kept == kept)
            )
        ).all()
    return {sha: bytes(data) for sha, data in rows}


async def _old_rows(db: Database, store_id: str | None, bodies: list[bytes]) -> list[str]:
    """Journal rows as decision 0018 left them before migration 0014 (their files
    written unsynced, a checkpoint due): marked ``kept`` false by the migration."""
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    async with db.write() as conn:
        await conn.execute(
            JournaledPayload.__table__.insert(),
            [
                {"sha256": sha, "data": b, "store": store_id, "writer": "gone-1", "kept": False}
                for sha, b in zip(shas, bodies, strict=True)
            ],
        )
    return shas


async def test_small_bodies_are_kept_rows_of_the_batch_commit_and_large_ones_files(
    tmp_path: Path, database_url: str | None
) -> None:
    db, store, _journal, intake = await _open(tmp_path, database_url)
    try:
        bodies = [b"ISA*small-%d~" % n for n in range(12)]
        large = b"ISA*" + b"L" * 4096 + b"~"
        results = await asyncio.gather(*(_accept(intake, b, n) for n, b in enumerate([*bodies, large])))
        shas = [hashlib.sha256(b).hexdigest() for b in bodies]
        # The small ones are kept rows, committed with their messages...
        assert await _journaled(db) == dict(zip(shas, bodies, strict=True))
        # ...with no file and no journal segment (nothing but the commit to make durable);
        assert os.listdir(tmp_path / "raw" / "journal") == []
        assert not any(store.exists(sha) for sha in shas)
        # the large one is a synced file, as before.
        with store.open(hashlib.sha256(large).hexdigest()) as fh:
            assert fh.read() == large
        async with db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(Message)) == len(results)
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_a_start_replays_the_rows_from_before_0014_and_never_the_kept_ones(
    tmp_path: Path, database_url: str | None
) -> None:
    """A database upgraded after a crash: 0018's journal rows are the durable copy of
    files that may be gone or torn; a start rewrites them and deletes those rows only."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    bodies = [b"ISA*one~", b"ISA*two~", b"ISA*three~"]
    try:
        kept = b"ISA*accepted-since-0014~"
        await _accept(intake, kept, 1)
    finally:
        await intake.stop()
        store.close()
    shas = await _old_rows(db, journal.store_id, bodies)
    for sha, data in zip(shas, bodies, strict=True):
        store.path_for(sha).parent.mkdir(mode=0o700, exist_ok=True)
        store.path_for(sha).write_bytes(data)
    # What a power loss may do to files written but never synced: gone, or torn.
    store.path_for(shas[0]).unlink()
    store.path_for(shas[1]).write_bytes(b"ISA*tw")

    again = RawStore(tmp_path / "raw")
    again.open_store()
    try:
        assert await RawJournal(db, again).recover() == 2
        for sha, data in zip(shas, bodies, strict=True):
            assert again.path_for(sha).read_bytes() == data
        assert await _journaled(db, kept=False) == {}  # synced, so their rows are gone
        assert await _journaled(db) == {hashlib.sha256(kept).hexdigest(): kept}  # the kept one stays
        assert not again.exists(hashlib.sha256(kept).hexdigest())  # and has no file
    finally:
        again.close()
        await db.close()


async def test_a_payload_stored_beside_a_message_is_a_file_and_its_failure_fails_the_accept(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``also_store`` (AS2 keeps the received bytes as evidence) is published as a
    synced file, not kept as a row; when that file cannot be written the accept
    fails (503) and neither the message nor its small payload's row is committed."""
    db, store, _journal, intake = await _open(tmp_path, database_url)
    try:
        evidence = await store.stage(_body(b"evidence-1"), limit=1 << 20)
        await intake.accept(
            partner_id="acme",
            channel="as2",
            transport_id="m1",
            idempotency_key=None,
            body=_body(b"ISA*with-evidence~"),
            limit=1 << 20,
            also_store=[evidence],
        )
        assert store.path_for(evidence.sha256).read_bytes() == b"evidence-1"
        assert await _journaled(db) == {
            hashlib.sha256(b"ISA*with-evidence~").hexdigest(): b"ISA*with-evidence~"
        }

        def disk_full(refs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(store, "_publish", disk_full)
        evidence = await store.stage(_body(b"evidence-2"), limit=1 << 20)
        with pytest.raises(StorageUnavailable):
            await intake.accept(
                partner_id="acme",
                channel="as2",
                transport_id="m2",
                idempotency_key=None,
                body=_body(b"ISA*lost~"),
                limit=1 << 20,
                also_store=[evidence],
            )
        async with db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(Message)) == 1
        assert hashlib.sha256(b"ISA*lost~").hexdigest() not in await _journaled(db)
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def _peer(db: Database, raw: Path) -> tuple[RawStore, RawJournal]:
    """Another process on the same database, with its own raw directory (another host's
    disk, or another ``raw_dir``): its own store id, its own writer."""
    store = RawStore(raw, spill_bytes=1024)
    store.open_store()
    return store, RawJournal(db, store)


async def test_a_start_never_replays_rows_of_another_raw_store(
    tmp_path: Path, database_url: str | None
) -> None:
    """A process starting on the shared database must not delete a peer's journal rows
    from before 0014 whose files it cannot see: after a power cut on the peer's host
    those rows are the only copy of payloads already acknowledged."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    await intake.stop()
    body = b"ISA*acknowledged-on-host-a~"
    (sha,) = await _old_rows(db, journal.store_id, [body])
    other, other_journal = await _peer(db, tmp_path / "raw-host-b")
    try:
        assert other_journal.store_id != journal.store_id
        assert await other_journal.recover() == 0  # host B starts meanwhile
        assert not other.exists(sha)  # nothing of A's written on B's disk...
        assert await _journaled(db, kept=False) == {sha: body}  # ...and A's row kept
    finally:
        other.close()
        store.close()
    again = RawStore(tmp_path / "raw")
    again.open_store()
    try:
        assert await RawJournal(db, again).recover() == 1  # A starts: its row restores the file
        assert again.path_for(sha).read_bytes() == body
        assert await _journaled(db, kept=False) == {}
    finally:
        again.close()
        await db.close()


async def test_a_torn_file_from_before_0014_is_rewritten_from_its_row(
    tmp_path: Path, database_url: str | None
) -> None:
    """An old journal row whose file a power cut tore (or that a pruner held aside):
    the row, not the file, is the payload; the start writes it anew."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    await intake.stop()
    body = b"ISA*torn-before-the-upgrade~"
    (sha,) = await _old_rows(db, journal.store_id, [body])
    store.path_for(sha).parent.mkdir(mode=0o700, exist_ok=True)
    store.path_for(sha).write_bytes(body[:7])  # torn: the first page never reached the disk
    try:
        assert await RawJournal(db, store).recover() == 1
        with store.open(sha) as fh:
            assert fh.read() == body
        assert await _journaled(db, kept=False) == {}
    finally:
        store.close()
        await db.close()


async def test_the_rows_metric_counts_only_rows_waiting_for_replay(
    tmp_path: Path, database_url: str | None
) -> None:
    """``gateway_raw_journal_rows`` is the old journal rows not replayed yet (a raw store
    whose processes have not started since the upgrade), not the kept payloads."""
    from gateway.metrics import Metrics, render

    db, store, _journal, intake = await _open(tmp_path, database_url)
    try:
        await _accept(intake, b"ISA*kept-1~", 1)
        await _accept(intake, b"ISA*kept-2~", 2)
        await _old_rows(db, "another-store", [b"ISA*old~"])
        text = await render(db, Metrics())
        assert "\ngateway_raw_journal_rows 1\n" in text
    finally:
        await intake.stop()
        store.close()
        await db.close()


def test_a_killed_process_loses_nothing_and_a_peer_with_another_raw_dir_reads_its_payloads(
    tmp_path: Path, partners_dir: Path, pg_database: tuple[str, str]
) -> None:
    """Real processes on one PostgreSQL, each with its own data directory (as on two
    hosts): A acknowledges posts and is killed; no payload of A's is a file anywhere;
    B starts, leaves A's rows alone, and translates A's messages from them."""
    import signal
    import time

    import asyncpg
    from conftest import ACME_KEY, auth
    from gwsamples import order_850
    from test_service_process import free_port, start, stop, wait_ready

    url = pg_database[0]
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir), "GATEWAY_DATABASE_URL": url}

    async def rows() -> tuple[int, int]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            kept = int(await conn.fetchval("SELECT count(*) FROM raw_journal WHERE kept"))
            planned = int(await conn.fetchval("SELECT count(DISTINCT message_id) FROM documents"))
            return kept, planned
        finally:
            await conn.close()

    def post_all(port: int) -> list[bytes]:
        import urllib.request

        bodies = [order_850("ACME", 7000 + n) for n in range(20)]
        for body in bodies:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/partners/acme/edi", data=body, headers=auth(ACME_KEY)
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert resp.status == 202
        return bodies

    host_a, host_b = tmp_path / "a", tmp_path / "b"
    host_a.mkdir()
    host_b.mkdir()
    port = free_port()
    proc = start(host_a, port, workers=0, extra_env=env)
    try:
        wait_ready(port, proc)
        bodies = post_all(port)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert asyncio.run(rows()) == (len(bodies), 0)
    assert not list((host_a / "var" / "raw").glob("??/*"))  # the rows are the payloads

    proc = start(host_b, port, workers=2, extra_env=env)
    try:
        wait_ready(port, proc)
        for _ in range(300):  # B's pipeline claims A's jobs and plans them from the rows
            if asyncio.run(rows())[1] == len(bodies):
                break
            time.sleep(0.1)
        assert asyncio.run(rows()) == (len(bodies), len(bodies))
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert not list((host_b / "var" / "raw").glob("??/*"))
