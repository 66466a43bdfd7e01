"""Small raw payloads made durable by the commit that records their messages.

An accept batch used to wait on two durable syncs in a row: the raw store's journal
segment (``fdatasync``), then the database commit. Here a small payload (held in
memory by ``RawStore.stage``, up to ``spill_bytes``) is instead written as a row of
``raw_journal`` in the very transaction that inserts its message, so one commit makes
both durable (decision 0018). Its file is still written under its final name before
that commit (not synced), so every reader (the translate pool's processes, replay,
downloads, retention) finds files exactly as before, and a message row is never
visible before its file exists.

The rows are the payloads' only durable copy until their files are: every
``seconds`` a checkpoint takes the payloads this process placed since the last one,
syncs the raw store's file system (``syncfs``, or an fsync per file and directory)
and deletes their rows. Each row names its raw store (``store``: the id in
``<raw_dir>/store-id``, made once per directory) and its process (``writer``). A
checkpoint deletes only its own process's rows (never a peer's row of the same
payload, whose file may be another inode or on another disk). On start
(:meth:`RawJournal.recover`, before the pipeline runs) every row of this raw store is
replayed, a live peer's too: its file is checked against its SHA-256, or rewritten
when missing or wrong, the files are synced, then the rows go. That is safe because a
row commits only after its file was placed, in a directory this process sees. Rows of
another raw store (another host's disk, another ``raw_dir``) are never touched here:
a process of that store replays them.

Large (spilled) payloads keep their own synced publish (gateway.rawstore), and
payloads stored outside the intake (AS2 evidence, outbound interchanges) keep the
file journal. This module never decides what a payload means and never deletes a
payload file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db import lean
from gateway.db.engine import Database, StorageUnavailable
from gateway.db.models import JournaledPayload
from gateway.rawstore import RawRef, RawStore

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per DELETE (SQLite's bound-parameter limit)


class RawJournal:
    """The database journal of one raw store (see the module doc)."""

    def __init__(self, db: Database, store: RawStore, *, seconds: float = 5.0) -> None:
        self.db = db
        self.store = store
        self.seconds = seconds
        self._task: asyncio.Task[None] | None = None
        self._placed: set[str] = set()  # payloads committed since the last checkpoint
        self.checkpoints = 0  # rounds that deleted rows, for tests
        self.store_id = store_identity(store.root)
        self.writer = f"{os.getpid()}-{os.urandom(8).hex()}"  # this process, in its rows
        self.failures = 0  # checkpoints failed in a row (health, gateway.api)
        self._suspect = False  # a checkpoint failed: rewrite the pending files from the rows
        self._sync_errors = store.sync_errors  # the raw store's sync errors already answered
        self.failing_since: float | None = None  # time.time() of the first of them

    @staticmethod
    def covers(ref: RawRef) -> bool:
        """Whether ``ref`` is journaled here (a small staged body) rather than published."""
        return ref.staged is None and ref.data is not None

    def rows(self, refs: Iterable[RawRef]) -> list[dict[str, Any]]:
        store, writer = self.store_id, self.writer
        return [{"sha256": r.sha256, "data": r.data, "store": store, "writer": writer} for r in refs]

    @property
    def pending(self) -> int:
        """Payloads committed here whose files are not synced yet (their rows wait)."""
        return len(self._placed)

    def place(self, refs: Sequence[RawRef]) -> Future[None]:
        """Write the payloads' files (not synced) in the raw store's threads; the
        caller waits for it before committing their rows (:func:`wait_placed`)."""
        return self.store.submit(self.store.place_unsynced, list(refs))

    def committed(self, refs: Iterable[RawRef]) -> None:
        """The rows of ``refs`` are committed: the next checkpoint syncs and deletes them."""
        self._placed.update(r.sha256 for r in refs if self.covers(r))

    def problem(self, *, after: float = 60.0) -> str | None:
        """What readiness reports once checkpoints have failed for ``after`` seconds (the
        files may not be durable, and every accept adds a row): no paths, it is public."""
        if self.failing_since is None or time.time() - self.failing_since < after:
            return None
        return f"checkpoints failing for {int(time.time() - self.failing_since)} s"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="raw-journal-checkpoint")

    async def stop(self) -> None:
        """Stop the periodic checkpoint and run a last one (a clean stop leaves no rows)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await self.checkpoint()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await self.checkpoint()
            except Exception as exc:  # the rows stay; the next round (or the next start) retries
                self.failures += 1
                if self.failing_since is None:
                    self.failing_since = time.time()
                log.error(
                    "raw journal: checkpoint failed (%d in a row, %d payloads' rows waiting): %s",
                    self.failures,
                    len(self._placed),
                    exc,
                )
            else:
                if self.failures:
                    log.warning("raw journal: checkpoint works again after %d failures", self.failures)
                self.failures, self.failing_since = 0, None

    # ------------------------------------------------------------------ checkpoint and recovery

    async def checkpoint(self) -> int:
        """Sync the files this process placed since the last checkpoint, then delete
        their rows; returns how many payloads that covered."""
        shas, self._placed = sorted(self._placed), set()
        if not shas:
            return 0
        errors = self.store.sync_errors
        try:
            if self._suspect or errors != self._sync_errors:
                # A sync failed since these files were written (here, or in another of the
                # store's syncs that took the error first): their cached bytes prove
                # nothing about the disk's. Rewrite them durably from the rows.
                await self._restore_from_rows(shas, rewrite=True)
            missing = await asyncio.to_thread(self.store.sync_payloads, shas)
            if missing:  # never delete a row whose file was not synced: rewrite it from the row
                await self._restore_from_rows(missing, rewrite=False)
            await self._delete(shas)
        except BaseException:
            self._placed.update(shas)  # the next round tries again
            self._suspect = True
            raise
        self._suspect, self._sync_errors = False, errors
        self.checkpoints += 1
        return len(shas)

    async def recover(self) -> int:
        """Replay the rows a crash left in this raw store (module doc): returns how many
        payload files had to be rewritten. Runs before anything reads payloads."""
        repaired = replayed = 0
        after = -1
        started = time.monotonic()
        mine = or_(JournaledPayload.store == self.store_id, JournaledPayload.store.is_(None))
        while True:
            async with self.db.read() as conn:
                found = await conn.execute(
                    select(JournaledPayload.id, JournaledPayload.sha256, JournaledPayload.data)
                    .where(JournaledPayload.id > after, mine)
                    .order_by(JournaledPayload.id)
                    .limit(1000)
                )
                rows = found.all()
            if not rows:
                break
            repaired += await asyncio.to_thread(self._restore, [(sha, bytes(data)) for _, sha, data in rows])
            ids = [row[0] for row in rows]
            async with self.db.write() as conn:  # the files and their names are durable now
                for part in lean.chunks(ids, _CHUNK):
                    await conn.execute(delete(JournaledPayload).where(JournaledPayload.id.in_(list(part))))
            replayed += len(rows)
            after = rows[-1][0]
        if replayed:
            log.warning(
                "raw store: replayed %d payload(s) from the database journal in %.1f s, %d rewritten",
                replayed,
                time.monotonic() - started,
                repaired,
            )
        return repaired

    def _restore(self, rows: list[tuple[str, bytes]]) -> int:
        # Intact files are synced together afterwards (one syncfs, or an fsync per file
        # and per directory), not one by one.
        repaired = sum(self.store.restore(sha, data, sync=False) for sha, data in rows)
        self.store.sync_payloads([sha for sha, _ in rows])
        return repaired

    async def _restore_from_rows(self, shas: list[str], *, rewrite: bool) -> None:
        rows: dict[str, bytes] = {}
        async with self.db.read() as conn:
            for part in lean.chunks(shas, _CHUNK):
                found = await conn.execute(
                    select(JournaledPayload.sha256, JournaledPayload.data).where(
                        JournaledPayload.writer == self.writer, JournaledPayload.sha256.in_(list(part))
                    )
                )
                rows.update((sha, bytes(data)) for sha, data in found.all())
        for sha, data in rows.items():  # durable, with its name
            await asyncio.to_thread(self.store.restore, sha, data, rewrite=rewrite)
        log.warning(
            "raw journal: %d payload file(s) %s at checkpoint, rewritten from their rows",
            len(rows),
            "after a sync error" if rewrite else "missing",
        )

    async def _delete(self, shas: list[str]) -> None:
        """Delete this process's rows of ``shas`` (never another process's: module doc)."""
        async with self.db.write() as conn:
            for part in lean.chunks(shas, _CHUNK):
                await conn.execute(
                    delete(JournaledPayload).where(
                        JournaledPayload.writer == self.writer, JournaledPayload.sha256.in_(list(part))
                    )
                )


def wait_placed(placing: Future[None] | None) -> None:
    """In the writer thread, before the commit: the batch's files are placed (or the
    transaction fails with StorageUnavailable, and nothing is acknowledged)."""
    if placing is None:
        return
    try:
        placing.result()
    except OSError as exc:
        raise StorageUnavailable(f"raw store: {exc}") from exc


async def placed(placing: Future[None] | None) -> None:
    """:func:`wait_placed` for the event loop (the PostgreSQL path)."""
    if placing is None:
        return
    try:
        await asyncio.wrap_future(placing)
    except OSError as exc:
        raise StorageUnavailable(f"raw store: {exc}") from exc


# PostgreSQL: the batch's payloads in one statement with two array parameters
# (SQLAlchemy's multi-row VALUES costs more CPU per row here than the rows themselves).
_UNNEST = text(
    "INSERT INTO raw_journal (store, writer, sha256, data)"
    " SELECT :store, :writer, s, d FROM unnest(CAST(:shas AS varchar[]), CAST(:datas AS bytea[])) AS u(s, d)"
)


async def insert_journaled(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert journal ``rows`` in the caller's transaction (the async engine's path)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _UNNEST,
            {
                "store": rows[0]["store"],  # one process's batch: one store, one writer
                "writer": rows[0]["writer"],
                "shas": [r["sha256"] for r in rows],
                "datas": [r["data"] for r in rows],
            },
        )
    else:
        await conn.execute(insert(JournaledPayload), rows)


def store_identity(root: Path) -> str:
    """The id of the raw directory ``root`` (``<root>/store-id``), made once, durably, by
    the first process that opens it: processes that read the same id see the same files
    (one host's disk, or storage shared by hosts). Never copy it to another raw directory."""
    path = root / "store-id"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text("ascii").strip()
    temp = root / f"tmp/id-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 like the payloads
    try:
        try:
            os.write(fd, os.urandom(16).hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)  # never replaces the id another process made meanwhile
    finally:
        temp.unlink()
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_text("ascii").strip()
