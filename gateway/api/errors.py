"""JSON error responses and the middleware that guarantees every error is one.

Every failure an HTTP client can see has the same shape::

    {"error": {"code": "payload_too_large", "message": "..."}}

Request validation errors (partner ``/documents``, the internal API) add one entry
per problem field, dotted paths into the request body::

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"loc": "document.lines.0.quantity", "msg": "..."}]}}

Handlers raise :class:`ApiError`; the middleware also turns aiohttp's own HTTP
errors (404, 405, 413...) into that shape, storage outages into 503 (nothing was
acknowledged), and anything unexpected into a 500 that names no internals. It never
puts a secret or a stack trace in a response, and logs partner-controlled values
(the path, exception texts) escaped (gateway.logsafe) so they cannot forge a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.db.engine import StorageUnavailable, is_storage_error
from gateway.logsafe import printable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_document",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.fields = fields  # [{"loc": "document.po_number", "msg": "..."}]
        self.headers = headers
        self.close = close  # close the connection after answering (the body was not read)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    if fields is not None:
        body["fields"] = fields
    return web.json_response({"error": body}, status=status, headers=headers)


def unavailable(message: str = "storage is unavailable; nothing was stored, retry later") -> web.Response:
    return error_response(503, "storage_unavailable", message, headers={"Retry-After": "5"})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        _check_headers(request)
        return await handler(request)
    except ApiError as exc:
        response = error_response(
            exc.status, exc.code, exc.message, details=exc.details, fields=exc.fields, headers=exc.headers
        )
        if exc.close:
            await _answer_and_close(request, response)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES_BY_STATUS.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason or code, headers=_allow(exc))
    except StorageUnavailable as exc:
        log.error("storage unavailable on %s %s: %s", request.method, printable(request.path), printable(exc))
        return unavailable()
    except Exception as exc:
        if is_storage_error(exc):
            log.error("storage error on %s %s: %s", request.method, printable(request.path), printable(exc))
            return unavailable()
        log.error(
            "unhandled error on %s %s: %s",
            request.method,
            printable(request.path),
            printable(f"{type(exc).__name__}: {exc}"),
            exc_info=exc,
        )
        return error_response(500, "internal_error", "internal error; the request was not processed")


async def _answer_and_close(request: web.Request, response: web.Response) -> None:
    """Send ``response`` now and close the connection: the client is still sending
    (slowly, or a flood) a body nobody will read, so no keep-alive and no lingering
    read of the rest (aiohttp would otherwise read on for up to 10 s)."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client went away first
    protocol = request.protocol
    if protocol is not None:
        protocol.force_close()


def _check_headers(request: web.Request) -> None:
    """Credentials are ASCII: an Authorization header with other bytes (aiohttp hands
    them over as lone surrogates, which nothing can encode) is a plain 401 on every
    route, before any handler compares it."""
    value = request.headers.get("Authorization")
    if value is not None and not value.isascii():
        raise ApiError(
            401,
            "unauthorized",
            "missing or invalid credentials (Authorization: Bearer <key>, ASCII only)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
