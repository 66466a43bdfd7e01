"""The serve process's half of the hosted drop box: files closed in /inbound (told by
the drop-box process, gateway.transports.sftp_child, or found by the sweep) are stored
through the intake and only then removed from /inbound (or moved to /archive).

Runs on the event loop; the file system work goes to threads. A failed take leaves
the file where it is and the sweep retries it; a take interrupted after its commit
is found by its idempotency key (name and content hash) and only removed.
A take removes only the file it took: the one of the inode it read (or the child
told), never a newer upload of the same name (a told file and the sweep may take one
file twice; the second finds its key and leaves the newer file alone).

With ``sync_uploads`` every CLOSE marks its file with its SHA-256 before the rename
(gateway.transports.sftp_session). A file found in /inbound without a mark, on a file
system that keeps marks, was not put there by a CLOSE that was answered: a power cut
between the rename and the sync can leave the name with a cut file and no mark. It is
not taken as complete: it is moved to ``<box>/.unconfirmed`` and logged (the client,
never told OK, sends it again; an operator who placed it there by hand marks it and
moves it back: docs/sftp.md). The prune removes it after the raw retention
(gateway.transports.sftp_marks.prune_unconfirmed). Without ``sync_uploads`` unmarked
files are taken.
Never parses payloads and never talks SSH.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from gateway.logsafe import printable
from gateway.transports import sftp_jail as jail
from gateway.transports.sftp_marks import UNCONFIRMED, UNMARKED, read_swept
from gateway.transports.sftp_session import hosted_settings

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0  # files left in /inbound (a failed or interrupted take) are retried this often
HELD_SECONDS = 24 * 3600  # a held *.filepart upload is deleted when never renamed for this long
TAKERS = 64  # files read and accepted at once

Content = tuple[bytes | None, str]  # (the bytes when small, else None; their SHA-256)
Removal = tuple[Path, Path, str, bool, int | None]  # (box, the file, its name, archive, its inode)


class Takes:
    """Takes of closed uploads, at most one per file at a time.

    ``accept(partner_id, name, body, key)`` stores a body (gateway.intake, bound in
    gateway.transports.sftp_process.drop_box_for); ``partners()`` is the current
    partner directory."""

    def __init__(
        self,
        root: Path,
        idle_timeout: float,
        partners: Callable[[], Any],
        accept: Callable[..., Any],
        *,
        sync_uploads: bool = True,
        metrics: Any = None,
    ) -> None:
        self.root, self.idle_timeout, self.sync_uploads = root, idle_timeout, sync_uploads
        self.metrics = metrics  # gateway.metrics.Metrics: files set aside (sftp_unconfirmed)
        self.partners, self.accept = partners, accept
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(TAKERS)
        self._removals: list[tuple[Removal, asyncio.Future[None]]] = []
        self._remover: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.taken = 0  # files stored and removed from /inbound (tests, bench)
        self.unconfirmed = 0  # unmarked files moved aside (tests)

    def pending(self) -> int:
        """Takes scheduled and not finished."""
        return len(self._inflight)

    def schedule(
        self, partner_id: str, name: str, content: Content | None = None, inode: int | None = None
    ) -> asyncio.Task[None]:
        """Take ``/inbound/<name>`` of the partner (on the loop), once at a time.
        ``content`` and ``inode``: as the CLOSE found them (else read here)."""
        key = (partner_id, name)
        running = self._inflight.get(key)
        if running is not None:
            return running
        task = asyncio.get_running_loop().create_task(self._take(partner_id, name, content, inode))
        self._inflight[key] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._inflight.get(key) is task:
                del self._inflight[key]

        task.add_done_callback(done)
        return task

    async def _take(self, partner_id: str, name: str, content: Content | None, inode: int | None) -> None:
        box = jail.box_dir(self.root, partner_id)
        path = box / jail.INBOUND / name
        async with self._slots:
            if content is None or inode is None:
                try:
                    found = await asyncio.to_thread(self._read, box, name)
                except FileNotFoundError:
                    return  # taken by an earlier run of this name
                if found == UNMARKED:  # set aside (counted here, on the loop)
                    self.unconfirmed += 1
                    if self.metrics is not None:
                        self.metrics.sftp_unconfirmed[partner_id] += 1
                    return
                if not isinstance(found, tuple):
                    return  # cut short by a crash (or a CLOSE under way elsewhere): never taken
                content = content or found[0]  # the told hash: the same file, or the removal skips it
                inode = found[1]
            data, sha = content
            # The same name and content again (the partner's retry after a lost
            # answer, or a take interrupted after its commit) is the same message.
            key = hashlib.sha256(f"hosted\0{name}\0{sha}".encode()).hexdigest()
            body = _once(data) if data is not None else _streamed(path)
            try:
                await self.accept(partner_id, name, body, key)
            except Exception as exc:
                log.error("sftp: %s/inbound/%s not stored, retried later: %s", partner_id, name, exc)
                raise
            sftp = hosted_settings(self.partners(), partner_id)
            archive = bool(sftp is not None and sftp.archive)
            await self._remove_soon((box, path, name, archive, inode))
            self.taken += 1

    def _read(self, box: Path, name: str) -> tuple[Content, int] | str | None:
        """(content, inode) of a file found in /inbound; None when not to be taken."""
        path = box / jail.INBOUND / name
        inode = os.lstat(path).st_ino  # a name is never replaced while it exists (sftp_server.place)
        # Like a dead upload in .incoming: unchanged for twice the idle limit.
        found = read_swept(path, 2 * self.idle_timeout, require_mark=self.sync_uploads)
        if found == UNMARKED:
            self._set_aside(box, path, name)
            return UNMARKED
        return (found, inode) if isinstance(found, tuple) else None

    def _set_aside(self, box: Path, path: Path, name: str) -> None:
        folder = box / UNCONFIRMED
        folder.mkdir(mode=0o700, exist_ok=True)
        target = _free_name(folder, name)
        os.replace(path, target)
        log.warning(
            "sftp: %s/inbound/%s has no mark of a completed upload (sync_uploads is on): not taken, "
            "moved to %s (a power cut before its CLOSE was answered, or placed by hand: docs/sftp.md)",
            box.name, printable(name, 300), target,
        )  # fmt: skip

    async def _remove_soon(self, item: Removal) -> None:
        """Remove a stored file from /inbound; the removals of takes that finish
        together (one group commit) share one thread hop."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._removals.append((item, future))
        if self._remover is None or self._remover.done():
            self._remover = asyncio.create_task(self._remove_batches())
        await future

    async def _remove_batches(self) -> None:
        await asyncio.sleep(0)  # the other takes of this commit queue theirs first
        while self._removals:
            batch, self._removals = self._removals, []
            try:
                results = await asyncio.to_thread(_remove_all, [item for item, _ in batch])
            except Exception as exc:  # the files stay; the sweep retries them
                results = [exc] * len(batch)
            for (_, future), error in zip(batch, results, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    # ------------------------------------------------------------------ sweeping

    def start_sweeping(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sftp: sweeping /inbound failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def sweep(self) -> None:
        """Take every file waiting in a hosted partner's /inbound (after a restart of
        either process, or a take that failed)."""
        for partner_id, name in await asyncio.to_thread(self._waiting, self.partners()):
            # The take reads it; a failure is logged there and retried next sweep.
            self.schedule(partner_id, name).add_done_callback(_ignore)

    def _waiting(self, partners: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if not self.root.is_dir():
            return found
        for box in self.root.iterdir():
            inbound = box / jail.INBOUND
            if (
                box.name.startswith(".")
                or not inbound.is_dir()
                or hosted_settings(partners, box.name) is None
            ):
                continue
            for entry in os.scandir(inbound):
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    found.append((box.name, entry.name))
            # An upload of a process that died (SIGKILL, power loss) is never closed:
            # once no write touched it for twice the idle limit (any live session
            # writing it would have been closed by then), it is dropped, never taken.
            _drop_older(box / jail.INCOMING, 2 * self.idle_timeout)
            held = box / jail.HELD
            for entry in os.scandir(held) if held.is_dir() else ():
                # A *.filepart upload never renamed (the client gave up): not kept forever.
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > HELD_SECONDS:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
        return found

    async def aclose(self, timeout: float = 30.0) -> None:
        """Stop sweeping and wait for the takes under way (the intake must still run)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pending = list(self._inflight.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)


def _ignore(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # logged by the take; retrieved so asyncio does not log it again


def _remove_all(items: list[Removal]) -> list[BaseException | None]:
    found: list[BaseException | None] = []
    for item in items:
        try:
            _remove(*item)
            found.append(None)
        except OSError as exc:
            found.append(exc)
    return found


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or with a random suffix when that name is taken (never replaced)."""
    target = folder / name
    return target.with_name(f"{name}.{uuid.uuid4().hex[:8]}") if target.exists() else target


def _remove(box: Path, path: Path, name: str, archive: bool, inode: int | None) -> None:
    try:
        if inode is not None and os.lstat(path).st_ino != inode:
            return  # a newer upload of this name (this file was taken before): not ours
    except FileNotFoundError:
        return  # taken before (the sweep and a told take of one file)
    if archive:
        os.replace(path, _free_name(box / jail.ARCHIVE, name))
    else:
        path.unlink(missing_ok=True)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _streamed(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, 1 << 20):
            yield chunk


def _drop_older(folder: Path, seconds: float) -> None:
    cutoff = time.time() - seconds
    for entry in os.scandir(folder) if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                log.info("sftp: dropped an upload never closed: %s", entry.path)
