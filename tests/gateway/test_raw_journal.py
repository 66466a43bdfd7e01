"""The database journal of small payloads (gateway.raw_journal, decision 0018): an
accept batch's small bodies are rows of the commit that records their messages (no
journal segment, no second sync), their files exist before that commit, a
checkpoint syncs the files and deletes the rows, a start restores files a crash
lost from the rows, and a failed placement acknowledges nothing."""

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
from gateway.rawstore import RawRef, RawStore


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _open(tmp_path: Path, database_url: str | None) -> tuple[Database, RawStore, RawJournal, Intake]:
    db = open_database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await schema.upgrade(db)
    store = RawStore(tmp_path / "raw", spill_bytes=1024)
    store.open_store()
    journal = RawJournal(db, store, seconds=3600)  # checkpoints only when a test asks
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


async def _journaled(db: Database) -> dict[str, bytes]:
    async with db.read() as conn:
        rows = (await conn.execute(select(JournaledPayload.sha256, JournaledPayload.data))).all()
    return {sha: bytes(data) for sha, data in rows}


async def test_small_bodies_are_rows_of_the_batch_commit_and_large_ones_files(
    tmp_path: Path, database_url: str | None
) -> None:
    db, store, journal, intake = await _open(tmp_path, database_url)
    try:
        bodies = [b"ISA*small-%d~" % n for n in range(12)]
        large = b"ISA*" + b"L" * 4096 + b"~"
        results = await asyncio.gather(*(_accept(intake, b, n) for n, b in enumerate([*bodies, large])))
        shas = [hashlib.sha256(b).hexdigest() for b in bodies]
        # The small ones are in the journal table, committed with their messages...
        assert await _journaled(db) == dict(zip(shas, bodies, strict=True))
        # ...not in a journal segment (no second durable sync on the way to the 202),
        assert os.listdir(tmp_path / "raw" / "journal") == []
        # and every file exists already, for the readers that open files.
        for sha, data in zip([*shas, hashlib.sha256(large).hexdigest()], [*bodies, large], strict=True):
            with store.open(sha) as fh:
                assert fh.read() == data
        async with db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(Message)) == len(results)

        assert await journal.checkpoint() == len(bodies)
        assert await _journaled(db) == {}
        with store.open(shas[0]) as fh:
            assert fh.read() == bodies[0]
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_a_start_restores_the_files_a_crash_lost_from_the_rows(
    tmp_path: Path, database_url: str | None
) -> None:
    db, store, _journal, intake = await _open(tmp_path, database_url)
    bodies = [b"ISA*one~", b"ISA*two~", b"ISA*three~"]
    try:
        for n, data in enumerate(bodies):
            await _accept(intake, data, n)
    finally:
        await intake.stop()
        store.close()
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    # What a power loss may do to files written but never synced: gone, or torn.
    store.path_for(shas[0]).unlink()
    store.path_for(shas[1]).write_bytes(b"ISA*tw")

    again = RawStore(tmp_path / "raw")
    again.open_store()
    try:
        assert await RawJournal(db, again).recover() == 2
        for sha, data in zip(shas, bodies, strict=True):
            assert again.path_for(sha).read_bytes() == data
        assert await _journaled(db) == {}  # synced, so the rows are gone
    finally:
        again.close()
        await db.close()


async def test_a_placement_that_fails_acknowledges_nothing(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, store, _journal, intake = await _open(tmp_path, database_url)

    def disk_full(refs: list[RawRef]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "place_unsynced", disk_full)
    try:
        with pytest.raises(StorageUnavailable):
            await _accept(intake, b"ISA*lost~", 1)
        async with db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(Message)) == 0
        assert await _journaled(db) == {}
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_a_checkpoint_deletes_only_the_rows_this_process_synced(
    tmp_path: Path, database_url: str | None
) -> None:
    """Another process's rows (its files maybe on its own host's cache) stay until a
    start replays them; this process's own rows go once synced."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    theirs = b"ISA*another-process~"
    try:
        async with db.write() as conn:
            await conn.execute(
                JournaledPayload.__table__.insert(),
                [{"sha256": hashlib.sha256(theirs).hexdigest(), "data": theirs}],
            )
        ours = b"ISA*ours~"
        await _accept(intake, ours, 1)
        assert await journal.checkpoint() == 1
        assert await _journaled(db) == {hashlib.sha256(theirs).hexdigest(): theirs}
        assert await journal.checkpoint() == 0  # nothing new committed here
        # A start replays what is left: the file is written durably, the row goes.
        assert await RawJournal(db, store).recover() == 1
        assert await _journaled(db) == {}
        with store.open(hashlib.sha256(theirs).hexdigest()) as fh:
            assert fh.read() == theirs
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def _peer(db: Database, raw: Path) -> tuple[RawStore, RawJournal, Intake]:
    """Another process on the same database, with its own raw directory (another host's
    disk, or another ``raw_dir``): its own store id, its own writer."""
    store = RawStore(raw, spill_bytes=1024)
    store.open_store()
    journal = RawJournal(db, store, seconds=3600)
    intake = Intake(db, store, journal=journal)
    await intake.start()
    return store, journal, intake


async def test_a_start_never_replays_rows_of_another_raw_store(
    tmp_path: Path, database_url: str | None
) -> None:
    """A process starting on the shared database must not delete the rows of a peer
    whose files it cannot see: after a power cut on the peer's host those rows are the
    only copy of payloads already acknowledged."""
    db, store, _journal, intake = await _open(tmp_path, database_url)
    body = b"ISA*acknowledged-on-host-a~"
    sha = hashlib.sha256(body).hexdigest()
    other, other_journal, other_intake = await _peer(db, tmp_path / "raw-host-b")
    try:
        await _accept(intake, body, 1)  # host A commits, then loses power before its checkpoint
        assert other_journal.store_id != _journal.store_id
        assert await RawJournal(db, other).recover() == 0  # host B starts meanwhile
        assert not other.exists(sha)  # nothing of A's written on B's disk...
        assert await _journaled(db) == {sha: body}  # ...and A's row kept
    finally:
        await other_intake.stop()
        other.close()
        await intake.stop()
        store.close()
    store.path_for(sha).write_bytes(b"")  # what the power cut did to A's unsynced file
    again = RawStore(tmp_path / "raw")
    again.open_store()
    try:
        assert await RawJournal(db, again).recover() == 1  # A starts: its row restores it
        assert again.path_for(sha).read_bytes() == body
        assert await _journaled(db) == {}
    finally:
        again.close()
        await db.close()


async def test_a_checkpoint_keeps_a_peers_row_of_the_same_payload(
    tmp_path: Path, database_url: str | None
) -> None:
    """The same bytes accepted by two processes with different raw directories: one
    syncing its own file says nothing of the other's."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    other, other_journal, other_intake = await _peer(db, tmp_path / "raw-host-b")
    body = b"ISA*sent-to-both~"
    try:
        await _accept(intake, body, 1)
        await _accept(other_intake, body, 2)
        assert await journal.checkpoint() == 1
        async with db.read() as conn:
            left = (await conn.execute(select(JournaledPayload.writer))).scalars().all()
        assert left == [other_journal.writer]
        assert await other_journal.checkpoint() == 1
        assert await _journaled(db) == {}
    finally:
        await other_intake.stop()
        other.close()
        await intake.stop()
        store.close()
        await db.close()


async def test_a_start_replays_a_live_peers_rows_on_the_same_raw_store(
    tmp_path: Path, database_url: str | None
) -> None:
    """Two processes on one raw directory: the starting one may sync and delete the
    other's fresh rows, as the files exist (a row commits after its file is placed)."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    body = b"ISA*peer-on-this-disk~"
    try:
        await _accept(intake, body, 1)
        starting = RawJournal(db, store)
        assert starting.store_id == journal.store_id and starting.writer != journal.writer
        assert await starting.recover() == 0  # intact: synced, not rewritten
        assert await _journaled(db) == {}
        assert await journal.checkpoint() == 1  # its own round finds nothing left to delete
        with store.open(hashlib.sha256(body).hexdigest()) as fh:
            assert fh.read() == body
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_a_torn_file_no_row_covers_is_never_taken_for_the_payload(
    tmp_path: Path, database_url: str | None
) -> None:
    """A batch whose commit failed left its files written but unsynced, and no row; a
    power cut tore one. The partner sends the same bytes again: the accept must write
    them anew, not count on the torn file (its row would go at the next checkpoint)."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    body = b"ISA*retried-after-a-503~"
    sha = hashlib.sha256(body).hexdigest()
    store.path_for(sha).parent.mkdir(mode=0o700, exist_ok=True)
    store.path_for(sha).write_bytes(body[:7])  # torn: the first page never reached the disk
    try:
        await _accept(intake, body, 1)
        assert await journal.checkpoint() == 1
        assert await _journaled(db) == {}
        with store.open(sha) as fh:
            assert fh.read() == body
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_failing_checkpoints_keep_the_rows_and_are_reported(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that refuses to sync: the rows stay (the only durable copy), each round
    retries, and the failure is visible (metrics, readiness) instead of silent growth."""
    from gateway.metrics import Metrics, render

    db, store, journal, intake = await _open(tmp_path, database_url)
    journal.seconds = 0.05
    real_sync = store.sync_payloads

    def eio(shas: list[str]) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store, "sync_payloads", eio)
    await journal.start()
    try:
        body = b"ISA*while-the-disk-fails~"
        await _accept(intake, body, 1)
        for _ in range(200):
            if journal.failures >= 3:
                break
            await asyncio.sleep(0.02)
        assert journal.failures >= 3 and journal.pending == 1
        assert await _journaled(db) == {hashlib.sha256(body).hexdigest(): body}
        assert journal.problem(after=0.0) is not None and journal.problem() is None  # not yet for a minute
        failures = journal.failures  # the loop goes on failing meanwhile
        text = await render(db, Metrics(), raw_journal=(journal.pending, failures))
        assert "\ngateway_raw_journal_rows 1\n" in text
        assert f"\ngateway_raw_journal_checkpoint_failures {failures}\n" in text

        monkeypatch.setattr(store, "sync_payloads", real_sync)  # the disk is back
        for _ in range(200):
            if journal.failures == 0:
                break
            await asyncio.sleep(0.02)
        assert journal.failures == 0 and journal.problem(after=0.0) is None
        assert await _journaled(db) == {}
    finally:
        await journal.stop()
        await intake.stop()
        store.close()
        await db.close()


async def test_readiness_fails_while_checkpoints_have_failed_for_a_minute(client: Any) -> None:
    import time

    from gateway.api.keys import GATEWAY

    journal = client.app[GATEWAY].raw_journal
    assert (await client.get("/readyz")).status == 200
    journal.failures, journal.failing_since = 13, time.time() - 65  # what 13 failed rounds leave
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["checks"]["raw_journal"].startswith("checkpoints failing for 6")
    journal.failures, journal.failing_since = 0, None
    assert (await client.get("/readyz")).status == 200


def test_a_killed_peer_with_another_raw_dir_keeps_its_rows_until_it_starts_again(
    tmp_path: Path, partners_dir: Path, pg_database: tuple[str, str]
) -> None:
    """Real processes on one PostgreSQL, each with its own data directory (as on two
    hosts): A acknowledges posts and is killed before its checkpoint; B starts; then A's
    unsynced files are lost (power cut) and A starts again: every payload is back."""
    import signal

    import asyncpg
    from conftest import ACME_KEY, auth
    from gwsamples import order_850
    from test_service_process import free_port, start, stop, wait_ready

    url = pg_database[0]
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir), "GATEWAY_DATABASE_URL": url}

    async def rows() -> int:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM raw_journal"))
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
        proc.send_signal(signal.SIGKILL)  # well before its 5 s checkpoint
        proc.communicate(timeout=10)
    assert asyncio.run(rows()) == len(bodies)

    proc = start(host_b, port, workers=0, extra_env=env)
    try:
        wait_ready(port, proc)  # its start-up replay is done before it listens
        assert asyncio.run(rows()) == len(bodies)  # A's rows are not B's to replay
    finally:
        stop(proc)
    assert not list((host_b / "var" / "raw").glob("??/*"))

    files = list((host_a / "var" / "raw").glob("??/*"))
    assert sorted(f.name for f in files) == sorted(hashlib.sha256(b).hexdigest() for b in bodies)
    for file in files:
        file.write_bytes(b"")  # what a power cut may leave of files never synced

    proc = start(host_a, port, workers=0, extra_env=env)
    try:
        wait_ready(port, proc)
        assert asyncio.run(rows()) == 0
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    for file in files:
        assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name


async def test_a_file_missing_at_checkpoint_is_rewritten_before_its_row_goes(
    tmp_path: Path, database_url: str | None
) -> None:
    """A pruner moves a file aside for an instant (gateway.rawstore.remove_unused) and
    puts it back when it finds it wanted, without syncing its bytes. A checkpoint in that
    instant must not delete the row of a file it never synced."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    body = b"ISA*moved-aside-this-instant~"
    sha = hashlib.sha256(body).hexdigest()
    try:
        await _accept(intake, body, 1)
        aside = tmp_path / "aside"
        os.rename(store.path_for(sha), aside)  # the pruner's rename...
        assert await journal.checkpoint() == 1
        assert store.path_for(sha).read_bytes() == body  # rewritten (durably) from the row
        os.unlink(aside)  # ...and its cleanup: the copy it held goes
        assert await _journaled(db) == {}
    finally:
        await intake.stop()
        store.close()
        await db.close()


async def test_after_a_sync_error_the_pending_files_are_rewritten_from_their_rows(
    tmp_path: Path, database_url: str | None
) -> None:
    """A failed sync means some unsynced page never reached the disk, though reading the
    file back (from the cache) looks fine. Whether the journal's own sync saw the error or
    another of the raw store's syncs took it first, the next checkpoint rewrites the
    pending files durably from their rows before deleting them."""
    db, store, journal, intake = await _open(tmp_path, database_url)
    real = store._syncfs
    assert real is not None

    def failing(fd: int) -> int:
        return -1  # what syncfs(2) answers after a writeback error (EIO)

    try:
        ours = b"ISA*written-before-the-error~"
        await _accept(intake, ours, 1)
        inode = os.stat(store.path_for(hashlib.sha256(ours).hexdigest())).st_ino
        store._syncfs = failing
        with pytest.raises(OSError):
            await journal.checkpoint()
        store._syncfs = real
        assert await journal.checkpoint() == 1
        path = store.path_for(hashlib.sha256(ours).hexdigest())
        assert os.stat(path).st_ino != inode and path.read_bytes() == ours  # a new, synced copy
        assert await _journaled(db) == {}

        # The error taken by another sync of the store (a large body's publish) first:
        second = b"ISA*written-before-another-error~"
        await _accept(intake, second, 2)
        path = store.path_for(hashlib.sha256(second).hexdigest())
        inode = os.stat(path).st_ino
        store._syncfs = failing
        with pytest.raises(StorageUnavailable):
            await store.write_bytes(b"ISA*" + b"L" * 4096 + b"~", limit=1 << 20)
        store._syncfs = real
        assert await journal.checkpoint() == 1
        assert os.stat(path).st_ino != inode and path.read_bytes() == second
        assert await _journaled(db) == {}
    finally:
        store._syncfs = real
        await intake.stop()
        store.close()
        await db.close()
