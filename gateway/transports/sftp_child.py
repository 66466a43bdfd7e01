"""The drop-box process: ``python -m gateway.transports.sftp_child``, started and
restarted by the serve process (gateway.transports.sftp_process; decision 0017).

It runs paramiko, the jail, logins, limits and the CLOSE (hash, sync, rename into
/inbound) on the listening socket the serve process bound, with a GIL of its own,
and tells the serve process over a Unix socket which file is ready. It never opens
the database, never reads gateway.toml or the profiles (the serve process sends the
hosted partners' ``[sftp]`` tables, again after each reload) and never stores a
file: a file it closed and could not hand over stays in /inbound for the sweep.

Messages (gateway.transports.sftp_wire: a 4-byte length, a JSON array, and a closed
file's bytes; plain data, nothing is unpickled on either side):

- to the serve process (which rate-limits the log records it writes:
  gateway.transports.sftp_log_relay): ``["closed", ask, partner, name, sha256, inode]`` with the
  bytes when small (``ask`` > 0: answer it, the CLOSE waits: close_after_store),
  ``["count", metric, label]``, ``["log", logger, level, text]``, ``["ack", ask]``;
- from it: ``["config", fields, tables, level]`` first, ``["partners", ask, tables]``,
  ``["stored", ask, error or null]``, ``["forget", ask, username, client]``,
  ``["ping", ask]``. End of file (the serve process is gone): this process exits.

It ignores SIGINT and SIGTERM: a service manager (or a terminal's Ctrl-C) signals
every process of the gateway at once, and the serve process must first stop taking
what this one tells it; it then closes the socket, and this process exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.transports import sftp_wire
from gateway.transports.sftp_wire import MAX_FROM_SERVE


@dataclass(frozen=True, slots=True)
class HostedTable:
    """What the drop box reads of a hosted partner's ``[sftp]`` table."""

    authorized_keys: tuple[str, ...]
    password_hash: str | None
    archive: bool
    max_connections: int | None
    mode: str = "hosted"


@dataclass(frozen=True, slots=True)
class _Transport:
    sftp: Any


@dataclass(frozen=True, slots=True)
class _Entry:
    transport: _Transport


class HostedPartners:
    """What the drop box asks of gateway.partners.PartnerDirectory: ``entry(id)`` and
    ``entries``, built from ``{partner id: its [sftp] table or None}``."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.entries = {pid: _Entry(_Transport(_table(sftp))) for pid, sftp in tables.items()}

    def entry(self, partner_id: str) -> _Entry | None:
        return self.entries.get(partner_id)


def _table(fields: dict[str, Any] | None) -> HostedTable | None:
    if fields is None:
        return None
    return HostedTable(
        authorized_keys=tuple(fields["authorized_keys"]),
        password_hash=fields["password_hash"],
        archive=bool(fields["archive"]),
        max_connections=fields["max_connections"],
    )


class _Forward(logging.Handler):
    """Log records go to the serve process, which logs them as its own (one log)."""

    def __init__(self, out: _Link) -> None:
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.out.send(["log", record.name, record.levelno, self.format(record)])
        except Exception:
            self.handleError(record)


class _Link:
    """This process's end of the socket to the serve process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lock = sock, threading.Lock()
        self._asks: dict[int, Future[None]] = {}
        self._next = 0

    def send(self, header: list[Any], blob: bytes | None = None) -> None:
        sftp_wire.send(self.sock, self.lock, header, blob)

    def hand_over(
        self, partner_id: str, name: str, content: Any, wait: bool, inode: int | None = None
    ) -> Future[None] | None:
        data, sha = content if content is not None else (None, None)
        future: Future[None] | None = None
        ask = 0
        if wait:
            future = Future()
            with self.lock:
                self._next += 1
                ask = self._next
                self._asks[ask] = future
        self.send(["closed", ask, partner_id, name, sha, inode], data)
        return future

    def stored(self, ask: int, error: str | None) -> None:
        with self.lock:
            future = self._asks.pop(ask, None)
        if future is not None:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(RuntimeError(error))


def main(argv: list[str]) -> None:
    listen_fd, link_fd, gateway_pid = (int(a) for a in argv)
    from gateway.worker_lifetime import die_with_gateway

    # Stopped by the serve process (end of file on the socket), not by a signal sent
    # to the whole service: it drains what we told it first (module doc).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_gateway(gateway_pid)
    link = _Link(socket.socket(fileno=link_fd))
    first = sftp_wire.receive(link.sock, MAX_FROM_SERVE)
    if first is None or first[0][0] != "config":
        os._exit(1)
    fields, tables, level = first[0][1], first[0][2], first[0][3]
    fields["root"] = Path(fields["root"])

    root = logging.getLogger()
    root.handlers[:] = [_Forward(link)]
    root.setLevel(level)
    logging.getLogger("paramiko").setLevel(max(level, logging.WARNING))

    from gateway.transports.sftp_limits import Limits
    from gateway.transports.sftp_server import DropBox, DropBoxConfig

    fields["limits"] = Limits(**fields["limits"])
    partners = [HostedPartners(tables)]
    box = DropBox(
        DropBoxConfig(
            **fields,
            partners=lambda: partners[0],
            hand_over=link.hand_over,
            count=lambda metric, label: link.send(["count", metric, label]),
        )
    )
    box.start(socket.socket(fileno=listen_fd))
    while (received := sftp_wire.receive(link.sock, MAX_FROM_SERVE)) is not None:
        message = received[0]
        kind = message[0]
        if kind == "stored":
            link.stored(message[1], message[2])
            continue
        if kind == "partners":
            partners[0] = HostedPartners(message[2])
        elif kind == "forget":
            box.logins.succeeded(message[2], message[3])
        link.send(["ack", message[1]])
    box.close()  # the serve process is gone or stopping: so do we
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
