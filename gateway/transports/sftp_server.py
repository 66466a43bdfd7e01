"""The hosted SFTP drop box: partners log in with their partner id and a key from
their profile's ``authorized_keys`` and see only their own tree (gateway.transports.sftp_jail);
one session's work is gateway.transports.sftp_session, this module listens and takes files.

Threads: one thread accepts connections (and sweeps /inbound); paramiko runs each
connection and its SFTP session in threads of its own. Those threads never touch
the database: a closed upload is handed to the event loop with
``asyncio.run_coroutine_threadsafe`` and taken there, so files from many sessions
share the intake's group commits.

Exactly once, inbound:

1. An upload is written to a hidden temporary file (``.incoming``). A connection
   that drops before the client's CLOSE leaves it unclosed: it is deleted, never taken.
2. On CLOSE the complete file is renamed into ``/inbound/<name>`` (never over a
   same-name file still waiting) and a take is scheduled. With ``[sftp]
   sync_uploads = true`` (the default; or the client's ``fsync@openssh.com``) the
   CLOSE is answered once the file and its name are fsynced (marked with its SHA-256
   first, so that one commit covers both: gateway.transports.sftp_session); with
   ``sync_uploads = false`` at once, as OpenSSH's server would answer it; with
   ``close_after_store = true`` only after step 3 (one disk sync per file when a
   client sends one file at a time).
3. The take stores the file through the intake (raw bytes synced, row committed)
   with an idempotency key of its name and content hash, and only then removes it
   from /inbound (or moves it to /archive). A failed take leaves the file; the sweep
   retries it. A crash between the commit and the removal leaves it too; the retry
   finds the key and only removes it.

So a file in /inbound is a file not yet stored durably, and a file gone from
/inbound is stored once: partners may watch for that.

This module never parses payloads; the pipeline decides what a file is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from gateway.logsafe import printable
from gateway.passwords import LoginLimiter
from gateway.transports import sftp_jail as jail
from gateway.transports import sftp_limits
from gateway.transports.sftp_keys import ensure_host_key
from gateway.transports.sftp_session import (
    JailedSftp,
    PartnerAuth,
    Session,
    SftpSubsystem,
    hosted_settings,
    read_swept,
)

log = logging.getLogger(__name__)

LINK_WAIT_SECONDS = 10.0  # an upload waits this long for a same-name file in /inbound to be taken
SWEEP_SECONDS = 5.0  # files left in /inbound (a failed or interrupted take) are retried this often
HELD_SECONDS = 24 * 3600  # a held *.filepart upload is deleted when never renamed for this long
TAKERS = 64  # files read and accepted at once
LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS = 5, 300.0  # wrong passwords per (partner, address), then refused


@dataclass(slots=True)
class DropBoxConfig:
    """What the drop box needs from the gateway, handed over by gateway.bootstrap."""

    host: str
    port: int
    root: Path  # <data_dir>/sftp
    max_bytes: int
    idle_timeout: float
    partners: Callable[[], Any]  # the current gateway.partners.PartnerDirectory
    # async accept(partner_id, name, body, key) -> AcceptResult, run on the loop
    accept: Callable[..., Any]
    loop: asyncio.AbstractEventLoop
    close_after_store: bool = False  # answer an upload's CLOSE only once it is stored durably
    sync_uploads: bool = False  # fsync each upload and its name in /inbound before the CLOSE's answer
    metrics: Any = None  # gateway.metrics.Metrics: refused password logins are counted there
    limits: sftp_limits.Limits = field(default_factory=sftp_limits.Limits)  # connections (sftp_limits)


def _remove_all(items: list[tuple[Path, Path, str, bool]]) -> list[BaseException | None]:
    found: list[BaseException | None] = []
    for item in items:
        try:
            _remove(*item)
            found.append(None)
        except OSError as exc:
            found.append(exc)
    return found


def _remove(box: Path, path: Path, name: str, archive: bool) -> None:
    if archive:
        target = box / jail.ARCHIVE / name
        if target.exists():
            target = target.with_name(f"{name}.{uuid.uuid4().hex[:8]}")
        os.replace(path, target)
    else:
        path.unlink(missing_ok=True)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _streamed(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, 1 << 20):
            yield chunk


class DirSyncs:
    """fsync of a folder after a rename into it, shared: a caller returns once a
    sync that started after its call has finished, so the closes of concurrent
    sessions into one /inbound cost one folder sync, not one each."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._asked: dict[Path, int] = {}
        self._done: dict[Path, int] = {}
        self._running: set[Path] = set()

    def sync(self, folder: Path) -> None:
        with self._cond:
            mine = self._asked[folder] = self._asked.get(folder, 0) + 1
            while self._done.get(folder, 0) < mine:
                if folder in self._running:
                    self._cond.wait()
                    continue
                self._running.add(folder)
                covered = self._asked[folder]
                self._cond.release()
                try:
                    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                finally:
                    self._cond.acquire()
                    self._running.discard(folder)
                    self._cond.notify_all()
                self._done[folder] = max(self._done.get(folder, 0), covered)


class DropBox:
    """The listening server; :meth:`start` binds (``port`` 0: any free port) and
    :meth:`close` stops accepting and closes every session."""

    def __init__(self, config: DropBoxConfig) -> None:
        self.config = config
        self.host_key = ensure_host_key(config.root)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sessions: list[Session] = []
        self._lock = threading.Lock()
        self._place_lock = threading.Lock()
        self._dir_syncs = DirSyncs()
        self.logins = LoginLimiter(LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS)  # failed passwords
        self._stopping = threading.Event()
        self.port = config.port
        self._inflight: dict[tuple[str, str], Future[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._removals: list[tuple[tuple[Path, Path, str, bool], asyncio.Future[None]]] = []
        self._remover: asyncio.Task[None] | None = None
        self._swept = 0.0
        self.taken = 0  # files stored and removed from /inbound (tests, bench)

    def login_refused(self, username: str, client: str, reason: str) -> None:
        """A password login refused (wrong, none in the profile, or rate-limited):
        logged and counted; the client only sees the usual authentication failure."""
        partners = self.config.partners()
        known = partners is not None and partners.entry(username) is not None
        partner = username if known else "(unknown)"  # a label per guessed name would grow unbounded
        log.warning(
            "sftp: password login refused for user %r from %s: %s", printable(username, 100), client, reason
        )
        if self.config.metrics is not None:
            self.config.metrics.sftp_login_refused[(partner, reason)] += 1

    def admit(self, session: Session, partner_id: str, sftp: Any) -> bool:
        """A login as ``partner_id`` (its key or password accepted) takes a slot, or
        is refused beyond a connection limit: logged and counted."""
        with self._lock:
            reason = sftp_limits.login_refused(
                self._sessions, session, partner_id, sftp.max_connections, self.config.limits
            )
        if reason is None:
            return True
        log.warning(
            "sftp: login of %r from %s refused: %s reached",
            printable(partner_id, 100),
            session.client,
            reason,
        )
        self._refused(reason)
        return False

    def _refused(self, reason: str) -> None:
        if self.config.metrics is not None:
            self.config.metrics.sftp_connections_refused[reason] += 1

    # ------------------------------------------------------------------ taking

    def place(self, temp: Path, target: Path, *, sync: bool = False) -> bool:
        """Move a closed upload into /inbound under its name, never over a file of
        the same name still waiting to be taken (wait a little for it instead).
        Only closes put files there and takes only remove them, so checking and
        renaming under one lock is enough (one rename: metadata is costly here)."""
        deadline = time.monotonic() + LINK_WAIT_SECONDS
        while True:
            with self._place_lock:
                if not os.path.lexists(target):
                    os.rename(temp, target)
                    break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        if sync:
            self.sync_folder(target.parent)  # the name survives a power cut too
        return True

    def sync_folder(self, folder: Path) -> None:
        """fsync ``folder``, shared with concurrent callers (DirSyncs)."""
        self._dir_syncs.sync(folder)

    def schedule(
        self, partner_id: str, name: str, content: tuple[bytes | None, str] | None = None
    ) -> Future[None]:
        """Take ``/inbound/<name>`` of the partner on the event loop, once at a time."""
        key = (partner_id, name)
        with self._lock:
            running = self._inflight.get(key)
            if running is not None:
                return running
            future = asyncio.run_coroutine_threadsafe(self._take(partner_id, name, content), self.config.loop)
            self._inflight[key] = future

        def done(_: Future[None]) -> None:
            with self._lock:
                if self._inflight.get(key) is future:
                    del self._inflight[key]

        future.add_done_callback(done)
        return future

    async def _take(self, partner_id: str, name: str, content: tuple[bytes | None, str] | None) -> None:
        """Store one closed upload durably, then remove it from /inbound (or move it
        to /archive). On failure the file stays and the sweep retries it."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(TAKERS)
        box = jail.box_dir(self.config.root, partner_id)
        path = box / jail.INBOUND / name
        async with self._slots:
            try:
                # Like a dead upload in .incoming: unchanged for twice the idle limit.
                grace = 2 * self.config.idle_timeout
                found = content if content is not None else await asyncio.to_thread(read_swept, path, grace)
            except FileNotFoundError:
                return  # taken by an earlier run of this name
            if found is None:
                return  # cut short by a crash (or a CLOSE under way elsewhere): never taken
            data, sha = found
            # The same name and content again (the partner's retry after a lost
            # answer, or a take interrupted after its commit) is the same message.
            key = hashlib.sha256(f"hosted\0{name}\0{sha}".encode()).hexdigest()
            body = _once(data) if data is not None else _streamed(path)
            try:
                await self.config.accept(partner_id, name, body, key)
            except Exception as exc:
                log.error("sftp: %s/inbound/%s not stored, retried later: %s", partner_id, name, exc)
                raise
            sftp = hosted_settings(self.config.partners(), partner_id)
            archive = bool(sftp is not None and sftp.archive)
            await self._remove_soon((box, path, name, archive))
            self.taken += 1

    async def _remove_soon(self, item: tuple[Path, Path, str, bool]) -> None:
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

    def _sweep(self) -> None:
        """Schedule every file waiting in a hosted partner's /inbound (after a restart,
        or a take that failed)."""
        self._swept = time.monotonic()
        partners = self.config.partners()
        if not self.config.root.is_dir():
            return
        for box in self.config.root.iterdir():
            inbound = box / jail.INBOUND
            if (
                box.name.startswith(".")
                or not inbound.is_dir()
                or hosted_settings(partners, box.name) is None
            ):
                continue
            for entry in os.scandir(inbound):
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    self.schedule(box.name, entry.name)
            # An upload of a process that died (SIGKILL, power loss) is never closed:
            # once no write touched it for twice the idle limit (any live session
            # writing it would have been closed by then), it is dropped, never taken.
            _drop_older(box / jail.INCOMING, 2 * self.config.idle_timeout)
            held = box / jail.HELD
            for entry in os.scandir(held) if held.is_dir() else ():
                # A *.filepart upload never renamed (the client gave up): not kept forever.
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > HELD_SECONDS:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the takes under way (the intake must still be running)."""
        with self._lock:
            pending = [asyncio.wrap_future(f) for f in self._inflight.values()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
        await self.drain()

    def start(self) -> None:
        sock = socket.create_server((self.config.host, self.config.port), reuse_port=False, backlog=64)
        sock.settimeout(0.5)
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="sftp-dropbox", daemon=True)
        self._thread.start()
        log.info(
            "sftp drop box listening on %s:%d, host key %s",
            self.config.host,
            self.port,
            self.host_key.fingerprint,
        )

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            if time.monotonic() - self._swept > SWEEP_SECONDS:
                try:
                    self._sweep()
                except Exception:
                    log.exception("sftp: sweeping /inbound failed")
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                self._reap_idle()
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            try:
                self._start_session(conn)
            except Exception:
                log.exception("sftp: could not start a session")
                with contextlib.suppress(OSError):
                    conn.close()
            self._reap_idle()

    def _start_session(self, conn: socket.socket) -> None:
        with self._lock:
            refused = sftp_limits.startup_refused(self._sessions, self.config.limits)
        if refused:  # closed before any SSH work: no thread, no key exchange
            log.warning("sftp: connection from %s closed: %s reached", _peer(conn), sftp_limits.STARTUPS)
            self._refused(sftp_limits.STARTUPS)
            conn.close()
            return
        conn.settimeout(None)
        # An SFTP reply written in more than one segment must not wait for a delayed ACK.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", SftpSubsystem, JailedSftp)
        session = Session(transport, client=str(conn.getpeername()[0]))
        with self._lock:
            self._sessions.append(session)
        transport.start_server(event=threading.Event(), server=PartnerAuth(self, session))

    def _reap_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            alive = []
            for session in self._sessions:
                if not session.transport.is_active():
                    continue
                if now - session.last_active > self.config.idle_timeout:
                    log.info("sftp: closing idle session of %s", session.partner_id or "(not logged in)")
                    session.transport.close()
                    continue
                if sftp_limits.auth_expired(session, now, self.config.limits):
                    log.info("sftp: closing a connection from %s not logged in in time", session.client)
                    session.transport.close()
                    continue
                alive.append(session)
            self._sessions = alive

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for session in self._sessions:
                session.transport.close()
            self._sessions = []


def drop_box_for(gw: Any) -> DropBox:
    """The drop box of a running gateway (gateway.bootstrap), not yet started."""
    settings = gw.settings
    intake = gw.intake
    assert settings.sftp is not None and intake is not None

    async def accept(partner_id: str, name: str, body: AsyncIterator[bytes], key: str) -> Any:
        return await intake.accept(
            partner_id=partner_id,
            channel="sftp",
            transport_id=name,
            idempotency_key=key,
            body=body,
            limit=settings.limits.max_edi_bytes,
            kind="x12",
            look_up_key=False,  # a repeat only follows a crash before the removal
        )

    return DropBox(
        DropBoxConfig(
            host=settings.sftp.host,
            port=settings.sftp.port,
            root=settings.data_dir / "sftp",
            max_bytes=settings.limits.max_edi_bytes,
            idle_timeout=settings.sftp.idle_timeout_seconds,
            close_after_store=settings.sftp.close_after_store,
            sync_uploads=settings.sftp.sync_uploads,
            limits=sftp_limits.Limits.of(settings.sftp),
            metrics=gw.metrics,
            partners=gw.partners,
            accept=accept,
            loop=asyncio.get_running_loop(),
        )
    )


def _peer(conn: socket.socket) -> str:
    try:
        return str(conn.getpeername()[0])
    except OSError:
        return "?"


def _drop_older(folder: Path, seconds: float) -> None:
    cutoff = time.time() - seconds
    for entry in os.scandir(folder) if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                log.info("sftp: dropped an upload never closed: %s", entry.path)
