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
syncs the raw store's file system (``syncfs``, or an fsync per file) and deletes
their rows. A process deletes only rows of payloads it synced itself, so processes
sharing one database and a raw directory on another host's file system never drop
each other's copies. On start (:meth:`RawJournal.recover`, before the pipeline runs)
every row left is replayed: its file is checked against its SHA-256 (and synced), or
rewritten durably when missing or wrong, then the row goes.

Large (spilled) payloads keep their own synced publish (gateway.rawstore), and
payloads stored outside the intake (AS2 evidence, outbound interchanges) keep the
file journal. This module never decides what a payload means and never deletes a
payload file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import delete, insert, select, text
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

    @staticmethod
    def covers(ref: RawRef) -> bool:
        """Whether ``ref`` is journaled here (a small staged body) rather than published."""
        return ref.staged is None and ref.data is not None

    @staticmethod
    def rows(refs: Iterable[RawRef]) -> list[dict[str, Any]]:
        return [{"sha256": r.sha256, "data": r.data} for r in refs]

    def place(self, refs: Sequence[RawRef]) -> Future[None]:
        """Write the payloads' files (not synced) in the raw store's threads; the
        caller waits for it before committing their rows (:func:`wait_placed`)."""
        return self.store.submit(self.store.place_unsynced, list(refs))

    def committed(self, refs: Iterable[RawRef]) -> None:
        """The rows of ``refs`` are committed: the next checkpoint syncs and deletes them."""
        self._placed.update(r.sha256 for r in refs if self.covers(r))

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
                log.error("raw journal: checkpoint failed: %s", exc)

    # ------------------------------------------------------------------ checkpoint and recovery

    async def checkpoint(self) -> int:
        """Sync the files this process placed since the last checkpoint, then delete
        their rows; returns how many payloads that covered."""
        shas, self._placed = sorted(self._placed), set()
        if not shas:
            return 0
        try:
            await asyncio.to_thread(self.store.sync_payloads, shas)
            await self._delete(JournaledPayload.sha256, shas)
        except BaseException:
            self._placed.update(shas)  # the next round tries again
            raise
        self.checkpoints += 1
        return len(shas)

    async def recover(self) -> int:
        """Replay the rows a crash left (module doc): returns how many payload files
        had to be rewritten. Runs before anything reads payloads."""
        repaired = 0
        after = -1
        while True:
            async with self.db.read() as conn:
                found = await conn.execute(
                    select(JournaledPayload.id, JournaledPayload.sha256, JournaledPayload.data)
                    .where(JournaledPayload.id > after)
                    .order_by(JournaledPayload.id)
                    .limit(1000)
                )
                rows = found.all()
            if not rows:
                break
            for _, sha, data in rows:
                repaired += await asyncio.to_thread(self.store.restore, sha, bytes(data))  # durable now
            await self._delete(JournaledPayload.id, [row[0] for row in rows])
            after = rows[-1][0]
        if repaired:
            log.warning("raw store: restored %d payload(s) from the database journal", repaired)
        return repaired

    async def _delete(self, column: Any, values: list[Any]) -> None:
        async with self.db.write() as conn:
            for part in lean.chunks(values, _CHUNK):
                await conn.execute(delete(JournaledPayload).where(column.in_(list(part))))


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
    "INSERT INTO raw_journal (sha256, data)"
    " SELECT * FROM unnest(CAST(:shas AS varchar[]), CAST(:datas AS bytea[]))"
)


async def insert_journaled(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert journal ``rows`` in the caller's transaction (the async engine's path)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(_UNNEST, {"shas": [r["sha256"] for r in rows], "datas": [r["data"] for r in rows]})
    else:
        await conn.execute(insert(JournaledPayload), rows)
