"""Raw payloads, kept exactly as received, in content-addressed files.

A payload with SHA-256 ``h`` lives at ``<root>/<h[:2]>/<h>``. A final name only
ever points at complete, durable bytes: the body is streamed into a temporary file
under ``<root>/tmp``, the data is made durable, the file is renamed into place and
the rename is made durable, all before the caller commits its database row.

Two ways to do that:

- :meth:`RawStore.write` does it for one payload (fsync file, rename, fsync dir).
- :meth:`RawStore.stage` + :meth:`RawStore.publish` split it for group commit
  (see :mod:`gateway.intake`): each request stages its body (written, not synced),
  then one ``publish`` for the whole batch syncs all data with a single
  ``syncfs`` (Linux), renames every file and syncs again. Two journal commits per
  batch instead of two per payload is what lets accepts reach thousands per second.
  Without ``syncfs`` each file and directory is fsynced instead (same guarantees,
  slower).

A body is never held in memory twice, and never more than ``spill_bytes`` of it.
This module never touches the database and never deletes a payload still in use:
:meth:`RawStore.prune` is told which hashes to keep.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from gateway.db.engine import StorageUnavailable

T = TypeVar("T")


class PayloadTooLarge(Exception):
    """The body is larger than the limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"payload larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class RawRef:
    """A stored (or staged) payload. Until published, a small body waits in
    ``data`` (written by ``publish`` together with the rest of its batch) and a
    large one in the temp file ``staged``."""

    sha256: str
    size: int
    path: Path
    staged: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @property
    def pending(self) -> bool:
        return self.staged is not None or self.data is not None


class RawStore:
    def __init__(
        self, root: Path, *, spill_bytes: int = 64 * 1024, io_threads: int = 16, use_syncfs: bool = True
    ) -> None:
        self.root = root
        self.spill_bytes = spill_bytes
        self._tmp = root / "tmp"
        self._pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="rawstore")
        self._syncfs = _load_syncfs() if use_syncfs else None

    def open_store(self) -> None:
        """Create the directories and drop temp files a crash left behind (they were
        never published, so no message refers to them)."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def open(self, sha256: str) -> BinaryIO:
        return self.path_for(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    # ------------------------------------------------------------------ writing

    async def write(self, chunks: AsyncIterable[bytes], *, limit: int) -> RawRef:
        """Store ``chunks`` durably now; raises :class:`PayloadTooLarge` past
        ``limit`` and :class:`StorageUnavailable` when the disk refuses."""
        ref = await self.stage(chunks, limit=limit)
        await self.publish([ref])
        return RawRef(ref.sha256, ref.size, ref.path)

    async def write_bytes(self, data: bytes, *, limit: int) -> RawRef:
        return await self.write(_one(data), limit=limit)

    async def stage(self, chunks: AsyncIterable[bytes], *, limit: int) -> RawRef:
        """Write ``chunks`` to a temp file (not yet durable nor visible); publish or
        discard the result."""
        digest = hashlib.sha256()
        size = 0
        buffered: list[bytes] = []
        temp: _Temp | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                digest.update(chunk)
                if temp is None:
                    buffered.append(chunk)
                    if size > self.spill_bytes:
                        temp = await self._io(self._new_temp, buffered)
                        buffered = []
                else:
                    await self._io(temp.handle.write, chunk)
            sha = digest.hexdigest()
            if temp is None:
                # Small body: no thread hop now; publish writes it with its batch.
                return RawRef(sha256=sha, size=size, path=self.path_for(sha), data=b"".join(buffered))
            await self._io(temp.handle.close)
            staged, temp = temp.path, None
            return RawRef(sha256=sha, size=size, path=self.path_for(sha), staged=staged)
        except OSError as exc:
            raise StorageUnavailable(f"raw store: {exc}") from exc
        finally:
            if temp is not None:
                await self._io(_discard, temp)

    async def publish(self, refs: Iterable[RawRef]) -> None:
        """Make staged payloads durable under their final names (see module doc).
        On error the staged files are removed and StorageUnavailable is raised."""
        staged = [r for r in refs if r.pending]
        if not staged:
            return
        try:
            await self._io(self._publish, staged)
        except OSError as exc:
            await self.discard(staged)
            raise StorageUnavailable(f"raw store: {exc}") from exc

    async def discard(self, refs: Iterable[RawRef]) -> None:
        temps = [r.staged for r in refs if r.staged is not None]
        if temps:
            await self._io(_unlink_all, temps)

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

    async def _io(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(func, *args))

    def _new_temp(self, buffered: list[bytes]) -> _Temp:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="in-")
        temp = _Temp(Path(name), os.fdopen(fd, "wb"))
        try:
            for chunk in buffered:
                temp.handle.write(chunk)
        except BaseException:
            _discard(temp)
            raise
        return temp

    def _publish(self, refs: list[RawRef]) -> None:
        temps: list[tuple[RawRef, Path]] = []
        try:
            for ref in refs:
                if ref.staged is not None:
                    temps.append((ref, ref.staged))
                elif ref.data is not None:
                    temp = self._new_temp([ref.data])
                    temp.handle.close()
                    temps.append((ref, temp.path))
        except BaseException:
            _unlink_all([path for ref, path in temps if ref.staged is None])
            raise
        self._sync_data([path for _, path in temps])
        touched: set[Path] = set()
        new_buckets = False
        for ref, path in temps:
            if ref.path.exists():
                # Same content already stored (and durable): keep the first copy.
                path.unlink(missing_ok=True)
                continue
            if not ref.path.parent.is_dir():
                ref.path.parent.mkdir(exist_ok=True)
                new_buckets = True
            os.replace(path, ref.path)
            touched.add(ref.path.parent)
        if new_buckets:
            touched.add(self.root)
        self._sync_names(touched)

    def _sync_data(self, files: list[Path]) -> None:
        if self._syncfs is not None:
            self._syncfs_root()
            return
        for file in files:
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _sync_names(self, directories: set[Path]) -> None:
        if not directories:
            return
        if self._syncfs is not None:
            self._syncfs_root()
            return
        for directory in sorted(directories):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _syncfs_root(self) -> None:
        assert self._syncfs is not None
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if self._syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs failed: {os.strerror(err)}")
        finally:
            os.close(fd)


@dataclass(slots=True)
class _Temp:
    path: Path
    handle: BinaryIO


def _discard(temp: _Temp) -> None:
    temp.handle.close()
    temp.path.unlink(missing_ok=True)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def _one(data: bytes) -> AsyncIterable[bytes]:
    yield data


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux): one call makes every write on the file system durable."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]
