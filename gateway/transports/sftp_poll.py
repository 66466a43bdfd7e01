"""Polling partners' SFTP servers: one scheduled task per ``mode = "poll"`` partner,
named ``sftp-poll:<partner id>``, run every ``interval_seconds`` by one instance
at a time (gateway.runner.Scheduler leases it).

One poll: log in (host key pinned, gateway.transports.sftp_client), list
``inbound_path``, look again after ``settle_seconds`` and take only the files whose
size and mtime did not change (a file still being written is left for the next
poll); download each, streamed in chunks into the raw store (memory stays bounded
whatever the file's size), store it durably through the intake, and only then
delete it on the server, or move it to ``archive_path`` when the profile names one
(a name already archived gets a UTC timestamp suffix, never overwritten).

Exactly once: the idempotency key is a hash of the remote name, size, mtime and
content. If we die after the intake committed a file but before the remote delete
(or the delete fails), the next poll downloads the same file, gets the same key,
the intake answers with the earlier message (``created=False``) and the file is
deleted: stored once, processed once. A file the partner replaces with new content
under the same name is a new file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import hashlib
import logging
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paramiko

from gateway.db.models import IDENTIFIER_CHARS, storable_identifier
from gateway.logsafe import printable
from gateway.runner import Task
from gateway.transports.sftp_client import Connection, HostKeyRefused, connect

log = logging.getLogger(__name__)

TASK_PREFIX = "sftp-poll:"
CHUNK = 1 << 20  # bytes read from the server per thread hop
IN_FLIGHT = 8  # files of one poll between download and commit at once


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    size: int
    mtime: int


@dataclass(slots=True)
class PollReport:
    taken: list[str] = field(default_factory=list)  # stored (or found stored) and deleted
    waiting: list[str] = field(default_factory=list)  # still changing, or too large
    # Never taken as they are (left on the server, warned at every poll): name -> why.
    unfit: dict[str, str] = field(default_factory=dict)
    refused: str | None = None  # why we did not log in


@dataclass(slots=True)
class Poller:
    """Polls partners' servers into the intake (see the module doc)."""

    intake: Any  # gateway.intake.Intake
    partners: Callable[[], Any]
    max_bytes: int
    metrics: Any = None
    # Test seam: called after a file is stored and before it is deleted remotely.
    after_store: Callable[[str, str], Awaitable[None]] | None = None

    async def poll(self, partner_id: str) -> PollReport:
        report = PollReport()
        directory = self.partners()
        entry = directory.entry(partner_id) if directory is not None else None
        sftp = entry.transport.sftp if entry is not None else None
        if sftp is None or sftp.mode != "poll":
            return report
        connecting = asyncio.ensure_future(asyncio.to_thread(connect, sftp))
        try:
            conn = await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # Stopped while logging in: close the session once the thread has it.
            connecting.add_done_callback(_close_when_connected)
            raise
        except HostKeyRefused as exc:
            log.warning("sftp poll %s: host key refused, not logged in: %s", partner_id, exc)
            if self.metrics is not None:
                self.metrics.sftp_host_key_refused[partner_id] += 1
            report.refused = f"host key refused: {exc}"
            return report
        except paramiko.AuthenticationException as exc:
            log.warning("sftp poll %s: login as %r refused: %s", partner_id, sftp.username, exc)
            report.refused = f"login refused: {exc}"
            return report
        try:
            await self._take(partner_id, sftp, conn, report)
        finally:
            await asyncio.to_thread(conn.close)
        if report.taken:
            log.info("sftp poll %s: took %d file(s)", partner_id, len(report.taken))
        return report

    async def _take(self, partner_id: str, sftp: Any, conn: Connection, report: PollReport) -> None:
        first = await asyncio.to_thread(_look, conn, sftp)
        if not first:
            return
        second = first
        if sftp.settle_seconds > 0:
            await asyncio.sleep(sftp.settle_seconds)
            second = await asyncio.to_thread(_look, conn, sftp)
        folder = sftp.inbound_path.rstrip("/")
        ready: list[RemoteFile] = []
        for name, remote in sorted(second.items()):
            if not storable_identifier(name):
                # Its name is the message's transport id: refused alone here, where the
                # database would fail every file committed with it (PostgreSQL).
                why = f"name over {IDENTIFIER_CHARS} characters, with a NUL or not UTF-8"
                log.warning("sftp poll %s: %s: %s; left on the server", partner_id, printable(name, 80), why)
                report.unfit[name] = why
                continue
            if first.get(name) != remote or remote.size > self.max_bytes:
                if remote.size > self.max_bytes:
                    log.warning(
                        "sftp poll %s: %s is %d bytes, over limits.max_edi_bytes: left on the server",
                        partner_id, name, remote.size,
                    )  # fmt: skip
                report.waiting.append(name)
                continue
            ready.append(remote)
        # paramiko's SFTPClient takes one request at a time: every call on the
        # connection goes through this lock, while up to IN_FLIGHT files are between
        # download and commit, so their commits share the intake's group commits.
        server = _Server(conn.sftp, asyncio.Lock())
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one(remote: RemoteFile) -> None:
            async with slots:
                path = f"{folder}/{remote.name}"
                await self._take_one(partner_id, path, remote, server, report, sftp.archive_path)

        results = await asyncio.gather(*(one(r) for r in ready), return_exceptions=True)
        report.taken.sort()
        report.waiting.sort()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _take_one(
        self,
        partner_id: str,
        path: str,
        remote: RemoteFile,
        server: _Server,
        report: PollReport,
        archive_path: str | None,
    ) -> None:
        handle = await server.call(server.sftp.open, path, "rb")
        try:
            await self.intake.accept(
                partner_id=partner_id,
                channel="sftp",
                transport_id=remote.name,
                idempotency_key=functools.partial(_key, remote),
                body=_chunks(server, handle, remote.size),
                limit=self.max_bytes,
                kind="x12",
            )
        except _Changed:
            report.waiting.append(remote.name)  # changed while we read it: next poll
            return
        finally:
            with contextlib.suppress(OSError, EOFError):
                await server.call(handle.close)
        if self.after_store is not None:
            await self.after_store(partner_id, remote.name)
        # FileNotFoundError: a previous lease holder stored it too and removed it.
        with contextlib.suppress(FileNotFoundError):
            if archive_path is None:
                await server.call(server.sftp.remove, path)
            else:
                await server.call(_archive, server.sftp, path, archive_path, remote.name)
        report.taken.append(remote.name)


@dataclass(frozen=True, slots=True)
class _Server:
    sftp: paramiko.SFTPClient
    lock: asyncio.Lock

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self.lock:
            return await asyncio.to_thread(fn, *args)


def _archive(client: paramiko.SFTPClient, path: str, folder: str, name: str) -> None:
    """Move a taken file into ``folder`` on the partner's server. Plain SFTP rename
    refuses an existing target (what we want: an archived file is never replaced);
    then the name gets a UTC timestamp suffix. A file no longer at ``path`` raises
    FileNotFoundError (taken and moved by an earlier poll)."""
    target = f"{folder.rstrip('/')}/{name}"
    try:
        client.rename(path, target)
    except FileNotFoundError:
        raise
    except OSError:
        client.stat(path)  # gone: FileNotFoundError; still there: the target exists
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        client.rename(path, f"{target}.{stamp}")


def _close_when_connected(connecting: asyncio.Future[Connection]) -> None:
    if not connecting.cancelled() and connecting.exception() is None:
        connecting.result().close()


def _look(conn: Connection, sftp: Any) -> dict[str, RemoteFile]:
    found = {}
    for attr in conn.sftp.listdir_attr(sftp.inbound_path):
        name = attr.filename
        if name.startswith(".") or attr.st_mode is None or not stat.S_ISREG(attr.st_mode):
            continue
        if fnmatch.fnmatchcase(name, sftp.pattern):
            found[name] = RemoteFile(name, int(attr.st_size or 0), int(attr.st_mtime or 0))
    return found


class _Changed(Exception):
    """The remote file's length differs from the listing's: it is still being written."""


def _key(remote: RemoteFile, content_sha256: str) -> str:
    return hashlib.sha256(
        f"poll\0{remote.name}\0{remote.size}\0{remote.mtime}\0{content_sha256}".encode()
    ).hexdigest()


def _read_at(handle: paramiko.SFTPFile, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset``, fewer at the end of the file. ``readv`` keeps
    up to 32 requests of 32 KiB in flight (one read waits a round trip per 32 KiB).
    paramiko sends them from a short-lived thread of its own; a connection lost in
    that burst fails the read here (and that thread logs its own error)."""
    try:
        return b"".join(handle.readv([(offset, size)]))
    except EOFError:
        return b""


async def _chunks(server: _Server, handle: paramiko.SFTPFile, size: int) -> AsyncIterator[bytes]:
    """The remote file in CHUNK-sized pieces, one thread hop each: the raw store
    writes each to its staging file, so a download never sits in memory whole. A
    file shorter or longer than listed is still being written: _Changed."""
    offset = 0
    while offset < size:
        want = min(CHUNK, size - offset)
        chunk: bytes = await server.call(_read_at, handle, offset, want)
        if len(chunk) != want:
            raise _Changed
        offset += want
        yield chunk
    if await server.call(_read_at, handle, size, 1):
        raise _Changed


def follow_profiles(gw: Any) -> list[str]:
    """Make SFTP follow the loaded profiles (at start and after every reload): the
    scheduler's ``sftp-poll:*`` tasks match the polled partners (only where there is
    an intake), and hosted partners without a drop box are reported. Returns the
    partner ids polled."""
    directory = gw.partners()
    entries = list(directory.entries.values()) if directory is not None else []
    hosted = [
        e.profile.id for e in entries if e.transport.sftp is not None and e.transport.sftp.mode == "hosted"
    ]
    if hosted and gw.settings.sftp is None and gw.intake is not None:
        log.warning(
            "partner(s) %s use the hosted SFTP drop box, but gateway.toml has no [sftp] table: it does not run",
            ", ".join(sorted(hosted)),
        )
    if gw.intake is None:
        return []
    if gw.sftp_poller is None:
        gw.sftp_poller = Poller(
            gw.intake, gw.partners, gw.settings.limits.max_edi_bytes, gw.metrics,
            gw.overrides.extra.get("sftp_after_store"),
        )  # fmt: skip
    poller: Poller = gw.sftp_poller
    wanted: dict[str, float] = {}
    for entry in entries:
        sftp = entry.transport.sftp
        if sftp is not None and sftp.mode == "poll":
            wanted[entry.profile.id] = sftp.interval_seconds
    for name in [n for n in gw.scheduler.tasks if n.startswith(TASK_PREFIX)]:
        if name[len(TASK_PREFIX) :] not in wanted:
            gw.scheduler.discard(name)
    for partner_id, interval in wanted.items():

        async def run(partner_id: str = partner_id) -> None:
            await poller.poll(partner_id)

        gw.scheduler.add(Task(f"{TASK_PREFIX}{partner_id}", interval, run))
    return sorted(wanted)
