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
puts a secret or a stack trace in a response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.db.engine import StorageUnavailable, is_storage_error

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.fields = fields  # [{"loc": "document.po_number", "msg": "..."}]
        self.headers = headers


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
        return await handler(request)
    except ApiError as exc:
        return error_response(
            exc.status, exc.code, exc.message, details=exc.details, fields=exc.fields, headers=exc.headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES_BY_STATUS.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason or code, headers=_allow(exc))
    except StorageUnavailable as exc:
        log.error("storage unavailable on %s %s: %s", request.method, request.path, exc)
        return unavailable()
    except Exception as exc:
        if is_storage_error(exc):
            log.error("storage error on %s %s: %s", request.method, request.path, exc)
            return unavailable()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; the request was not processed")


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
