"""Request body checks shared by every endpoint that takes a body (partner and
internal API): the Content-Type must be one the endpoint accepts (``415``), and the
body may not exceed the endpoint's limit (``413``), checked on Content-Length up
front and again while streaming, so a chunked body is never read past
``limit + 1`` bytes.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError

JSON_CONTENT_TYPES = frozenset({"application/json"})
CHUNK = 64 * 1024


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
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(min(CHUNK, limit + 1 - size))
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
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
