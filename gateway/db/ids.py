"""Sortable unique identifiers for stored rows.

An id is 26 Crockford base-32 characters: 48 bits of milliseconds since the epoch
then 80 random bits (the ULID layout), so ids sort by creation time as text on
every database and never collide across processes. Within one process ids are
strictly increasing: a second id in the same millisecond (or after the clock stepped
back) adds one to the previous random part, so the documents of one message keep
their order. Never parse meaning out of one beyond its time order.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_last = [0]  # the last id issued by this process, as an integer


def new_id(now_ms: int | None = None) -> str:
    """A new id; ``now_ms`` fixes the time part (tests)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    if now_ms is None:
        if value <= _last[0]:
            value = _last[0] + 1
        _last[0] = value
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
