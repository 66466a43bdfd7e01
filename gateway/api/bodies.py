"""Request body checks shared by every endpoint that takes a body (partner and
internal API): the Content-Type must be one the endpoint accepts (``415``), and the
body may not exceed the endpoint's limit (``413``), checked on Content-Length up
front and again while streaming, so a chunked body is never read past
``limit + 1`` bytes.

A body must also arrive in time (``408 body_timeout``, the connection is closed):
within ``limits.body_timeout_seconds`` of the first read, plus one second for
every ``limits.min_body_bytes_per_second`` bytes received, so a large body on a
slow line is fine but a client trickling a byte a minute does not hold a
connection (and a request slot) for hours. :class:`BodyReader` does the
reading for every endpoint, the partner X12 stream included.

At shutdown (SIGTERM) every body still being read is cut at once with ``503
shutting_down`` (nothing was stored; the client retries against the restarted
service) instead of holding the graceful stop until the client finishes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.keys import SETTINGS

JSON_CONTENT_TYPES = frozenset({"application/json"})
CHUNK = 64 * 1024
# When the app has no settings (a mocked request in a test): the config defaults.
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_MIN_RATE = 16 * 1024


READERS: web.AppKey[weakref.WeakSet[Any]] = web.AppKey("body_readers", weakref.WeakSet)


class ShuttingDown(Exception):
    """Set on the body streams still being read when the app shuts down."""


def setup(app: web.Application) -> None:
    """Track the bodies being read, and cut them at shutdown (module doc)."""
    app[READERS] = weakref.WeakSet()
    app.on_shutdown.append(_stop_reading)


async def _stop_reading(app: web.Application) -> None:
    for reader in list(app[READERS]):  # type: ignore[index]  # aiohttp picks the wrong overload
        reader.content.set_exception(ShuttingDown())


class BodyReader:
    """Reads a request body against a deadline (see the module doc): each read
    waits at most until ``started + timeout + received / min_rate``; past it,
    ``408 body_timeout``."""

    def __init__(self, request: web.Request) -> None:
        settings = request.app.get(SETTINGS) if hasattr(request.app, "get") else None
        limits = getattr(settings, "limits", None)
        self.timeout = float(getattr(limits, "body_timeout_seconds", DEFAULT_BODY_TIMEOUT))
        self.min_rate = float(getattr(limits, "min_body_bytes_per_second", DEFAULT_MIN_RATE))
        self.content = request.content
        self.received = 0
        self.started = time.monotonic()
        readers = request.app.get(READERS) if hasattr(request.app, "get") else None
        if readers is not None:
            readers.add(self)

    def _remaining(self) -> float:
        return self.started + self.timeout + self.received / self.min_rate - time.monotonic()

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the body."""
        remaining = self._remaining()
        try:
            if remaining <= 0:
                raise TimeoutError
            # What already arrived needs no timer (most small bodies come in one piece).
            chunk = self.content.read_nowait(size)
            if not chunk and not self.content.at_eof():
                async with asyncio.timeout(remaining):  # no task per read, unlike wait_for
                    chunk = await self.content.read(size)
        except ShuttingDown:
            raise ApiError(
                503,
                "shutting_down",
                "the gateway is shutting down; nothing was stored, retry",
                headers={"Retry-After": "5"},
                close=True,
            ) from None
        except TimeoutError:
            raise ApiError(
                408,
                "body_timeout",
                f"the request body did not arrive in time ({self.timeout:g} s, then at least"
                f" {int(self.min_rate)} bytes a second); nothing was stored",
                close=True,
            ) from None
        self.received += len(chunk)
        return chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        """The rest of the body, in chunks of at most CHUNK bytes."""
        while chunk := await self.read(CHUNK):
            yield chunk


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,100}")


def request_id_header(request: web.Request) -> str | None:
    """The client's ``X-Request-Id`` when it is 1-100 visible ASCII characters, else
    None: the value lands in a bounded column (messages.transport_id), and one the
    database refuses would turn an accept into a 503 the client retries forever."""
    given = request.headers.get("X-Request-Id")
    return given if given and _VISIBLE_ASCII.fullmatch(given) else None


def require_content_type(request: web.Request, allowed: frozenset[str], wanted: str) -> None:
    given = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if given not in allowed:
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {given!r} is not accepted here; send {wanted}"
        )


def check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or ``413`` as soon as more than ``limit`` bytes arrived
    (never reads more than ``limit + 1`` bytes from the stream)."""
    check_length(request, limit)
    reader = BodyReader(request)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await reader.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def read_json_body(request: web.Request, limit: int) -> Any:
    """A JSON body (``application/json``, at most ``limit`` bytes), parsed; ``415``,
    ``413`` or ``400 bad_json`` otherwise."""
    require_content_type(request, JSON_CONTENT_TYPES, "application/json")
    body = await read_limited(request, limit)
    try:
        return json.loads(body)
    except RecursionError:
        raise ApiError(400, "bad_json", "the body is not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
