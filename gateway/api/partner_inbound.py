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
  begin with ``ISA`` (after an optional byte-order mark and at most 64 KiB of white
  space, which counts toward the size limit) is ``400 not_x12`` and nothing is
  stored: it cannot be acknowledged in X12 anyway, and the sender learns at once.
  Anything that starts like an interchange is stored and accepted; envelope and
  syntax errors are then reported the X12 way (TA1/997/999) and on the message's
  timeline.
- A canonical document is parsed at intake exactly as the pipeline parses it
  (strict UTF-8 JSON, ``CanonicalDocument.model_validate_json``): ``400 bad_json``
  or ``422 invalid_document`` now, never a 202 that fails later. Its kind's
  required fields (REQUIRED_BY_KIND) must be filled. An ``envelope`` is optional;
  if sent, its sender must be one of the partner's own ISA addresses and its
  receiver us (``422 envelope_mismatch`` otherwise): a partner cannot post in
  another's name.
- Bodies larger than ``limits.max_edi_bytes`` / ``limits.max_json_bytes`` are ``413``
  (checked on Content-Length up front and again while streaming); a body that does
  not arrive in time is ``408 body_timeout`` (gateway.api.bodies).
- Storage down: ``503`` and nothing acknowledged.

Handlers never parse X12 beyond the first bytes; that is the pipeline's job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from gateway.api import bodies
from gateway.api.bodies import CHUNK, JSON_CONTENT_TYPES, BodyReader, request_id_header
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
    bodies.setup(app)  # every endpoint's body reads: deadline, and cut at shutdown
    app.router.add_post("/partners/{partner_id}/edi", post_edi)
    app.router.add_post("/partners/{partner_id}/documents", post_document)


async def post_edi(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    _require_content_type(request, EDI_CONTENT_TYPES, "raw X12 (application/edi-x12)")
    limit = request.app[SETTINGS].limits.max_edi_bytes
    _check_length(request, limit)
    key = _idempotency_key(request)
    reader = BodyReader(request)
    first = await _first_bytes(request, reader, limit)
    return await _accept(request, partner_id, key, _chain(first, reader), limit, "x12")


async def post_document(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    _require_content_type(request, JSON_CONTENT_TYPES, "application/json")
    limit = request.app[SETTINGS].limits.max_json_bytes
    _check_length(request, limit)
    key = _idempotency_key(request)
    body = await _read_limited(request, limit)
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; post one canonical JSON document")
    _check_document(request, partner_id, body)

    async def once() -> AsyncIterator[bytes]:
        yield body

    return await _accept(request, partner_id, key, once(), limit, "canonical")


# Per kind, the fields a partner's document must fill: the business number and what
# the X12 set would carry in its mandatory header elements (BEG, BAK, BSN, BIG).
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    "order": ("po_number", "po_date"),
    "order_ack": ("po_number", "ack_type"),
    "shipment": ("shipment_id", "shipment_date"),
    "invoice": ("invoice_number", "invoice_date"),
}


def _check_document(request: web.Request, partner_id: str, body: bytes) -> None:
    """Decide here, once, what the pipeline will make of this body: it is parsed with
    the very call the pipeline uses (``CanonicalDocument.model_validate_json``, strict
    UTF-8 JSON: no byte-order mark, no UTF-16/32, no lone surrogate escapes, bounded
    nesting), so a document accepted with 202 never fails translation for its syntax.
    On top: the kind's required fields, the partner id, and the envelope (module doc)."""
    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    try:
        doc = CanonicalDocument.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise ApiError(
                400, "bad_json", f"the body is not valid UTF-8 JSON: {errors[0]['msg']}; nothing was stored"
            ) from None
        fields = _document_field_errors(body) or [
            {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]} for err in errors
        ]
        raise ApiError(
            422, "invalid_document", "the document does not match the canonical model", fields=fields
        ) from None
    fields = [
        {"loc": f"document.{name}", "msg": f"required in a partner's {doc.kind}"}
        for name in REQUIRED_BY_KIND[doc.kind]
        if _blank(getattr(doc.document, name))
    ]
    if fields:
        raise ApiError(422, "invalid_document", f"the {doc.kind} lacks required fields", fields=fields)
    if doc.partner_id not in (None, partner_id):
        raise ApiError(
            422,
            "invalid_document",
            "partner_id in the document differs from the partner in the URL",
            fields=[{"loc": "partner_id", "msg": f"must be null or {partner_id!r}"}],
        )
    if doc.envelope is not None:
        _check_envelope(request, partner_id, doc.envelope)
    if b"\\u0000" in body and _holds_nul(orjson.loads(body)):
        # PostgreSQL stores no NUL in text (SQLite does): refused here on both, so that
        # the same document never translates on one database and fails on the other.
        raise ApiError(
            422,
            "invalid_document",
            "a string in the document holds a NUL character (\\u0000); nothing was stored",
        )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _document_field_errors(body: bytes) -> list[dict[str, str]]:
    """One entry per problem of ``document`` ("document.lines.0.quantity"), when the
    body names a known kind (the wrapper's own check folds them into one message)."""
    from pydantic import ValidationError
    from pydantic_core import from_json

    from translators.canonical import MODEL_BY_KIND

    data = from_json(body)  # parsed once already: valid, and within the nesting bound
    kind = data.get("kind") if isinstance(data, dict) else None
    model = MODEL_BY_KIND.get(kind) if isinstance(kind, str) else None
    if model is None or not isinstance(data.get("document"), dict):
        return []
    try:
        model.model_validate(data["document"])
    except ValidationError as exc:
        return [
            {"loc": ".".join(["document", *(str(p) for p in err["loc"])]), "msg": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
    return []


def _check_envelope(request: web.Request, partner_id: str, envelope: Any) -> None:
    """A partner may send an envelope, but it may only name itself as the sender (one
    of its profile's ISA addresses) and us as the receiver: the ERP trusts the
    envelope, and a partner must not post in another partner's name."""
    profile = request.app[PARTNERS].current.get(partner_id)
    senders = {(a.qualifier, a.id) for a in profile.x12.addresses}
    fields = []
    if (envelope.sender_qualifier.strip(), envelope.sender_id.strip()) not in senders:
        fields.append(
            {
                "loc": "envelope.sender_id",
                "msg": f"not an ISA address of partner {partner_id!r}; omit the envelope",
            }
        )
    identity = request.app[SETTINGS].identity
    if identity.check_receiver:
        receivers = {(identity.interchange_qualifier, identity.interchange_id)}
        receivers |= {(a.qualifier, a.id) for a in profile.x12.our_ids}
        if (envelope.receiver_qualifier.strip(), envelope.receiver_id.strip()) not in receivers:
            fields.append(
                {"loc": "envelope.receiver_id", "msg": "not one of our ISA addresses; omit the envelope"}
            )
    if fields:
        raise ApiError(
            422, "envelope_mismatch", "the envelope does not match the authenticated partner", fields=fields
        )


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
    return web.Response(
        body=orjson.dumps(payload),
        status=202 if result.created else 200,
        content_type="application/json",
        headers={"X-Request-Id": request_id},
    )


# --------------------------------------------------------------------------- request checks


def _authenticate(request: web.Request) -> str:
    partner_id = request.match_info["partner_id"]
    header = request.headers.get("Authorization", "")
    if not header.isascii():  # the error middleware refuses these first; never encode them
        header = ""
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
    return request_id_header(request) or f"req-{new_id()}"


# Leading white space (and a byte-order mark) allowed before ISA. It counts toward
# max_edi_bytes like every other byte; past this much, the body is refused at once.
MAX_LEADING_WHITESPACE = 64 * 1024
_WHITESPACE = b" \t\r\n"


async def _first_bytes(request: web.Request, reader: BodyReader, limit: int) -> bytes:
    """Enough of the body to see whether it starts like X12, after at most
    MAX_LEADING_WHITESPACE bytes of white space: ``400 empty_body`` for a body of
    only white space, ``400 not_x12`` past that many (``413`` if the limit comes
    first). Each chunk is looked at once: linear time, bounded memory."""
    parts: list[bytes] = []
    size = 0
    skipped = 0  # leading white space (and BOM) seen so far
    significant = b""  # the first bytes after it
    while len(significant) < 3:
        chunk = await reader.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
        parts.append(chunk)
        if not significant:
            stripped = chunk.lstrip(_BOM + _WHITESPACE)
            skipped += len(chunk) - len(stripped)
            significant = stripped[:3]
        else:
            significant += chunk[: 3 - len(significant)]
        if not significant and skipped > MAX_LEADING_WHITESPACE:
            raise ApiError(
                400,
                "not_x12",
                f"the body starts with more than {MAX_LEADING_WHITESPACE} bytes of white space; nothing was stored",
                close=True,
            )
    first = b"".join(parts)
    if not significant:
        raise ApiError(400, "empty_body", "the request body is empty; post one X12 interchange")
    if not significant.startswith(b"ISA"[: len(significant)]) or len(significant) < 3:
        raise ApiError(400, "not_x12", "the body does not start with an ISA segment; nothing was stored")
    return first


async def _chain(first: bytes, reader: BodyReader) -> AsyncIterator[bytes]:
    yield first
    async for chunk in reader.chunks():
        yield chunk
