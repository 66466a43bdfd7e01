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
_last = [0]  # the last id issued by this process, as an integer
# Random bytes from the OS taken 4 KiB at a time (one getrandom call per ~400 ids,
# not one per id: that call was ~4% of the writer thread's time). Dropped in a forked
# child, so two processes never share a buffer's bytes.
_RANDOM_CHUNK = 4096
_random = [b"", 0]


def _drop_random() -> None:
    _random[0], _random[1] = b"", 0


os.register_at_fork(after_in_child=_drop_random)


def _random80() -> int:
    buffer, at = _random
    assert isinstance(buffer, bytes) and isinstance(at, int)
    if at + 10 > len(buffer):
        buffer, at = os.urandom(_RANDOM_CHUNK), 0
        _random[0] = buffer
    _random[1] = at + 10
    return int.from_bytes(buffer[at : at + 10], "big")


def new_id(now_ms: int | None = None) -> str:
    """A new id; ``now_ms`` fixes the time part (tests)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | _random80()
    if now_ms is None:
        if value <= _last[0]:
            value = _last[0] + 1
        _last[0] = value
    # 13 pairs of characters, 10 bits each, from the top (the same text as 26 of 5 bits)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)
