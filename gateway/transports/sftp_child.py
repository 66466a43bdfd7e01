"""The drop-box process: ``python -m gateway.transports.sftp_child``, started and
restarted by the serve process (gateway.transports.sftp_process; decision 0017).

It runs paramiko, the jail, logins, limits and the CLOSE (hash, sync, rename into
/inbound) on the listening socket the serve process bound, with a GIL of its own,
and tells the serve process over a Unix socket which file is ready. It never opens
the database, never reads gateway.toml or the profiles (the serve process sends the
hosted partners' ``[sftp]`` tables, again after each reload) and never stores a
file: a file it closed and could not hand over stays in /inbound for the sweep.

Messages (:func:`send` / :func:`receive`: a 4-byte length, then a pickled tuple; both
ends are this code base, nothing from a partner is unpickled):

- to the serve process: ``("closed", ask, partner, name, content)`` (``ask`` > 0:
  answer it, the CLOSE waits: close_after_store), ``("count", metric, label)``,
  ``("log", logger, level, text)``, ``("ack", ask)``;
- from it: ``("config", DropBoxConfig fields)`` first, ``("partners", ask, tables)``,
  ``("stored", ask, error or None)``, ``("forget", ask, username, client)``,
  ``("ping", ask)``. End of file (the serve process is gone): this process exits.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import struct
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

_LENGTH = struct.Struct(">I")


def send(sock: socket.socket, lock: threading.Lock, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        sock.sendall(_LENGTH.pack(len(data)) + data)


def receive(sock: socket.socket) -> tuple[Any, ...] | None:
    """The next message, or None at end of file."""
    head = _exactly(sock, _LENGTH.size)
    if head is None:
        return None
    body = _exactly(sock, _LENGTH.unpack(head)[0])
    if body is None:
        return None
    message: tuple[Any, ...] = pickle.loads(body)
    return message


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    parts, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


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
        self.entries = {pid: _Entry(_Transport(sftp)) for pid, sftp in tables.items()}

    def entry(self, partner_id: str) -> _Entry | None:
        return self.entries.get(partner_id)


def tables_of(partners: Any) -> dict[str, Any]:
    """The serve process's side: every partner id, with its ``[sftp]`` table when hosted."""
    out: dict[str, Any] = {}
    for pid, entry in partners.entries.items() if partners is not None else ():
        sftp = entry.transport.sftp
        out[pid] = sftp if sftp is not None and sftp.mode == "hosted" else None
    return out


class _Forward(logging.Handler):
    """Log records go to the serve process, which logs them as its own (one log)."""

    def __init__(self, out: _Link) -> None:
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.out.send(("log", record.name, record.levelno, self.format(record)))
        except Exception:
            self.handleError(record)


class _Link:
    """This process's end of the socket to the serve process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lock = sock, threading.Lock()
        self._asks: dict[int, Future[None]] = {}
        self._next = 0

    def send(self, message: tuple[Any, ...]) -> None:
        send(self.sock, self.lock, message)

    def hand_over(self, partner_id: str, name: str, content: Any, wait: bool) -> Future[None] | None:
        if not wait:
            self.send(("closed", 0, partner_id, name, content))
            return None
        future: Future[None] = Future()
        with self.lock:
            self._next += 1
            ask = self._next
            self._asks[ask] = future
        self.send(("closed", ask, partner_id, name, content))
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

    die_with_gateway(gateway_pid)
    link = _Link(socket.socket(fileno=link_fd))
    first = receive(link.sock)
    if first is None or first[0] != "config":
        os._exit(1)
    fields, tables, level = first[1], first[2], first[3]

    root = logging.getLogger()
    root.handlers[:] = [_Forward(link)]
    root.setLevel(level)
    logging.getLogger("paramiko").setLevel(max(level, logging.WARNING))

    from gateway.transports.sftp_server import DropBox, DropBoxConfig

    partners = [HostedPartners(tables)]
    box = DropBox(
        DropBoxConfig(
            **fields,
            partners=lambda: partners[0],
            hand_over=link.hand_over,
            count=lambda metric, label: link.send(("count", metric, label)),
        )
    )
    box.start(socket.socket(fileno=listen_fd))
    while (message := receive(link.sock)) is not None:
        kind = message[0]
        if kind == "stored":
            link.stored(message[1], message[2])
            continue
        if kind == "partners":
            partners[0] = HostedPartners(message[2])
        elif kind == "forget":
            box.logins.succeeded(message[2], message[3])
        link.send(("ack", message[1]))
    box.close()  # the serve process is gone or stopping: so do we
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
