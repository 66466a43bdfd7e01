"""The messages between the serve process and the drop-box process (decision 0017):
plain data, never code. The drop-box process parses what partners send over the
network; were it taken over, what it writes on the socket must not run anything in
the serve process. So no pickle: a frame is a 4-byte length, then a JSON array (one
line: JSON escapes every newline), then, for a closed file, ``\\n`` and its bytes.

Frames are bounded (:data:`MAX_FROM_CHILD`): a longer one ends the link. The serve
process checks every field it acts on (gateway.transports.sftp_process); this
module only frames. Nothing secret crosses from the drop-box process: no password,
no key (a refused login is a counter and a log line). The serve process sends the
hosted partners' ``[sftp]`` tables: their public keys and password *hashes*, which
the logins need.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from typing import Any

_LENGTH = struct.Struct(">I")
SMALL_FILE = 4 << 20  # a closed file's bytes cross when at most this long (else read from /inbound)
MAX_FROM_CHILD = SMALL_FILE + (64 << 10)  # the bytes, and a header of names and a hash
MAX_FROM_SERVE = 256 << 20  # the settings and every hosted partner's table


class FrameError(ValueError):
    """A frame too long or not of this format: the link is ended."""


def frame(header: list[Any], blob: bytes | None = None) -> bytes:
    """One message: ``header`` (JSON-able) and, optionally, raw bytes."""
    body = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    if blob is not None:
        body = b"".join((body, b"\n", blob))
    return _LENGTH.pack(len(body)) + body


def length(head: bytes, limit: int) -> int:
    """The length a frame's first 4 bytes announce; FrameError beyond ``limit``."""
    size: int = _LENGTH.unpack(head)[0]
    if size > limit:
        raise FrameError(f"a message of {size} bytes (at most {limit})")
    return size


def parse(body: bytes) -> tuple[list[Any], bytes | None]:
    """(header, the bytes or None) of a frame's body; FrameError when not ours."""
    text, newline, blob = body.partition(b"\n")
    try:
        header = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise FrameError("not a JSON message") from exc
    if not isinstance(header, list) or not header or not isinstance(header[0], str):
        raise FrameError("not a message")
    return header, blob if newline else None


def send(sock: socket.socket, lock: threading.Lock, header: list[Any], blob: bytes | None = None) -> None:
    data = frame(header, blob)
    with lock:
        sock.sendall(data)


def receive(sock: socket.socket, limit: int) -> tuple[list[Any], bytes | None] | None:
    """The next message (blocking), or None at end of file."""
    head = _exactly(sock, _LENGTH.size)
    if head is None:
        return None
    body = _exactly(sock, length(head, limit))
    return None if body is None else parse(body)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    parts, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------- partner tables

_HOSTED_FIELDS = ("authorized_keys", "password_hash", "archive", "max_connections")


def tables_of(partners: Any) -> dict[str, dict[str, Any] | None]:
    """The serve process's side: every partner id, with what the drop box needs of
    its ``[sftp]`` table when hosted (plain data)."""
    out: dict[str, dict[str, Any] | None] = {}
    for pid, entry in partners.entries.items() if partners is not None else ():
        sftp = entry.transport.sftp
        hosted = sftp is not None and sftp.mode == "hosted"
        out[pid] = {name: getattr(sftp, name) for name in _HOSTED_FIELDS} if hosted else None
    return out
