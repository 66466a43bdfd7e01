"""The ERP feed (``[erp] mode = "feed"``) and the dead letters (internal token).

``GET /api/v1/feed?after=<cursor>&limit=N`` (N <= 500, default 100)
    Documents waiting for the ERP (status ``available``), oldest first by id, as
    ``{"items": [{"id", "message_id", "idempotency_key", "kind", "partner_id",
    "business_number", "correlation_id", "created_at", "document": {...canonical...}}],
    "next": cursor|null}`` (``correlation_id``: the order's, else the message id).
    ``next`` pages on; a document stays in the feed until confirmed, so an ERP that
    crashes simply starts again without ``after`` (the feed is a queue, not a log).
``POST /api/v1/feed/ack`` ``{"ids": [document ids]}``
    Confirms receipt; only now are the documents ``delivered``. Answers
    ``{"delivered": [...], "unknown": [...]}``; confirming twice is harmless.
``GET /api/v1/dead-letters?after=&limit=&type=&kind=&partner=&older_than_hours=``
    ERP documents and partner deliveries given up on (see gateway.erp.dead_letters),
    oldest first; filters: ``type`` (erp_document | partner_delivery), ``kind`` (a
    set such as 850/856/810/997/TA1, or a canonical kind such as order),
    ``partner``, ``older_than_hours`` (made more than N hours ago).
``POST /api/v1/dead-letters/{id}/replay``
    An ERP document: its message is replayed (same idempotency keys), from
    translate, or with the optional body ``{"from": "deliver"}`` its stored
    documents are handed to the ERP again without translating; a partner delivery:
    the outbox item is queued again. ``202``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from gateway import operations
from gateway.api.errors import ApiError
from gateway.api.internal import read_json, replay_request, require_token
from gateway.api.keys import DATABASE, DELIVERY, METRICS, OVERRIDES, PIPELINE
from gateway.db.models import Document
from gateway.domain.alerts import correlation_of
from gateway.domain.replay import ReplayStage
from gateway.erp import DEAD_LETTER_TYPES, DeadLetterFilter, confirm_documents, dead_letters

MAX_LIMIT = 500
MAX_QUERY_TEXT = 255  # the widest column a query value is compared with


def check_query_text(request: web.Request) -> None:
    """Every query value is compared with a bounded text column: at most
    MAX_QUERY_TEXT printable characters, else ``400`` (a NUL or a lone surrogate
    would reach the database driver, which refuses it: a 503, retried forever)."""
    for name, value in request.query.items():
        if len(value) > MAX_QUERY_TEXT or not value.isprintable() or _has_surrogate(value):
            raise ApiError(
                400, "bad_request", f"{name} must be at most {MAX_QUERY_TEXT} printable characters"
            )


def plausible_id(value: str) -> bool:
    """Could be one of our ids (26-character ASCII): anything else is simply unknown."""
    return value.isascii() and value.isalnum() and len(value) <= 64


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def page_limit(request: web.Request, default: int = 100) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


async def get_feed(request: web.Request) -> web.Response:
    require_token(request)
    check_query_text(request)
    limit = page_limit(request)
    after = request.query.get("after")
    query = (
        select(Document)
        .where(Document.status == "available", Document.direction == "in")
        .order_by(Document.id)
        .limit(limit + 1)
    )
    if after:
        query = query.where(Document.id > after)
    async with request.app[DATABASE].read() as conn:
        rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r.id,
            "message_id": r.message_id,
            "idempotency_key": r.idempotency_key,
            "kind": r.kind,
            "partner_id": r.partner_id,
            "business_number": r.business_number,
            "correlation_id": correlation_of(
                r.partner_id, (r.canonical or {}).get("document") or {}, r.message_id
            ),
            "created_at": r.created_at.isoformat(),
            "document": r.canonical,
        }
        for r in rows
    ]
    return web.json_response({"items": items, "next": rows[-1].id if more else None})


async def post_feed_ack(request: web.Request) -> web.Response:

    require_token(request)
    data = await read_json(request)
    ids = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(ids) > 1000:
        raise ApiError(400, "bad_request", 'send {"ids": [document ids]} (1 to 1000 strings)')
    # Document ids are 26-character ASCII: anything else (a lone surrogate included,
    # which no database driver takes) is simply unknown.
    unknown = [i for i in ids if not plausible_id(i)]
    ids = [i for i in ids if i not in unknown]
    if not ids:
        return web.json_response({"delivered": [], "unknown": unknown})
    done = await confirm_documents(
        request.app[DATABASE], ids, now=request.app[OVERRIDES].clock(), metrics=request.app[METRICS]
    )
    if done.messages_delivered:
        request.app[PIPELINE].wake()
    return web.json_response({"delivered": done.delivered, "unknown": [*done.unknown, *unknown]})


async def get_dead_letters(request: web.Request) -> web.Response:
    require_token(request)
    check_query_text(request)
    limit = page_limit(request)
    try:
        where = dead_letter_filter(request.query, request.app[OVERRIDES].clock())
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    items = await dead_letters(
        request.app[DATABASE], limit=limit + 1, after=request.query.get("after"), where=where
    )
    more = len(items) > limit
    items = items[:limit]
    return web.json_response({"items": items, "next": items[-1]["id"] if more else None})


def dead_letter_filter(query: Mapping[str, str], now: datetime) -> DeadLetterFilter:
    """The dead-letter filters of a query string (the API and the console's page):
    ``type``, ``kind``, ``partner``, ``older_than_hours``; ValueError names a bad one."""
    kind = query.get("type") or None
    if kind is not None and kind not in DEAD_LETTER_TYPES:
        raise ValueError(f"type is one of {', '.join(DEAD_LETTER_TYPES)}")
    before = None
    raw = query.get("older_than_hours") or None
    if raw is not None:
        try:
            hours = float(raw)
        except ValueError:
            hours = -1.0
        if not 0 <= hours <= 24 * 3650:
            raise ValueError("older_than_hours is a number of hours from 0 to 87600")
        before = now - timedelta(hours=hours)
    return DeadLetterFilter(
        type=kind, kind=query.get("kind") or None, partner_id=query.get("partner") or None, before=before
    )


async def replay_dead_letter(request: web.Request) -> web.Response:
    require_token(request)
    item_id = request.match_info["id"]
    if not plausible_id(item_id):
        raise ApiError(404, "not_found", "no such dead letter")
    stage, redeliver = await replay_request(request, (ReplayStage.TRANSLATE, ReplayStage.DELIVER))
    if redeliver:
        raise ApiError(400, "bad_request", "a dead letter is not with the ERP: redeliver does not apply")
    try:
        done = await operations.replay_dead_letter(
            request.app[DATABASE],
            request.app[PIPELINE],
            request.app[DELIVERY],
            item_id,
            now=request.app[OVERRIDES].clock(),
            requested_by="dead-letter replay",
            stage=stage,
        )
    except operations.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except operations.Refused as exc:
        raise ApiError(409, "replay_refused", str(exc)) from None
    if done.kind == "erp_document":
        return web.json_response(
            {"id": item_id, "message_id": done.message_id, "status": done.status}, status=202
        )
    return web.json_response({"id": item_id, "status": done.status}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/feed", get_feed)
    app.router.add_post("/api/v1/feed/ack", post_feed_ack)
    app.router.add_get("/api/v1/dead-letters", get_dead_letters)
    app.router.add_post("/api/v1/dead-letters/{id}/replay", replay_dead_letter)
