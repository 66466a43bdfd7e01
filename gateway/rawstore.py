"""Raw payloads, kept exactly as received, in content-addressed files.

A payload with SHA-256 ``h`` lives at ``<root>/<h[:2]>/<h>``. Writing streams the
body into a temporary file under ``<root>/tmp`` (small bodies are buffered in
memory first so they cost one thread hop), fsyncs it and renames it into place.
The rename is durable only once its directory is fsynced: callers that group many
writes into one database commit (see :mod:`gateway.intake`) pass
``sync_directory=False`` and call :meth:`RawStore.sync_directories` once for the
whole batch, before the commit. A body is never held in memory twice, and never
more than ``spill_bytes`` of it.

This module never touches the database and never deletes a file still in use:
:meth:`RawStore.prune` is told which hashes to keep.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from gateway.db.engine import StorageUnavailable


class PayloadTooLarge(Exception):
    """The body is larger than the limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"payload larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class RawRef:
    sha256: str
    size: int
    path: Path


class RawStore:
    def __init__(self, root: Path, *, spill_bytes: int = 256 * 1024) -> None:
        self.root = root
        self.spill_bytes = spill_bytes
        self._tmp = root / "tmp"

    def open_store(self) -> None:
        """Create the directories and drop temp files a crash left behind."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def open(self, sha256: str) -> BinaryIO:
        return self.path_for(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    async def write(
        self, chunks: AsyncIterable[bytes], *, limit: int, sync_directory: bool = True
    ) -> RawRef:
        """Store the bytes of ``chunks``; raises :class:`PayloadTooLarge` past
        ``limit`` and :class:`StorageUnavailable` when the disk refuses."""
        digest = hashlib.sha256()
        size = 0
        buffered: list[bytes] = []
        spilled: _Temp | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                digest.update(chunk)
                if spilled is None:
                    buffered.append(chunk)
                    if size > self.spill_bytes:
                        spilled = await asyncio.to_thread(self._spill, buffered)
                        buffered = []
                else:
                    await asyncio.to_thread(spilled.handle.write, chunk)
            sha = digest.hexdigest()
            path = await asyncio.to_thread(self._finish, spilled, buffered, sha, sync_directory)
            spilled = None
            return RawRef(sha256=sha, size=size, path=path)
        except OSError as exc:
            raise StorageUnavailable(f"raw store: {exc}") from exc
        finally:
            if spilled is not None:
                await asyncio.to_thread(_discard, spilled)

    async def write_bytes(self, data: bytes, *, limit: int, sync_directory: bool = True) -> RawRef:
        async def one() -> AsyncIterable[bytes]:
            yield data

        return await self.write(one(), limit=limit, sync_directory=sync_directory)

    async def sync_directories(self, directories: Iterable[Path]) -> None:
        """Make earlier renames into ``directories`` durable (one fsync each)."""
        unique = sorted(set(directories))
        if unique:
            try:
                await asyncio.to_thread(_fsync_dirs, unique)
            except OSError as exc:
                raise StorageUnavailable(f"raw store: {exc}") from exc

    def prune(self, older_than: datetime, keep: Collection[str]) -> int:
        """Delete payload files last written before ``older_than`` whose hash is not
        in ``keep``; returns how many were deleted."""
        cutoff = older_than.timestamp()
        removed = 0
        for bucket in self.root.iterdir():
            if not bucket.is_dir() or len(bucket.name) != 2:
                continue
            for file in bucket.iterdir():
                if file.name in keep:
                    continue
                if file.stat().st_mtime < cutoff:
                    file.unlink(missing_ok=True)
                    removed += 1
        return removed

    # ------------------------------------------------------------------ blocking helpers

    def _spill(self, buffered: list[bytes]) -> _Temp:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="in-")
        temp = _Temp(Path(name), os.fdopen(fd, "wb"))
        try:
            for chunk in buffered:
                temp.handle.write(chunk)
        except BaseException:
            _discard(temp)
            raise
        return temp

    def _finish(self, spilled: _Temp | None, buffered: list[bytes], sha: str, sync_directory: bool) -> Path:
        temp = spilled if spilled is not None else self._spill(buffered)
        try:
            temp.handle.flush()
            os.fsync(temp.handle.fileno())
            temp.handle.close()
            final = self.path_for(sha)
            if final.exists():
                # Same content already stored: keep the first copy (it is identical).
                temp.path.unlink()
            else:
                if not final.parent.is_dir():
                    final.parent.mkdir(exist_ok=True)
                    _fsync_dirs([self.root])  # the new bucket directory itself must survive
                os.replace(temp.path, final)
            if sync_directory:
                _fsync_dirs([final.parent])
            return final
        except BaseException:
            _discard(temp)
            raise


@dataclass(slots=True)
class _Temp:
    path: Path
    handle: BinaryIO


def _discard(temp: _Temp) -> None:
    temp.handle.close()
    temp.path.unlink(missing_ok=True)


def _fsync_dirs(directories: Iterable[Path]) -> None:
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
