"""The hosted drop box as the serve process sees it: a child process running the
SFTP server (gateway.transports.sftp_child) and the takes of what it closes
(gateway.transports.sftp_takes). Decision 0017.

- The listening socket is bound here, once, and passed to the child: the port is
  known at once (``port``), and connections wait in its backlog while a child starts
  or restarts.
- The child tells us each closed file (partner, name, content and SHA-256); we take
  it through the durable intake, then remove it from /inbound. With
  close_after_store we answer the child when the take is done.
- Counters of refusals arrive as messages and go to gateway.metrics; log records
  arrive as messages and are logged here, under the child's logger names.
- The child parses untrusted network input, so what it sends is data checked here
  (gateway.transports.sftp_wire: JSON, bounded frames, never unpickled): a closed
  file names a hosted partner and a plain name, which we join to that partner's
  /inbound ourselves; a counter has a known name and label; a log record a level
  and one line. A frame that breaks the format ends the child (it is restarted).
  Log records are rate-limited per logger and level (gateway.transports.sftp_log_relay):
  a client cannot make the child flood our log.
- A reload of the profiles sends the hosted partners' tables (:meth:`partners_changed`).
- A child that dies is logged, counted (``gateway_sftp_drop_box_restarts_total``)
  and started again; what it had closed is in /inbound, which the sweep takes.
  The child dies with us (gateway.worker_lifetime, and end of file on its socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.logsafe import printable
from gateway.transports import sftp_jail as jail
from gateway.transports import sftp_limits, sftp_log_relay
from gateway.transports.sftp_keys import ensure_host_key
from gateway.transports.sftp_log_relay import LogRelay
from gateway.transports.sftp_session import hosted_settings
from gateway.transports.sftp_takes import Takes
from gateway.transports.sftp_wire import MAX_FROM_CHILD, FrameError, frame, length, parse, tables_of

log = logging.getLogger(__name__)

RESTART_SECONDS = (0.2, 1.0, 5.0)  # waits before starting the child again (after repeated deaths: the last)
GROUP_SECONDS, GROUP_FILES = 0.02, 64  # closed files are taken together after this long, or this many
STOP_SECONDS = 5.0  # a child that does not exit after its socket closed is killed
MAX_PENDING = 1024  # told files not yet taken; beyond this the child's messages wait (its socket fills)
LOGGED_TEXT = 8000  # a log record of the child is cut at this many characters
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOGIN_REASONS = frozenset({"wrong_password", "no_password", "rate_limited"})
_LIMITS = frozenset({sftp_limits.STARTUPS, sftp_limits.GLOBAL, sftp_limits.PER_PARTNER})
_CHILD_LOGGERS = ("gateway.transports.", "paramiko.")  # names its records may carry


@dataclass(slots=True)
class ChildSettings:
    """The drop box's settings the child gets (gateway.transports.sftp_server.DropBoxConfig)."""

    host: str
    port: int
    root: Path
    max_bytes: int
    idle_timeout: float
    close_after_store: bool
    sync_uploads: bool
    limits: sftp_limits.Limits


class DropBoxProcess:
    """Start with :meth:`start`, stop with :meth:`aclose`."""

    def __init__(self, settings: ChildSettings, partners: Any, accept: Any, metrics: Any = None) -> None:
        self.settings, self.partners, self.metrics = settings, partners, metrics
        self.takes = Takes(
            settings.root,
            settings.idle_timeout,
            partners,
            accept,
            sync_uploads=settings.sync_uploads,
            metrics=metrics,
        )
        self.host_key = ensure_host_key(settings.root)
        self.port = settings.port
        self.restarts = 0  # children started again after one died (tests, metrics)
        self.pid = 0  # the running child's pid (tests)
        self._listener: socket.socket | None = None
        self._reader: asyncio.StreamReader | None = None
        self._spawned = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._asks: dict[int, asyncio.Future[None]] = {}
        self._next = 0
        self._stopping = False
        self._held: list[Closed] = []  # closed files waiting to be taken together
        self._flush: asyncio.TimerHandle | None = None
        self._up = asyncio.Event()
        self.logs = LogRelay(metrics)  # the child's log records, rate-limited
        self._summary: asyncio.TimerHandle | None = None  # the next "N lines suppressed" line

    @property
    def taken(self) -> int:
        return self.takes.taken

    async def start(self) -> None:
        s = self.settings
        self._listener = socket.create_server((s.host, s.port), backlog=64)
        self.port = self._listener.getsockname()[1]
        await self._spawn()
        self._runner = asyncio.create_task(self._run())
        self.takes.start_sweeping()
        log.info(
            "sftp drop box listening on %s:%d, host key %s", s.host, self.port, self.host_key.fingerprint
        )

    async def _spawn(self) -> None:
        assert self._listener is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        s = self.settings
        fields = {
            "host": s.host, "port": self.port, "root": str(s.root), "max_bytes": s.max_bytes,
            "idle_timeout": s.idle_timeout, "close_after_store": s.close_after_store,
            "sync_uploads": s.sync_uploads, "limits": dataclasses.asdict(s.limits),
        }  # fmt: skip
        level = logging.getLogger().getEffectiveLevel()
        proc = None
        try:
            args = [str(self._listener.fileno()), str(theirs.fileno()), str(os.getpid())]
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.transports.sftp_child", *args],
                pass_fds=(self._listener.fileno(), theirs.fileno()),
                stdin=subprocess.DEVNULL,
            )
            reader, writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_FROM_CHILD)
        except BaseException:
            ours.close()
            if proc is not None:  # never left running without its socket
                proc.kill()
                proc.wait()
            raise
        finally:
            theirs.close()
        self._proc, self.pid, self._spawned = proc, proc.pid, time.monotonic()
        self._reader, self._writer = reader, writer
        self._write(["config", fields, tables_of(self.partners()), level])  # read first by the child
        self._up.set()

    async def _run(self) -> None:
        """Read the child's messages; when it dies, start another (backoff: 0.2 s, 1 s,
        then 5 s while it keeps dying within a minute of its start)."""
        deaths = 0
        while True:
            assert self._reader is not None and self._writer is not None
            await self._read(self._reader)
            if self._stopping:
                return
            self._writer.close()
            code = await asyncio.to_thread(self._reap)
            self._fail_asks()
            self._up.clear()
            deaths = 1 if time.monotonic() - self._spawned > 60 else deaths + 1
            self.restarts += 1
            if self.metrics is not None:
                self.metrics.sftp_drop_box_restarts += 1
            wait = RESTART_SECONDS[min(deaths, len(RESTART_SECONDS)) - 1]
            log.error(
                "sftp: the drop-box process exited (%s; %d time(s) in a row); starting it again in %.1f s",
                code, deaths, wait,
            )  # fmt: skip
            while True:  # a start that fails is retried at the same pace, logged once each
                await asyncio.sleep(wait)
                if self._stopping:
                    return
                try:
                    await self._spawn()
                    break
                except Exception:
                    deaths += 1
                    wait = RESTART_SECONDS[min(deaths, len(RESTART_SECONDS)) - 1]
                    log.exception("sftp: could not start the drop-box process; again in %.1f s", wait)
            try:
                await self.takes.sweep()  # what the dead child closed and never told us about
            except Exception:
                log.exception("sftp: sweeping /inbound failed")  # the periodic sweep retries

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            while self.takes.pending() + len(self._held) > MAX_PENDING:
                await asyncio.sleep(0.01)  # the child waits (its socket fills): memory stays bounded
            try:
                head = await reader.readexactly(4)
                header, blob = parse(await reader.readexactly(length(head, MAX_FROM_CHILD)))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except FrameError as exc:  # not this code base talking: end it (it is restarted)
                log.error("sftp: the drop-box process sent %s; stopping it", exc)
                if self._proc is not None:
                    self._proc.kill()
                return
            try:
                self._handle(header, blob)
            except Exception:  # a bug here must not stop the reading (the child would block)
                log.exception("sftp: a message of the drop-box process could not be handled")

    def _handle(self, message: list[Any], blob: bytes | None) -> None:
        kind = message[0]
        if kind == "closed":
            closed = self._closed(message, blob)
            if closed is None:
                return
            if closed.ask or self._stopping:  # a CLOSE waits for it (or we stop): at once
                self._take(closed)
                return
            # The others wait a little for the next ones, so that they share one
            # group commit (decision 0017: no longer at the expense of paramiko's GIL).
            self._held.append(closed)
            if len(self._held) >= GROUP_FILES:
                self._take_held()
            elif self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(GROUP_SECONDS, self._take_held)
        elif kind == "count" and len(message) == 3:
            self._count(message[1], message[2])
        elif kind == "log" and len(message) == 4:
            self._log(message[1], message[2], message[3])
        elif kind == "ack" and len(message) == 2:
            future = self._asks.pop(message[1], None) if _count_of(message[1]) else None
            if future is not None and not future.done():
                future.set_result(None)
        else:
            log.warning("sftp: the drop-box process sent an unknown message %s", printable(kind, 40))

    def _closed(self, message: list[Any], blob: bytes | None) -> Closed | None:
        """A closed file as told by the child, checked: a hosted partner, a plain name
        (joined to its /inbound here), a hash, the bytes when small. None when not."""
        if len(message) != 6 or not _count_of(message[1]):
            log.warning("sftp: the drop-box process told a closed file in a form not ours; ignored")
            return None
        _, ask, partner_id, name, sha, inode = message
        wrong = None
        if not isinstance(partner_id, str) or hosted_settings(self.partners(), partner_id) is None:
            wrong = "not a hosted partner"
        elif not jail.plain_name(name):
            wrong = "not a plain file name"
        elif not (sha is None or (isinstance(sha, str) and _SHA256.fullmatch(sha))):
            wrong = "not a SHA-256"
        elif blob is not None and sha is None:
            wrong = "bytes without their hash"
        elif not (inode is None or _count_of(inode)):
            wrong = "not an inode number"
        if wrong is not None:
            log.warning(
                "sftp: the drop-box process told %s/inbound/%s: %s; ignored (the sweep looks at /inbound)",
                printable(partner_id, 100), printable(name, 300), wrong,
            )  # fmt: skip
            if ask and self._writer is not None and not self._writer.is_closing():
                self._write(["stored", ask, "not taken"])
            return None
        return Closed(ask, partner_id, name, None if sha is None else (blob, sha), inode)

    def _take(self, closed: Closed) -> None:
        task = self.takes.schedule(closed.partner_id, closed.name, closed.content, closed.inode)
        if closed.ask:  # answered on the socket it came from (not a restarted child's)
            task.add_done_callback(functools.partial(self._stored, self._writer, closed.ask))

    def _take_held(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        held, self._held = self._held, []
        for closed in held:
            self._take(closed)

    def _stored(self, writer: asyncio.StreamWriter | None, ask: int, task: asyncio.Task[None]) -> None:
        """Answer the child whose CLOSE waits. Only that child: asks are numbered per
        child, and a restarted one's ask of the same number is another file."""
        if task.cancelled():  # stopped before its commit: the CLOSE must not hear "stored"
            error: str | None = "not stored yet (stopping)"
        else:
            error = None if task.exception() is None else str(task.exception())
        if writer is not None and writer is self._writer and not writer.is_closing():
            self._write(["stored", ask, error])

    def _count(self, metric: Any, label: Any) -> None:
        """A refusal counted in the child; labels checked, so that the series stay few."""
        if self.metrics is None:
            return
        if metric == "sftp_login_refused" and isinstance(label, list) and len(label) == 2:
            partner, reason = label
            partners = self.partners()
            known = partner == "(unknown)" or (
                isinstance(partner, str) and partners is not None and partners.entry(partner) is not None
            )
            if known and reason in _LOGIN_REASONS:
                self.metrics.sftp_login_refused[(partner, reason)] += 1
                return
        elif metric == "sftp_connections_refused" and label in _LIMITS:
            self.metrics.sftp_connections_refused[label] += 1
            return
        log.warning("sftp: the drop-box process sent an unknown counter %s", printable(metric, 40))

    def _log(self, name: Any, level: Any, text: Any) -> None:
        """A record of the child, as one line (escaped: gateway.logsafe) under one of
        its own loggers (a name it made up would be a logger kept forever), unless
        its logger and level logged too many lines of late (gateway.transports.sftp_log_relay)."""
        if not (isinstance(name, str) and len(name) <= 100 and name.startswith(_CHILD_LOGGERS)):
            name = "gateway.transports.sftp_child" if name != "paramiko" else name
        if not _count_of(level):
            level = logging.WARNING
        level = min(max(level, logging.DEBUG), logging.CRITICAL)
        logger = self.logs.admit(name, level)
        if logger is not None:
            logging.getLogger(logger).log(level, "%s", printable(text, LOGGED_TEXT))
        elif self._summary is None:  # dropped: one summary line in a while, not one each
            self._summary = asyncio.get_running_loop().call_later(
                sftp_log_relay.SUMMARY_SECONDS, self._summarize
            )

    def _summarize(self) -> None:
        self._summary = None
        self.logs.summarize()

    def _write(self, message: list[Any]) -> None:
        assert self._writer is not None
        self._writer.write(frame(message))

    async def _ask(self, kind: str, *args: Any, timeout: float = 10.0) -> None:
        """Send a message the child acknowledges; returns once it has (everything it
        sent before, counters and log records, has then been handled here)."""
        await asyncio.wait_for(self._up.wait(), timeout)
        self._next += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asks[self._next] = future
        self._write([kind, self._next, *args])
        await asyncio.wait_for(future, timeout)

    async def partners_changed(self) -> None:
        """The profiles were reloaded: the child logs partners in by the new ones."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            await self._ask("partners", tables_of(self.partners()))

    async def settled(self) -> None:
        """Returns once what the child did so far is counted here (tests)."""
        await self._ask("ping")

    async def forget_failures(self, username: str, client: str) -> None:
        """Forget the wrong passwords of ``username`` from ``client`` (as a right one does)."""
        await self._ask("forget", username, client)

    def _fail_asks(self) -> None:
        for future in self._asks.values():
            if not future.done():
                future.set_exception(ConnectionError("the drop-box process exited"))
        self._asks.clear()

    def _reap(self) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    async def aclose(self) -> None:
        """Stop the child and drain it: end of file on its socket (it closes its
        sessions and exits), every message it sent before that read and its files
        taken, then the takes under way awaited."""
        self._stopping = True
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write_eof()  # the child's end of file; we still read its last messages
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner, STOP_SECONDS)
        self._take_held()
        if self._summary is not None:
            self._summary.cancel()
        self._summarize()
        if self._writer is not None:
            self._writer.close()
        await asyncio.to_thread(self._reap)
        self._fail_asks()
        if self._listener is not None:
            self._listener.close()
        await self.takes.aclose()


@dataclass(frozen=True, slots=True)
class Closed:
    """A closed file the child told (checked: :meth:`DropBoxProcess._closed`)."""

    ask: int  # > 0: the CLOSE waits for the take (close_after_store)
    partner_id: str
    name: str
    content: tuple[bytes | None, str] | None  # (the bytes when small, SHA-256); None: read it
    inode: int | None  # the file it was; removed only while still that one


def _count_of(value: Any) -> bool:
    """A non-negative int from JSON (not a bool)."""
    return type(value) is int and 0 <= value < 1 << 63


def drop_box_for(gw: Any) -> DropBoxProcess:
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

    return DropBoxProcess(
        ChildSettings(
            host=settings.sftp.host,
            port=settings.sftp.port,
            root=settings.data_dir / "sftp",
            max_bytes=settings.limits.max_edi_bytes,
            idle_timeout=settings.sftp.idle_timeout_seconds,
            close_after_store=settings.sftp.close_after_store,
            sync_uploads=settings.sftp.sync_uploads,
            limits=sftp_limits.Limits.of(settings.sftp),
        ),
        partners=gw.partners,
        accept=accept,
        metrics=gw.metrics,
    )
