"""The hosted SFTP drop box: partners log in with their partner id and a key from
their profile's ``authorized_keys`` and see only their own tree (gateway.transports.sftp_jail).

Threads: one thread accepts connections (and sweeps /inbound); paramiko runs each
connection and its SFTP session in threads of its own. Those threads never touch
the database: a closed upload is handed to the event loop with
``asyncio.run_coroutine_threadsafe`` and taken there, so files from many sessions
share the intake's group commits.

Exactly once, inbound:

1. An upload is written to a hidden temporary file (``.incoming``). A connection
   that drops before the client's CLOSE leaves it unclosed: it is deleted, never taken.
2. On CLOSE the complete file is renamed into ``/inbound/<name>`` (never over a
   same-name file still waiting) and a take is scheduled. By default the CLOSE is
   answered now, as OpenSSH's server would answer it; with ``[sftp]
   close_after_store = true`` only after step 3 (one disk sync per file when a
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
import errno
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
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_WRITE,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from gateway.transports import sftp_jail as jail
from gateway.transports.sftp_keys import ensure_host_key, matches

log = logging.getLogger(__name__)

ACCEPT_TIMEOUT_SECONDS = 120.0  # with close_after_store: a CLOSE waits this long at most
LINK_WAIT_SECONDS = 10.0  # an upload waits this long for a same-name file in /inbound to be taken
SWEEP_SECONDS = 5.0  # files left in /inbound (a failed or interrupted take) are retried this often
TAKERS = 64  # files read and accepted at once
SMALL_FILE = 4 * 1024 * 1024  # read whole in the session thread; larger files are streamed


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


@dataclass(slots=True)
class _Session:
    """One SSH connection: who logged in, and when it was last busy."""

    transport: paramiko.Transport
    partner_id: str | None = None
    last_active: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_active = time.monotonic()


def hosted_settings(partners: Any, partner_id: str) -> Any:
    """The partner's ``[sftp]`` table when it is hosted here, else None."""
    entry = partners.entry(partner_id) if partners is not None else None
    sftp = entry.transport.sftp if entry is not None else None
    return sftp if sftp is not None and sftp.mode == "hosted" else None


class _Auth(paramiko.ServerInterface):
    def __init__(self, box: DropBox, session: _Session) -> None:
        self.box = box
        self.session = session

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        sftp = hosted_settings(self.box.config.partners(), username)
        if sftp is not None and any(matches(key, line) for line in sftp.authorized_keys):
            self.session.partner_id = username
            return paramiko.AUTH_SUCCESSFUL
        log.info("sftp: key refused for user %r", username)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        return name == "sftp" and bool(super().check_channel_subsystem_request(channel, name))


class _Upload(paramiko.SFTPHandle):
    """A file being uploaded to /inbound: a hidden temporary file until CLOSE."""

    def __init__(self, jailed: _Jailed, name: str, temp: Path, fd: int) -> None:
        super().__init__()
        self.jailed, self.name, self.temp, self.fd = jailed, name, temp, fd
        self.size = 0
        self.refused: str | None = None

    def write_checked(self, offset: int, data: bytes) -> tuple[int, str | None]:
        self.jailed.session.touch()
        if self.refused is None and offset + len(data) > self.jailed.box.config.max_bytes:
            self.refused = f"file larger than the limit of {self.jailed.box.config.max_bytes} bytes: refused"
        if self.refused is not None:
            return SFTP_FAILURE, self.refused
        try:
            os.pwrite(self.fd, data, offset)
        except OSError as exc:
            return SFTP_FAILURE, f"cannot store: {os.strerror(exc.errno or errno.EIO)}"
        self.size = max(self.size, offset + len(data))
        return SFTP_OK, None

    def write(self, offset: int, data: bytes) -> int:
        return self.write_checked(offset, data)[0]

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: Any) -> int:
        return SFTP_OK  # times and modes of an upload do not matter to us

    def finish(self) -> tuple[int, str | None]:
        """CLOSE from the client: take the file (see the module doc)."""
        os.close(self.fd)
        self.fd = -1
        box = self.jailed.box
        try:
            if self.refused is not None:
                return SFTP_FAILURE, self.refused
            if not box.place(self.temp, self.jailed.dir / jail.INBOUND / self.name):
                return SFTP_FAILURE, "a file of this name is still being taken: upload it again"
        except OSError as exc:
            log.error("sftp: %s/inbound/%s not placed: %s", self.jailed.partner_id, self.name, exc)
            return SFTP_FAILURE, "not stored: upload it again"
        finally:
            self.temp.unlink(missing_ok=True)
        # Read back here (page cache, the GIL released): the loop then has nothing to read.
        content = None
        if self.size <= SMALL_FILE:
            with contextlib.suppress(OSError):  # the take reads it itself then
                content = _read(self.jailed.dir / jail.INBOUND / self.name)
        future = box.schedule(self.jailed.partner_id, self.name, content)
        if box.config.close_after_store:
            try:
                future.result(timeout=ACCEPT_TIMEOUT_SECONDS)
            except Exception as exc:
                log.error("sftp: %s/inbound/%s not stored yet: %s", self.jailed.partner_id, self.name, exc)
                return SFTP_FAILURE, "not stored yet: it stays in /inbound and is retried"
        return SFTP_OK, None

    def abort(self) -> None:
        """The session ended with the file still open: a partial upload, never taken."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.temp.unlink(missing_ok=True)
            log.info("sftp: %s/inbound/%s: connection ended mid-upload, discarded", self.jailed.partner_id, self.name)

    def close(self) -> None:
        self.abort()


class _Download(paramiko.SFTPHandle):
    def __init__(self, jailed: _Jailed, fd: int) -> None:
        super().__init__()
        self.jailed, self.fd = jailed, fd

    def read(self, offset: int, length: int) -> bytes | int:
        self.jailed.session.touch()
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _refusals(method: Callable[..., Any]) -> Callable[..., Any]:
    """A jail refusal becomes its status code; an OSError its errno's code."""

    def wrapped(self: _Jailed, *args: Any) -> Any:
        self.session.touch()
        try:
            return method(self, *args)
        except jail.Refused as exc:
            log.info("sftp: %s refused %s%r: %s", self.partner_id, method.__name__, args[:1], exc)
            return exc.code
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    wrapped.__name__ = method.__name__
    return wrapped


class _Jailed(paramiko.SFTPServerInterface):
    """One partner's SFTP session, inside its own tree."""

    def __init__(self, server: _Auth, *args: Any, **kwargs: Any) -> None:
        super().__init__(server)
        self.box: DropBox = server.box
        self.session: _Session = server.session
        assert self.session.partner_id is not None
        self.partner_id: str = self.session.partner_id
        self.dir = jail.box_dir(self.box.config.root, self.partner_id)

    @property
    def archive(self) -> bool:
        sftp = hosted_settings(self.box.config.partners(), self.partner_id)
        return bool(sftp is not None and sftp.archive)

    def _place(self, path: str) -> jail.Place:
        if hosted_settings(self.box.config.partners(), self.partner_id) is None:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "no hosted SFTP for this partner any more")
        return jail.resolve(self.dir, path, archive=self.archive)

    def session_started(self) -> None:
        jail.ensure_box(self.dir, archive=self.archive)

    @_refusals
    def canonicalize(self, path: str) -> str:
        return self._place(path).virtual

    @_refusals
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        place = self._place(path)
        if place.name:
            raise jail.Refused(SFTP_NO_SUCH_FILE, "not a folder")
        if not place.area:
            return [
                paramiko.SFTPAttributes.from_stat(os.stat(self.dir / a), filename=a) for a in jail.areas(self.archive)
            ]
        found = []
        for entry in os.scandir(place.path):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            found.append(paramiko.SFTPAttributes.from_stat(entry.stat(follow_symlinks=False), filename=entry.name))
        return found

    @_refusals
    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        place = self._place(path)
        if not place.name:
            return paramiko.SFTPAttributes.from_stat(os.stat(place.path), filename=place.area or "/")
        return paramiko.SFTPAttributes.from_stat(jail.regular_file(place.path), filename=place.name)

    lstat = stat

    @_refusals
    def open(self, path: str, flags: int, attr: Any) -> paramiko.SFTPHandle | int:
        place = self._place(path)
        if not place.name:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "a folder cannot be opened as a file")
        if flags & (os.O_WRONLY | os.O_RDWR):
            if place.area != jail.INBOUND or flags & os.O_RDWR:
                raise jail.Refused(SFTP_PERMISSION_DENIED, "files are written to /inbound only")
            temp = self.dir / jail.INCOMING / f"{uuid.uuid4().hex}.part"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            handle: paramiko.SFTPHandle = _Upload(self, place.name, temp, fd)
        else:
            jail.regular_file(place.path)
            handle = _Download(self, os.open(place.path, os.O_RDONLY | os.O_NOFOLLOW))
        handle.filename = place.virtual
        return handle

    @_refusals
    def remove(self, path: str) -> int:
        place = self._place(path)
        if not place.name or place.area == jail.INBOUND:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "files in /inbound are ours to take")
        jail.regular_file(place.path)
        os.unlink(place.path)
        return SFTP_OK

    @_refusals
    def chattr(self, path: str, attr: Any) -> int:
        place = self._place(path)
        if place.name:
            jail.regular_file(place.path)
        return SFTP_OK  # accepted and ignored: modes and times are ours to keep

    def rename(self, oldpath: str, newpath: str) -> int:
        return SFTP_PERMISSION_DENIED

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return SFTP_PERMISSION_DENIED

    def mkdir(self, path: str, attr: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED


def _read(path: Path) -> tuple[bytes | None, str]:
    """(the bytes when small, else None; their SHA-256)."""
    sha = hashlib.sha256()
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        if os.fstat(fh.fileno()).st_size <= SMALL_FILE:
            data = fh.read()
            sha.update(data)
            return data, sha.hexdigest()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return None, sha.hexdigest()


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


class _Subsystem(paramiko.SFTPServer):
    """paramiko's SFTP server with two changes: CLOSE of an upload answers with the
    result of taking the file (and a reason), and a session that ends with files
    still open discards them instead of closing them."""

    def _process(self, t: int, request_number: int, msg: Any) -> None:
        if t in (CMD_CLOSE, CMD_WRITE):
            handle = msg.get_binary()
            upload = self.file_table.get(handle)
            if isinstance(upload, _Upload):
                if t == CMD_CLOSE:
                    del self.file_table[handle]
                    code, desc = upload.finish()
                else:
                    offset = msg.get_int64()
                    code, desc = upload.write_checked(offset, msg.get_binary())
                self._send_status(request_number, code, desc)
                return
            msg.rewind()
            msg.get_int()
        super()._process(t, request_number, msg)

    def finish_subsystem(self) -> None:
        for handle in self.file_table.values():
            if isinstance(handle, _Upload):
                handle.abort()
        super().finish_subsystem()


class DropBox:
    """The listening server; :meth:`start` binds (``port`` 0: any free port) and
    :meth:`close` stops accepting and closes every session."""

    def __init__(self, config: DropBoxConfig) -> None:
        self.config = config
        self.host_key = ensure_host_key(config.root)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sessions: list[_Session] = []
        self._lock = threading.Lock()
        self._place_lock = threading.Lock()
        self._stopping = threading.Event()
        self.port = config.port
        self._inflight: dict[tuple[str, str], Future[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._swept = 0.0
        self.taken = 0  # files stored and removed from /inbound (tests, bench)

    # ------------------------------------------------------------------ taking

    def place(self, temp: Path, target: Path) -> bool:
        """Move a closed upload into /inbound under its name, never over a file of
        the same name still waiting to be taken (wait a little for it instead).
        Only closes put files there and takes only remove them, so checking and
        renaming under one lock is enough (one rename: metadata is costly here)."""
        deadline = time.monotonic() + LINK_WAIT_SECONDS
        while True:
            with self._place_lock:
                if not os.path.lexists(target):
                    os.rename(temp, target)
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

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
                data, sha = content if content is not None else await asyncio.to_thread(_read, path)
            except FileNotFoundError:
                return  # taken by an earlier run of this name
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
            await asyncio.to_thread(_remove, box, path, name, archive)
            self.taken += 1

    def _sweep(self) -> None:
        """Schedule every file waiting in a hosted partner's /inbound (after a restart,
        or a take that failed)."""
        self._swept = time.monotonic()
        partners = self.config.partners()
        if not self.config.root.is_dir():
            return
        for box in self.config.root.iterdir():
            inbound = box / jail.INBOUND
            if box.name.startswith(".") or not inbound.is_dir() or hosted_settings(partners, box.name) is None:
                continue
            for entry in os.scandir(inbound):
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    self.schedule(box.name, entry.name)

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
        log.info("sftp drop box listening on %s:%d", self.config.host, self.port)

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
        conn.settimeout(None)
        # Without TCP_NODELAY each small SFTP reply waits on delayed ACKs (12 files/s).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", _Subsystem, _Jailed)
        session = _Session(transport)
        with self._lock:
            self._sessions.append(session)
        transport.start_server(event=threading.Event(), server=_Auth(self, session))

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
        )

    return DropBox(
        DropBoxConfig(
            host=settings.sftp.host,
            port=settings.sftp.port,
            root=settings.data_dir / "sftp",
            max_bytes=settings.limits.max_edi_bytes,
            idle_timeout=settings.sftp.idle_timeout_seconds,
            close_after_store=settings.sftp.close_after_store,
            partners=gw.partners,
            accept=accept,
            loop=asyncio.get_running_loop(),
        )
    )
