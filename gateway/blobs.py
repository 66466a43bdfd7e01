"""The BlobStore port's adapter: raw payloads by SHA-256, wherever they are kept.

A small payload (up to ``[storage] spill_bytes``) accepted since migration 0014 is a
``kept`` row of ``raw_journal``, committed with its message, and has no file
(decision 0025). A large (spilled) payload, a payload stored before 0014, AS2
evidence and outbound interchanges are files of the raw store (gateway.rawstore).
Every reader of an inbound payload comes here: the pipeline (one SELECT per batch
for the jobs it claimed from the table; the intake's hand-off carries the bytes),
replay, downloads, the console. A row is looked up first (the index on ``sha256``),
then the file; either holds the same bytes, named by their hash.

Rows are read whether ``kept`` or not: a row not kept (0018's journal, replayed at
start) holds the same bytes as the file it stands for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select

from gateway.db import lean
from gateway.db.engine import Database
from gateway.db.models import JournaledPayload
from gateway.rawstore import RawStore

_CHUNK = 500  # hashes per SELECT (SQLite's bound-parameter limit)


class Blobs:
    """Payloads in the database's rows and the raw store's files (module doc)."""

    def __init__(self, db: Database, store: RawStore) -> None:
        self.db = db
        self.store = store

    async def read(self, sha256: str) -> bytes | None:
        """The payload's bytes, or None when it is in neither place (pruned)."""
        found = await self.locate(sha256)
        if isinstance(found, Path):
            try:
                return await asyncio.to_thread(found.read_bytes)
            except FileNotFoundError:  # pruned in between
                return None
        return found

    async def exists(self, sha256: str) -> bool:
        return await self.locate(sha256) is not None

    async def locate(self, sha256: str) -> bytes | Path | None:
        """A row's bytes (small payloads), else the file's path, else None: a download
        streams a file, which may be large, and sends a row's bytes as they are."""
        rows = await self.read_rows([sha256])
        if sha256 in rows:
            return rows[sha256]
        path = self.store.path_for(sha256)
        return path if await asyncio.to_thread(path.is_file) else None

    async def read_rows(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The payloads of ``shas`` that are rows, by hash: one SELECT per 500."""
        wanted = sorted(set(shas))
        found: dict[str, bytes] = {}
        if not wanted:
            return found
        async with self.db.read() as conn:
            for part in lean.chunks(wanted, _CHUNK):
                # One row per hash: the same bytes accepted N times are N rows (one per
                # message), and reading them all would hold N copies in memory.
                first = (
                    select(func.min(JournaledPayload.id))
                    .where(JournaledPayload.sha256.in_(list(part)))
                    .group_by(JournaledPayload.sha256)
                )
                rows = await conn.execute(
                    select(JournaledPayload.sha256, JournaledPayload.data).where(
                        JournaledPayload.id.in_(first)
                    )
                )
                found.update((sha, bytes(data)) for sha, data in rows.all())
        return found

    def open_file(self, sha256: str) -> BinaryIO:
        """The file of a payload that is not a row (synchronous, for planning in a thread)."""
        return self.store.open(sha256)
