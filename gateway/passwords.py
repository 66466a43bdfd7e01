"""Password hashes and the failed-login rate limit, shared by the console's users
(gateway.users) and the SFTP drop box's partners (``[sftp] password_hash``).

- Passwords are hashed with scrypt (``hashlib.scrypt``, N=2**14, r=8, p=1, 16-byte
  salt), stored as ``scrypt$N$r$p$salt$hash`` so the cost can be raised later and
  old hashes still verify (docs/decisions/0006-console.md). Verification compares
  digests in constant time.
- :class:`LoginLimiter` counts failures per (name, client address) and per address.
- This module never logs, and never puts a password in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from typing import Any

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt of a megabyte would be an easy way to burn CPU
MIN_SALT, MIN_DIGEST = 16, 16  # bytes


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_password_hash(stored: str) -> str:
    """``stored`` when it is a hash :func:`verify_password` can use; else ValueError,
    whose message never repeats the value (it may be a password pasted by mistake)."""
    fields = stored.split("$")
    how = "an scrypt hash (scrypt$N$r$p$salt$hash), never the password itself"
    if len(fields) != 6 or fields[0] != "scrypt":
        raise ValueError(f"must be {how}")
    try:
        n, r, p = (int(f) for f in fields[1:4])
        salt = base64.b64decode(fields[4], validate=True)
        digest = base64.b64decode(fields[5], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"must be {how}: N, r, p are numbers, salt and hash base64") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r > SCRYPT_MAXMEM or n * r * p > 2**24:
        raise ValueError("scrypt cost out of range: N a power of two, 128*N*r at most 64 MiB")
    if len(salt) < MIN_SALT or len(digest) < MIN_DIGEST:
        raise ValueError(f"salt and hash need at least {MIN_SALT} bytes each")
    return stored


# A hash to verify against when the name is unknown, so that a wrong name takes as
# long as a wrong password (no enumeration by timing). Made on first use.
_dummy: list[str] = []
_dummy_lock = threading.Lock()


def dummy_hash() -> str:
    with _dummy_lock:
        if not _dummy:
            _dummy.append(hash_password(secrets.token_hex(16)))
        return _dummy[0]


class LoginLimiter:
    """At most ``attempts`` failed logins per (user name, client address) within
    ``window`` seconds, and ``attempts * 4`` per client address whatever the names (one
    address trying many names); a success clears its own count. Per process (several
    instances each keep their own count: an attacker gets instances x attempts, still
    bounded). Safe to call from several threads (the SFTP drop box's sessions)."""

    ANY = "\x00any"  # the per-address count's key (no user name contains a NUL)

    def __init__(self, attempts: int = 5, window: float = 300.0, clock: Any = time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> int:
        now = self.clock()
        found = self._failures.get(key)
        if found is None:
            return 0
        while found and now - found[0] > self.window:
            found.popleft()
        if not found:
            del self._failures[key]
        return len(found)

    def blocked(self, name: str, client: str) -> bool:
        with self._lock:
            return (
                self._recent((name.lower(), client)) >= self.attempts
                or self._recent((self.ANY, client)) >= self.attempts * 4
            )

    def failed(self, name: str, client: str) -> None:
        with self._lock:
            if len(self._failures) > 100_000:  # a flood of names: forget the oldest half, never grow
                for key in list(self._failures)[:50_000]:
                    del self._failures[key]
            now = self.clock()
            self._failures.setdefault((name.lower(), client), deque()).append(now)
            self._failures.setdefault((self.ANY, client), deque()).append(now)

    def succeeded(self, name: str, client: str) -> None:
        with self._lock:
            self._failures.pop((name.lower(), client), None)
