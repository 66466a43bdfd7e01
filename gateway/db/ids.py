"""Sortable unique identifiers for stored rows.

An id is 26 Crockford base-32 characters: 48 bits of milliseconds since the epoch
then 80 random bits (the ULID layout), so ids sort by creation time as text on
every database and never collide across processes. Within one process ids are
strictly increasing: a second id in the same millisecond (or after the clock stepped
back) adds one to the previous random part, so the documents of one message keep
their order. Never parse meaning out of one beyond its time order.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters
_last = [0]  # the last id issued by this process, as an integer
# Random bits from os.urandom, read 4 KiB at a time (one system call per ~400 ids
# instead of one per id); a forked child must never reuse its parent's bytes.
_random = {"buffer": b"", "at": 0}
_BYTES = 10  # 80 bits per id


def _forget_random() -> None:
    _random["buffer"], _random["at"] = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def _random80() -> int:
    at = _random["at"]
    buffer = _random["buffer"]
    assert isinstance(at, int) and isinstance(buffer, bytes)
    if at + _BYTES > len(buffer):
        buffer, at = os.urandom(4096), 0
        _random["buffer"] = buffer
    _random["at"] = at + _BYTES
    return int.from_bytes(buffer[at : at + _BYTES], "big")


def new_id(now_ms: int | None = None) -> str:
    """A new id; ``now_ms`` fixes the time part (tests)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | _random80()
    if now_ms is None:
        if value <= _last[0]:
            value = _last[0] + 1
        _last[0] = value
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -10, -10)])
