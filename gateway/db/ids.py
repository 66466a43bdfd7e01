"""Sortable unique identifiers for stored rows.

An id is 26 Crockford base-32 characters: 48 bits of milliseconds since the epoch
then 80 random bits (the ULID layout), so ids sort by creation time as text on
every database and never collide across processes. Within one process ids are
strictly increasing: a second id in the same millisecond (or after the clock stepped
back) adds one to the previous random part, so the documents of one message keep
their order. Never parse meaning out of one beyond its time order.

Safe from several threads at once (one lock: two threads never take the same random
bytes nor step past the same previous id), and across ``fork``: a child forgets its
parent's random buffer and its last id, so neither issues the other's next id.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters
_BYTES = 10  # 80 bits per id
_CHUNK = 4096  # random bytes read at a time: one system call per ~400 ids
_lock = threading.Lock()


class _State:
    __slots__ = ("at", "buffer", "last")

    def __init__(self) -> None:
        self.buffer = b""
        self.at = 0
        self.last = 0  # the last id issued by this process, as an integer


_state = _State()


def _forget() -> None:
    # A forked child must never reuse its parent's random bytes, nor count on from
    # the parent's last id (both would issue last + 1 after a clock step back).
    global _lock, _state
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork
    _state = _State()


os.register_at_fork(after_in_child=_forget)


def new_id(now_ms: int | None = None) -> str:
    """A new id; ``now_ms`` fixes the time part (tests)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        state = _state
        at = state.at
        if at + _BYTES > len(state.buffer):
            state.buffer, at = os.urandom(_CHUNK), 0
        state.at = at + _BYTES
        value = (ms << 80) | int.from_bytes(state.buffer[at : at + _BYTES], "big")
        if now_ms is None:
            if value <= state.last:
                value = state.last + 1
            state.last = value
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -10, -10)])
