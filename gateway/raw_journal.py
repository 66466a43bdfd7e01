"""Small raw payloads kept in the database (decisions 0018 and 0025).

A small payload (held in memory by ``RawStore.stage``, up to ``spill_bytes``) is a
row of ``raw_journal`` inserted in the very transaction that commits its message, so
an accept batch is one durable commit. Since migration 0014 the row is *kept*: it is
the payload's only copy, for good, and no file is written (gateway.blobs reads it;
retention deletes it with its messages). Large (spilled) payloads keep their synced
publish (gateway.rawstore), and payloads stored outside the intake's message (AS2
evidence, outbound interchanges) are published as files.

Rows written before 0014 (``kept`` false) were decision 0018's journal: the durable
copy of a file written unsynced and synced by a checkpoint that then deleted the
row. A crash could leave them, so a start (:meth:`RawJournal.recover`, before the
pipeline runs) replays every such row of its raw store: its file is checked
against its SHA-256, or rewritten when missing or wrong, the files are synced, then
the rows go. Each such row names its raw store (``store``: the id in
``<raw_dir>/store-id``, made once per directory); rows of another raw store
(another host's disk, another ``raw_dir``) are never touched here: a process of
that store replays them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, false, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db import lean
from gateway.db.engine import Database
from gateway.db.models import JournaledPayload
from gateway.rawstore import RawRef, RawStore

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per DELETE (SQLite's bound-parameter limit)


class RawJournal:
    """The rows of one raw store's small payloads (see the module doc)."""

    def __init__(self, db: Database, store: RawStore) -> None:
        self.db = db
        self.store = store
        self.store_id = store_identity(store.root)
        self.writer = f"{os.getpid()}-{os.urandom(8).hex()}"  # this process, in its rows

    @staticmethod
    def covers(ref: RawRef) -> bool:
        """Whether ``ref`` is kept as a row (a small staged body) rather than published."""
        return ref.staged is None and ref.data is not None

    def rows(self, refs: Iterable[RawRef]) -> list[dict[str, Any]]:
        store, writer = self.store_id, self.writer
        return [{"sha256": r.sha256, "data": r.data, "store": store, "writer": writer} for r in refs]

    async def recover(self) -> int:
        """Replay the journal rows from before migration 0014 that a crash left in this
        raw store (module doc): returns how many payload files had to be rewritten.
        Runs before anything reads payloads; kept rows are not touched."""
        repaired = replayed = 0
        after = -1
        started = time.monotonic()
        mine = or_(JournaledPayload.store == self.store_id, JournaledPayload.store.is_(None))
        replay = JournaledPayload.kept == false()  # ix_raw_journal_replay
        while True:
            async with self.db.read() as conn:
                found = await conn.execute(
                    select(JournaledPayload.id, JournaledPayload.sha256, JournaledPayload.data)
                    .where(JournaledPayload.id > after, mine, replay)
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
