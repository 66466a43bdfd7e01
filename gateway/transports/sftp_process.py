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
- A reload of the profiles sends the hosted partners' tables (:meth:`partners_changed`).
- A child that dies is logged, counted (``gateway_sftp_drop_box_restarts_total``)
  and started again; what it had closed is in /inbound, which the sweep takes.
  The child dies with us (gateway.worker_lifetime, and end of file on its socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.transports import sftp_limits
from gateway.transports.sftp_child import tables_of
from gateway.transports.sftp_keys import ensure_host_key
from gateway.transports.sftp_takes import Takes

log = logging.getLogger(__name__)

RESTART_SECONDS = (0.2, 1.0, 5.0)  # waits before starting the child again (after repeated deaths: the last)
GROUP_SECONDS, GROUP_FILES = 0.02, 64  # closed files are taken together after this long, or this many
STOP_SECONDS = 5.0  # a child that does not exit after its socket closed is killed


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
        self.takes = Takes(settings.root, settings.idle_timeout, partners, accept)
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
        self._held: list[tuple[Any, ...]] = []  # closed files waiting to be taken together
        self._flush: asyncio.TimerHandle | None = None
        self._up = asyncio.Event()

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
            "host": s.host, "port": self.port, "root": s.root, "max_bytes": s.max_bytes,
            "idle_timeout": s.idle_timeout, "close_after_store": s.close_after_store,
            "sync_uploads": s.sync_uploads, "limits": s.limits,
        }  # fmt: skip
        level = logging.getLogger().getEffectiveLevel()
        try:
            args = [str(self._listener.fileno()), str(theirs.fileno()), str(os.getpid())]
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.transports.sftp_child", *args],
                pass_fds=(self._listener.fileno(), theirs.fileno()),
                stdin=subprocess.DEVNULL,
            )
            self._spawned = time.monotonic()
            self.pid = self._proc.pid
            self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._write(("config", fields, tables_of(self.partners()), level))  # read first by the child
        self._up.set()

    async def _run(self) -> None:
        """Read the child's messages; when it dies, start another."""
        deaths = 0
        while True:
            assert self._reader is not None
            await self._read(self._reader)
            if self._stopping:
                return
            assert self._writer is not None
            self._writer.close()
            code = await asyncio.to_thread(self._reap)
            self._fail_asks()
            deaths = 1 if time.monotonic() - self._spawned > 60 else deaths + 1
            self.restarts += 1
            if self.metrics is not None:
                self.metrics.sftp_drop_box_restarts += 1
            wait = RESTART_SECONDS[min(deaths, len(RESTART_SECONDS)) - 1]
            log.error("sftp: the drop-box process exited (%s); starting it again in %.1f s", code, wait)
            self._up.clear()
            await asyncio.sleep(wait)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception:
                log.exception("sftp: could not start the drop-box process")
                continue
            try:
                await self.takes.sweep()  # what the dead child closed and never told us about
            except Exception:
                log.exception("sftp: sweeping /inbound failed")  # the periodic sweep retries

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                head = await reader.readexactly(4)
                message = pickle.loads(await reader.readexactly(int.from_bytes(head, "big")))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            try:
                self._handle(message)
            except Exception:  # a bug here must not stop the reading (the child would block)
                log.exception("sftp: a message of the drop-box process could not be handled")

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "closed":
            if message[1]:  # a CLOSE waits for it: at once
                self._take(message)
                return
            # The others wait a little for the next ones, so that they share one
            # group commit (decision 0017: no longer at the expense of paramiko's GIL).
            self._held.append(message)
            if len(self._held) >= GROUP_FILES:
                self._take_held()
            elif self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(GROUP_SECONDS, self._take_held)
        elif kind == "count":
            self._count(message[1], message[2])
        elif kind == "log":
            logging.getLogger(message[1]).log(message[2], "%s", message[3])
        elif kind == "ack":
            future = self._asks.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result(None)

    def _take(self, message: tuple[Any, ...]) -> None:
        _, ask, partner_id, name, content = message
        task = self.takes.schedule(partner_id, name, content)
        task.add_done_callback(functools.partial(self._stored, ask))

    def _take_held(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        held, self._held = self._held, []
        for message in held:
            self._take(message)

    def _stored(self, ask: int, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() or task.exception() is None else str(task.exception())
        if ask and self._writer is not None and not self._writer.is_closing():
            self._write(("stored", ask, error))

    def _count(self, metric: str, label: Any) -> None:
        if self.metrics is not None and metric in ("sftp_login_refused", "sftp_connections_refused"):
            getattr(self.metrics, metric)[label] += 1

    def _write(self, message: tuple[Any, ...]) -> None:
        assert self._writer is not None
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(len(data).to_bytes(4, "big") + data)

    async def _ask(self, kind: str, *args: Any, timeout: float = 10.0) -> None:
        """Send a message the child acknowledges; returns once it has (everything it
        sent before, counters and log records, has then been handled here)."""
        await asyncio.wait_for(self._up.wait(), timeout)
        self._next += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asks[self._next] = future
        self._write((kind, self._next, *args))
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
        self._stopping = True
        self._take_held()
        if self._writer is not None:
            self._writer.close()  # end of file: the child closes its sessions and exits
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        await asyncio.to_thread(self._reap)
        self._fail_asks()
        if self._listener is not None:
            self._listener.close()
        await self.takes.aclose()


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
