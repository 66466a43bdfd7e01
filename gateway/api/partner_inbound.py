"""Partner REST inbound: where trading partners post their documents.

``POST /partners/{partner_id}/edi``
    Body: raw X12, exactly as it should be stored. ``202 {"message_id": ...}`` once
    the payload and its message row are durable (see gateway.intake); a repeated
    ``Idempotency-Key`` answers ``200`` with the first message's id and stores
    nothing (``409`` if the key comes back with a different body).
``POST /partners/{partner_id}/documents``
    Body: one canonical JSON document (``translators.canonical.CanonicalDocument``)
    for partners that do not speak X12; ``422`` lists the field errors under
    ``fields`` (``[{"loc": "document.po_number", "msg": ...}]``, see gateway.api.errors).

Decisions an EDI engineer should know:

- Authentication is ``Authorization: Bearer <partner key>``; the profile holds the
  key's SHA-256. Unknown partner, partner without REST, wrong key: the same ``401``,
  so the API never reveals which partners exist, and a key only opens its own URL.
- An empty body is ``400 empty_body`` and nothing is stored. A body that does not
  begin with ``ISA`` (after an optional byte-order mark and white space) is
  ``400 not_x12`` and nothing is stored: it cannot be acknowledged in X12 anyway,
  and the sender learns at once. Anything that starts like an interchange is
  stored and accepted; envelope and syntax errors are then reported the X12 way
  (TA1/997/999) and on the message's timeline.
- Bodies larger than ``limits.max_edi_bytes`` / ``limits.max_json_bytes`` are ``413``
  (checked on Content-Length up front and again while streaming).
- Storage down: ``503`` and nothing acknowledged.

Handlers never parse X12 beyond the first bytes; that is the pipeline's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api.bodies import CHUNK, JSON_CONTENT_TYPES
from gateway.api.bodies import check_length as _check_length
from gateway.api.bodies import read_limited as _read_limited
from gateway.api.bodies import require_content_type as _require_content_type
from gateway.api.errors import ApiError
from gateway.api.keys import INTAKE, PARTNERS, SETTINGS
from gateway.db.ids import new_id
from gateway.intake import IdempotencyConflict
from gateway.rawstore import PayloadTooLarge

EDI_CONTENT_TYPES = frozenset(
    {
        "",
        "application/edi-x12",
        "application/edi",
        "application/edi-consent",
        "text/plain",
        "application/octet-stream",
    }
)
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")
_BOM = b"\xef\xbb\xbf"
# Compared against when the partner is unknown, so both paths cost the same.
_NO_KEY = hashlib.sha256(b"no partner has this key").hexdigest()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/partners/{partner_id}/edi", post_edi)
    app.router.add_post("/partners/{partner_id}/documents", post_document)


async def post_edi(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    _require_content_type(request, EDI_CONTENT_TYPES, "raw X12 (application/edi-x12)")
    limit = request.app[SETTINGS].limits.max_edi_bytes
    _check_length(request, limit)
    key = _idempotency_key(request)
    first = await _first_bytes(request)
    if not first.lstrip(_BOM + b" \t\r\n"):
        raise ApiError(400, "empty_body", "the request body is empty; post one X12 interchange")
    if not first.lstrip(_BOM + b" \t\r\n").startswith(b"ISA"):
        raise ApiError(400, "not_x12", "the body does not start with an ISA segment; nothing was stored")
    return await _accept(request, partner_id, key, _chain(first, request), limit, "x12")


async def post_document(request: web.Request) -> web.Response:
    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    partner_id = _authenticate(request)
    _require_content_type(request, JSON_CONTENT_TYPES, "application/json")
    limit = request.app[SETTINGS].limits.max_json_bytes
    _check_length(request, limit)
    key = _idempotency_key(request)
    body = await _read_limited(request, limit)
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; post one canonical JSON document")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_document", "a canonical document is a JSON object")
    if data.get("partner_id") not in (None, partner_id):
        raise ApiError(
            422, "invalid_document", "partner_id in the document differs from the partner in the URL"
        )
    try:
        CanonicalDocument.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise ApiError(
            422, "invalid_document", "the document does not match the canonical model", fields=errors
        ) from None

    async def once() -> AsyncIterator[bytes]:
        yield body

    return await _accept(request, partner_id, key, once(), limit, "canonical")


async def _accept(
    request: web.Request, partner_id: str, key: str | None, body: AsyncIterator[bytes], limit: int, kind: str
) -> web.Response:
    request_id = _request_id(request)
    try:
        result = await request.app[INTAKE].accept(
            partner_id=partner_id,
            channel="rest",
            transport_id=request_id,
            idempotency_key=key,
            body=body,
            limit=limit,
            kind=kind,
        )
    except PayloadTooLarge as exc:
        raise ApiError(413, "payload_too_large", f"the body is larger than {exc.limit} bytes") from None
    except IdempotencyConflict as exc:
        raise ApiError(
            409,
            "idempotency_key_reused",
            f"this Idempotency-Key was used for message {exc.message_id} with a different body",
        ) from None
    payload = {
        "message_id": result.message_id,
        "status": "received" if result.created else "already_received",
    }
    return web.json_response(
        payload, status=202 if result.created else 200, headers={"X-Request-Id": request_id}
    )


# --------------------------------------------------------------------------- request checks


def _authenticate(request: web.Request) -> str:
    partner_id = request.match_info["partner_id"]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    directory = request.app[PARTNERS].current
    transport = directory.transport(partner_id) if directory is not None else None
    rest = transport.rest if transport is not None else None
    if rest is not None and scheme.lower() == "bearer" and presented.strip():
        if rest.accepts(presented.strip()):
            return partner_id
    else:
        hmac.compare_digest(hashlib.sha256(presented.encode()).hexdigest(), _NO_KEY)
    raise ApiError(
        401,
        "unauthorized",
        "missing or invalid partner credentials (Authorization: Bearer <partner key>)",
        headers={"WWW-Authenticate": 'Bearer realm="partners"'},
    )


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _TOKEN.fullmatch(key):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters")
    return key


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if _TOKEN.fullmatch(given) and len(given) <= 100 else f"req-{new_id()}"


async def _first_bytes(request: web.Request) -> bytes:
    """Enough of the body to see whether it starts like X12 (white space skipped)."""
    first = b""
    while len(first.lstrip(_BOM + b" \t\r\n")) < 3:
        chunk = await request.content.readany()
        if not chunk:
            break
        first += chunk
    return first


async def _chain(first: bytes, request: web.Request) -> AsyncIterator[bytes]:
    yield first
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk

