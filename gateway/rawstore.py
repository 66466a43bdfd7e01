"""Raw payloads, kept exactly as received, in content-addressed files.

A payload with SHA-256 ``h`` lives at ``<root>/<h[:2]>/<h>``. A final name only
ever points at complete, durable bytes: the body is streamed into a temporary file
under ``<root>/tmp``, the data is made durable, the file is renamed into place and
the rename is made durable, all before the caller commits its database row.

Two ways to do that:

- :meth:`RawStore.write` does it for one payload (fsync file, rename, fsync dir).
- :meth:`RawStore.stage` + :meth:`RawStore.publish` split it for group commit:
  each request stages its body, then one ``publish`` makes the whole batch durable.
  The intake publishes only large bodies so; a message's small one is a row of
  its own database commit, with no file (gateway.raw_journal, gateway.blobs).

How ``publish`` makes a batch durable:

- Small bodies (held in memory, up to ``spill_bytes``) are appended to a
  write-ahead *journal* segment under ``<root>/journal`` with one write and one
  ``fdatasync``, then written under their final names without a sync (a synced
  file per payload costs about a disk flush each). Every few seconds (or
  megabytes) the segment is rotated and, off the request path, the file system is
  synced (``syncfs``, or an fsync per file) and the old segment deleted. On start,
  :meth:`open_store` replays segments left by a crash: each record's final file is
  checked against its SHA-256 and rewritten durably when missing or wrong. A
  segment is locked (``flock``) by its writer, so processes sharing a raw
  directory never replay each other's live segment.
- Spilled bodies (temp files) are synced, renamed into place and synced again
  (one ``syncfs`` each time on Linux, else an fsync per file and directory).

A body is never held in memory twice, nor more than ``spill_bytes`` of it. This module
never touches the database and never deletes a payload still in use: :meth:`RawStore.prune`
is told which hashes to keep, and :meth:`RawStore.remove_unused` (called by
:mod:`gateway.retention` once no message needs a payload) keeps one that ``publish``
found already stored meanwhile: ``publish`` refreshes the mtime of such a file before
its message commits, and ``remove_unused`` moves the file aside before looking at that
mtime, so a racing ``publish`` either refreshed it first (the file is moved back) or
finds it gone and writes it anew. Files are 0600 and directories 0700 (business documents).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import hashlib
import itertools
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterable, Callable, Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from gateway.db.engine import StorageUnavailable
from gateway.rawfiles import drop_dead_temps, temp_prefix
from gateway.rawfiles import fsync_path as _fsync_path
from gateway.rawfiles import load_syncfs as _load_syncfs
from gateway.rawfiles import refresh as _refresh
from gateway.rawfiles import refresh_intact as _refresh_intact
from gateway.rawfiles import write_all as _write_all

T = TypeVar("T")
log = logging.getLogger(__name__)
_RECORD = b"RAW1 "  # journal record: RAW1 <sha256 hex> <size>\n<bytes>
TEMP_IDLE_SECONDS = 600.0  # a temp file in use is written or published within seconds


def payload_path(root: str | Path, sha256: str) -> Path:
    """Where the payload with SHA-256 ``sha256`` lives under ``root`` (the layout of
    the module doc); raises ValueError for anything but a hex digest."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return Path(f"{root}/{sha256[:2]}/{sha256}")


def open_payload(root: str | Path, sha256: str) -> BinaryIO:
    """The stored payload ``sha256`` under ``root``, open for reading: what
    :meth:`RawStore.open` does, for a process that has only the root (a
    translation worker, gateway.translate_pool)."""
    return payload_path(root, sha256).open("rb")


class PayloadTooLarge(Exception):
    """The body is larger than the limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"payload larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class RawRef:
    """A payload under the raw store's ``root`` (final name: ``path``, made when asked for).
    Until published, a small body waits in ``data``, a large one in the temp file ``staged``."""

    sha256: str
    size: int
    root: str
    staged: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        return Path(f"{self.root}/{self.sha256[:2]}/{self.sha256}")

    @property
    def pending(self) -> bool:
        return self.staged is not None or self.data is not None


class RawStore:
    def __init__(
        self,
        root: Path,
        *,
        spill_bytes: int = 64 * 1024,
        io_threads: int = 16,
        use_syncfs: bool = True,
        journal_bytes: int = 32 * 1024 * 1024,
        journal_seconds: float = 5.0,
    ) -> None:
        self.root = root
        self.spill_bytes = spill_bytes
        self.journal_bytes = journal_bytes  # rotate the journal segment past this size...
        self.journal_seconds = journal_seconds  # ...or this age
        self._tmp = root / "tmp"
        self._journal_dir = root / "journal"
        self._pruning = root / "pruning"  # payloads being deleted by remove_unused
        self._root_text = str(root)
        self._tmp_text = str(self._tmp)
        self._pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="rawstore")
        self._syncfs = _load_syncfs() if use_syncfs else None
        self._root_fd: int | None = None  # syncfs on it reports every error since its last
        self.sync_errors = 0  # ...even one another process saw first; read by the journal
        self._journal_lock = threading.Lock()
        self._segment: _Segment | None = None
        self._names = itertools.count()
        self.checkpoints = 0  # journal segments synced and deleted, for tests

    def open_store(self) -> None:
        """Create the directories, drop temp files dead processes left (never published;
        never a live process's: serve beside worker, gateway.rawfiles.drop_dead_temps)
        and replay journal segments a crash left behind (see the module doc)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (self._tmp, self._journal_dir, self._pruning):
            directory.mkdir(mode=0o700, exist_ok=True)
        drop_dead_temps(self._tmp_text, time.time() - TEMP_IDLE_SECONDS)
        if self._syncfs is not None and self._root_fd is None:
            self._root_fd = os.open(self.root, os.O_RDONLY)
        self._recover()
        self._restore_pruning()

    def close(self) -> None:
        with self._journal_lock:
            segment, self._segment = self._segment, None
        if segment is not None:
            self._checkpoint(segment)
        self._pool.shutdown(wait=True)
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    def path_for(self, sha256: str) -> Path:
        return payload_path(self._root_text, sha256)

    def open(self, sha256: str) -> BinaryIO:
        return open_payload(self._root_text, sha256)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    # ------------------------------------------------------------------ writing

    async def write(self, chunks: AsyncIterable[bytes], *, limit: int) -> RawRef:
        """Store ``chunks`` durably now (PayloadTooLarge past ``limit``, StorageUnavailable)."""
        ref = await self.stage(chunks, limit=limit)
        await self.publish([ref])
        return RawRef(ref.sha256, ref.size, ref.root)

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
            if temp is None:  # small: no thread hop now; written with its batch
                return RawRef(sha256=sha, size=size, root=self._root_text, data=b"".join(buffered))
            await self._io(temp.handle.close)
            staged, temp = temp.path, None
            return RawRef(sha256=sha, size=size, root=self._root_text, staged=staged)
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
                if file.name not in keep and file.stat().st_mtime < cutoff:
                    file.unlink(missing_ok=True)
                    removed += 1
        return removed

    # ------------------------------------------------------------------ retention (blocking)

    def buckets(self) -> list[str]:
        """The names of the ``<h[:2]>`` directories, sorted."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if len(e.name) == 2 and e.is_dir(follow_symlinks=False))

    def payloads_older_than(self, bucket: str, older_than: float) -> list[tuple[str, int]]:
        """``(sha256, size)`` of the payloads in ``bucket`` last written (or received
        again) before ``older_than`` (a ``time.time()`` value)."""
        found: list[tuple[str, int]] = []
        try:
            entries = list(os.scandir(f"{self._root_text}/{bucket}"))
        except FileNotFoundError:
            return found
        for entry in entries:
            if len(entry.name) != 64 or not entry.name.startswith(bucket):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if st.st_mtime < older_than:
                found.append((entry.name, st.st_size))
        return found

    def remove_unused(self, sha256: str, *, untouched_since: float) -> int | None:
        """Delete payload ``sha256``, which the caller found no message needs, unless it
        was written or received again at or after ``untouched_since`` (``time.time()``):
        the bytes freed, or None when kept or already gone (see the module doc)."""
        final = self.path_for(sha256)
        aside = f"{self._pruning}/{sha256}.{os.getpid()}.{next(self._names)}"
        os.makedirs(self._pruning, mode=0o700, exist_ok=True)  # `gateway prune` never opens the store
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            return None
        try:
            st = os.stat(aside)
            if st.st_mtime >= untouched_since:
                _fsync_path(aside)  # wanted again; maybe never synced (gateway.raw_journal)
                os.replace(aside, final)
                _fsync_path(str(final.parent))
                return None
            os.unlink(aside)
        except FileNotFoundError:
            return None  # another process's open_store put it back meanwhile
        return st.st_size

    def _restore_pruning(self) -> None:
        """Put back payloads a crashed :meth:`remove_unused` left aside: keeping an
        unused file is harmless, losing a used one is not."""
        for name in os.listdir(self._pruning):
            sha = name.split(".", 1)[0]
            aside = f"{self._pruning}/{name}"
            try:
                final = self.path_for(sha)
            except ValueError:
                os.unlink(aside)
                continue
            try:
                if final.exists():
                    os.unlink(aside)
                    continue
                final.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(aside, final)
            except FileNotFoundError:
                continue  # its live pruner (another process) finished meanwhile
            _fsync_path(str(final.parent))

    # ------------------------------------------------------------------ blocking helpers

    async def _io(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(func, *args))

    def _new_temp(self, buffered: list[bytes]) -> _Temp:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix=temp_prefix("in"))
        temp = _Temp(Path(name), os.fdopen(fd, "wb"))
        try:
            for chunk in buffered:
                temp.handle.write(chunk)
        except BaseException:
            _discard(temp)
            raise
        return temp

    def _publish(self, refs: list[RawRef]) -> None:
        small = [r for r in refs if r.staged is None and r.data is not None]
        if small:
            self._publish_journaled(small)
        temps = [(r, r.staged) for r in refs if r.staged is not None]
        if not temps:
            return
        self._sync_data([path for _, path in temps])
        touched: set[Path] = set()
        new_buckets = False
        for ref, path in temps:
            if _refresh(str(ref.path)):
                # Same content already stored (and durable): keep the first copy.
                path.unlink(missing_ok=True)
                continue
            if not ref.path.parent.is_dir():
                ref.path.parent.mkdir(mode=0o700, exist_ok=True)
                new_buckets = True
            os.replace(path, ref.path)
            touched.add(ref.path.parent)
        if new_buckets:
            touched.add(self.root)
        self._sync_names(touched)

    # ------------------------------------------------------------------ journal

    def _publish_journaled(self, refs: list[RawRef]) -> None:
        record = b"".join(b"%s%s %d\n%s" % (_RECORD, r.sha256.encode(), r.size, r.data) for r in refs)
        full: _Segment | None = None
        with self._journal_lock:
            segment = self._segment
            if segment is None:
                segment = self._segment = self._new_segment()
            try:
                _write_all(segment.fd, record)
                os.fdatasync(segment.fd)  # from here the batch is durable
                for ref in refs:
                    final = f"{self._root_text}/{ref.sha256[:2]}/{ref.sha256}"
                    if _refresh_intact(final, ref.data):  # type: ignore[arg-type]
                        continue  # same content already stored (or journaled)
                    self._place(final, ref.data)  # type: ignore[arg-type]
                    segment.files.append(final)
            except BaseException:
                # Never append after a possibly torn record: replay stops at the first one.
                self._segment = None
                self._pool.submit(self._checkpoint, segment)
                raise
            segment.size += len(record)
            if (
                segment.size >= self.journal_bytes
                or time.monotonic() - segment.opened >= self.journal_seconds
            ):
                full, self._segment = segment, None
        if full is not None:
            # Off the request path: the next batch opens a new segment meanwhile.
            self._pool.submit(self._checkpoint, full)

    def _new_segment(self) -> _Segment:
        path = f"{self._journal_dir}/{time.time_ns():020d}-{os.getpid()}-{next(self._names)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we live; see _recover
        _fsync_path(str(self._journal_dir))  # the segment's name must survive a crash too
        return _Segment(path, fd, time.monotonic())

    def _place(self, final: str, data: bytes) -> None:
        """Write ``data`` under ``final`` (not synced: the journal covers it); readers
        never see a partial file."""
        temp = f"{self._tmp_text}/{temp_prefix('j')}{next(self._names)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)  # a full disk must not keep the partial copy
            raise
        os.close(fd)
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
            os.replace(temp, final)

    def _checkpoint(self, segment: _Segment) -> None:
        """Make every file the segment covers durable, then drop the segment."""
        try:
            if self._syncfs is not None:
                self._syncfs_root()
            else:
                for final in segment.files:
                    _fsync_path(final)
                for directory in sorted({os.path.dirname(f) for f in segment.files}):
                    _fsync_path(directory)
                _fsync_path(self._root_text)
            os.unlink(segment.path)
            self.checkpoints += 1
        except OSError as exc:
            # The segment stays; the next start replays it.
            log.error("raw store: journal checkpoint of %s failed: %s", segment.path, exc)
        finally:
            os.close(segment.fd)

    def _recover(self) -> None:
        """Replay journal segments whose writer is gone (see the module doc)."""
        for name in sorted(os.listdir(self._journal_dir)):
            path = f"{self._journal_dir}/{name}"
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process writes it
                with os.fdopen(os.dup(fd), "rb") as fh:
                    data = fh.read()
                repaired = self._replay(data)
                if repaired:
                    log.warning("raw store: restored %d payload(s) from journal %s", repaired, name)
                if self._syncfs is not None:
                    self._syncfs_root()
                os.unlink(path)
            finally:
                os.close(fd)

    def _replay(self, data: bytes) -> int:
        repaired = 0
        at = 0
        while at < len(data):
            end = data.find(b"\n", at)
            if end < 0 or not data.startswith(_RECORD, at):
                break  # a torn tail: that batch was never acknowledged
            try:
                sha, size_text = data[at + len(_RECORD) : end].decode("ascii").split(" ")
                size = int(size_text)
            except ValueError:
                break
            body = data[end + 1 : end + 1 + size]
            at = end + 1 + size
            if len(body) != size or hashlib.sha256(body).hexdigest() != sha:
                break
            repaired += self.restore(sha, body)
        return repaired

    def restore(self, sha: str, body: bytes, *, sync: bool = True, rewrite: bool = False) -> int:
        """Make payload ``sha`` durable from ``body``, a journaled copy: an intact file is
        synced (``sync=False``: left to :meth:`sync_payloads`), a missing or wrong one, or
        any with ``rewrite`` (after a sync error), rewritten durably (returns 1)."""
        final = self.path_for(sha)
        with contextlib.suppress(OSError):
            if not rewrite and hashlib.sha256(final.read_bytes()).hexdigest() == sha:
                if sync:
                    _fsync_path(str(final))
                    _fsync_path(str(final.parent))  # its name may be as fresh as its bytes
                return 0
        final.parent.mkdir(mode=0o700, exist_ok=True)
        temp = self._new_temp([body])
        temp.handle.flush()
        os.fsync(temp.handle.fileno())
        temp.handle.close()
        os.replace(temp.path, final)
        _fsync_path(str(final.parent))
        return 1

    def submit(self, func: Callable[..., T], *args: object) -> Future[T]:
        return self._pool.submit(func, *args)  # in the store's threads

    def sync_payloads(self, shas: list[str]) -> list[str]:
        """Make the files of ``shas`` (written unsynced by :meth:`restore`) durable; returns those not
        found (a pruner holds one aside this instant): the caller restores them."""
        paths = [self.path_for(sha) for sha in shas]
        files = [p for p in paths if p.exists()]
        self._sync_data(files)
        if self._syncfs is None:
            self._sync_names({p.parent for p in files} | {self.root})
        return [sha for sha, p in zip(shas, paths, strict=True) if not p.exists()]

    # ------------------------------------------------------------------ syncing

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
        fd = os.open(self.root, os.O_RDONLY) if self._root_fd is None else self._root_fd
        try:
            if self._syncfs(fd) != 0:
                err = ctypes.get_errno()
                self.sync_errors += 1  # some unsynced file may be damaged (gateway.raw_journal)
                raise OSError(err, f"syncfs failed: {os.strerror(err)}")
        finally:
            if fd != self._root_fd:
                os.close(fd)


@dataclass(slots=True)
class _Temp:
    path: Path
    handle: BinaryIO


@dataclass(slots=True)
class _Segment:
    """The journal file being appended to, and the final files it covers."""

    path: str
    fd: int
    opened: float
    size: int = 0
    files: list[str] = field(default_factory=list)


def _discard(temp: _Temp) -> None:
    temp.handle.close()
    temp.path.unlink(missing_ok=True)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def _one(data: bytes) -> AsyncIterable[bytes]:
    yield data
