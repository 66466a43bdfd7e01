"""The hosted SFTP drop box: partners log in with their partner id and a key from
their profile's ``authorized_keys`` and see only their own tree (gateway.transports.sftp_jail);
one session's work is gateway.transports.sftp_session, this module listens and hands
closed files over.

It runs in a process of its own (gateway.transports.sftp_child; decision 0017), so that
paramiko's threads do not wait for the GIL behind the serve process's takes. Threads:
one thread accepts connections on the socket the serve process bound; paramiko runs
each connection and its SFTP session in threads of its own. Nothing here touches the
database: a closed upload is handed to the serve process (``config.hand_over``), which
takes it on its event loop (gateway.transports.sftp_takes), so files from many
sessions share the intake's group commits.

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
3. The serve process's take stores the file through the intake (raw bytes synced, row committed)
   with an idempotency key of its name and content hash, and only then removes it
   from /inbound (or moves it to /archive). A failed take leaves the file; the serve
   process's sweep retries it (also the files of a drop-box process that died). A crash between the commit and the removal leaves it too; the retry
   finds the key and only removes it.

So a file in /inbound is a file not yet stored durably, and a file gone from
/inbound is stored once: partners may watch for that.

This module never parses payloads; the pipeline decides what a file is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from gateway.logsafe import printable
from gateway.passwords import LoginLimiter
from gateway.transports import sftp_jail as jail
from gateway.transports import sftp_limits
from gateway.transports.sftp_flush import names_durable_with_file
from gateway.transports.sftp_keys import ensure_host_key
from gateway.transports.sftp_marks import read_file
from gateway.transports.sftp_session import (
    JailedSftp,
    PartnerAuth,
    Session,
    SftpSubsystem,
)

log = logging.getLogger(__name__)

LINK_WAIT_SECONDS = 10.0  # an upload waits this long for a same-name file in /inbound to be taken
LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS = 5, 300.0  # wrong passwords per (partner, address), then refused


@dataclass(slots=True)
class DropBoxConfig:
    """What the drop box needs, handed over by its process (gateway.transports.sftp_child)."""

    host: str
    port: int
    root: Path  # <data_dir>/sftp
    max_bytes: int
    idle_timeout: float
    partners: Callable[[], Any]  # the hosted partners now (gateway.transports.sftp_child.HostedPartners)
    # hand_over(partner_id, name, (bytes or None, sha256), wait, inode) -> Future of the take when
    # ``wait`` (close_after_store), else None: the serve process stores the file.
    hand_over: Callable[..., Future[None] | None]
    count: Callable[[str, Any], None] = lambda metric, label: None  # a refusal, counted by serve
    close_after_store: bool = False  # answer an upload's CLOSE only once it is stored durably
    sync_uploads: bool = False  # fsync each upload and its name in /inbound before the CLOSE's answer
    limits: sftp_limits.Limits = field(default_factory=sftp_limits.Limits)  # connections (sftp_limits)


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
        self._one_flush: dict[Path, bool] = {}  # per /inbound: its fsync covers a new name (sftp_flush)
        self._syncer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sftp-sync")
        self.logins = LoginLimiter(LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS)  # failed passwords
        self._stopping = threading.Event()
        self.port = config.port

    def login_refused(self, username: str, client: str, reason: str) -> None:
        """A password login refused (wrong, none in the profile, or rate-limited):
        logged and counted; the client only sees the usual authentication failure."""
        partners = self.config.partners()
        known = partners is not None and partners.entry(username) is not None
        partner = username if known else "(unknown)"  # a label per guessed name would grow unbounded
        log.warning(
            "sftp: password login refused for user %r from %s: %s", printable(username, 100), client, reason
        )
        self.config.count("sftp_login_refused", (partner, reason))

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
        self.config.count("sftp_connections_refused", reason)

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

    def sync_file_and_folder(self, fd: int, folder: Path) -> None:
        """fsync an upload and the folder it was just renamed into. Where the file
        system commits the rename with the file's fsync (ext4 with a journal, XFS:
        gateway.transports.sftp_flush, decision 0020) that one fsync is all. Elsewhere
        both syncs run at once (the folder's in a helper thread): each is one disk
        flush when the file system has no journal (ext4 without one, as on the machine
        measured), and flushes asked for together are merged by the block layer. The
        CLOSE waits for both; either failing fails it."""
        one = self._one_flush.get(folder)
        if one is None:
            one = self._one_flush[folder] = names_durable_with_file(folder)
        if one:
            os.fsync(fd)  # after the rename: its journal commit carries the new name
            return
        folder_synced = self._syncer.submit(self.sync_folder, folder)
        try:
            os.fsync(fd)
        finally:
            folder_synced.result()

    def sync_folder(self, folder: Path) -> None:
        """fsync ``folder``, shared with concurrent callers (DirSyncs)."""
        self._dir_syncs.sync(folder)

    def schedule(
        self, partner_id: str, name: str, content: tuple[bytes | None, str] | None = None
    ) -> Future[None] | None:
        """Hand ``/inbound/<name>`` of the partner to the serve process, which stores it
        and removes it; a Future of that only with close_after_store."""
        path = jail.box_dir(self.config.root, partner_id) / jail.INBOUND / name
        inode = None
        with contextlib.suppress(OSError):  # the serve process reads it itself then
            # Which file this is: the serve process removes it only if still this one.
            inode = os.lstat(path).st_ino
            if content is None:
                content = read_file(path)
        return self.config.hand_over(partner_id, name, content, self.config.close_after_store, inode)

    def start(self, listener: socket.socket | None = None) -> None:
        """Serve on ``listener`` (bound by the serve process, so that the port stays
        while this process restarts) or on a socket of its own."""
        sock = listener or socket.create_server((self.config.host, self.config.port), backlog=64)
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
        self._syncer.shutdown(wait=False)


def _peer(conn: socket.socket) -> str:
    try:
        return str(conn.getpeername()[0])
    except OSError:
        return "?"
