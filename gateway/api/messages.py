"""The messages API (internal token): what came in, what went out, and what became of it.

``GET /api/v1/messages``
    Filters: ``partner``, ``direction`` (in|out), ``kind`` (x12, canonical, or a
    document kind such as order/shipment/invoice/order_ack), ``status``, ``since`` /
    ``until`` (ISO 8601, on received time), ``q`` (a PO/shipment/invoice number or an
    interchange/group/set control number, exact), ``mdn`` (pending, processed, error,
    overdue: messages with an AS2 send whose MDN is in that state). Newest first;
    ``limit`` (<= 500) and ``cursor`` (the ``next`` of the previous page).
``GET /api/v1/messages/{id}``
    The message, its timeline, documents, acknowledgments (outbox items of
    kind TA1/997/999, and the partner's acks matched to it), ERP and partner
    delivery attempts, and outbox items (each with its AS2 ``mdn`` status); documents, timeline and attempts a page
    at a time, with their counts and the translation's progress.
``GET /api/v1/messages/{id}/raw``
    The exact stored bytes, with ``application/edi-x12`` or ``application/json``.
``POST /api/v1/messages/{id}/replay``
    Runs an inbound message again (gateway.pipeline_replay): without a body from
    translate (the stored raw bytes); with ``{"from": "translate"|"deliver"|
    "acknowledge"}`` from that stage (gateway.domain.replay), ``"redeliver": true``
    with deliver also sending documents the ERP has. ``202`` ``{"message_id",
    "status", "from"}``; ``409`` with the reason when the stage does not apply now
    (being processed, pruned, no documents, no acknowledgment...); ``400`` for an
    unknown stage.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from gateway import operations, queries
from gateway.api.errors import ApiError
from gateway.api.feed import check_query_text, page_limit, plausible_id
from gateway.api.internal import replay_request, require_token
from gateway.api.keys import BLOBS, DATABASE, DELIVERY, PIPELINE, SETTINGS
from gateway.domain.mdn import DEFAULT_OVERDUE

MDN_STATUSES = ("pending", "processed", "error", "overdue")


def mdn_overdue(request: web.Request) -> timedelta:
    """After how long a pending MDN is reported overdue (``[as2] mdn_overdue_minutes``)."""
    as2 = request.app[SETTINGS].as2
    return timedelta(minutes=as2.mdn_overdue_minutes) if as2 is not None else DEFAULT_OVERDUE


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise ApiError(400, "bad_request", f"{name} needs a time zone (e.g. 2024-03-15T00:00:00Z)")
    return value


async def list_messages(request: web.Request) -> web.Response:
    require_token(request)
    check_query_text(request)
    limit = page_limit(request, 50)
    q = request.query
    if "direction" in q and q["direction"] not in ("in", "out"):
        raise ApiError(400, "bad_request", "direction is in or out")
    if "mdn" in q and q["mdn"] not in MDN_STATUSES:
        raise ApiError(400, "bad_request", f"mdn is one of {', '.join(MDN_STATUSES)}")
    filters = queries.MessageFilter(
        partner=q.get("partner"),
        direction=q.get("direction"),
        status=q.get("status"),
        kind=q.get("kind"),
        since=_time(request, "since"),
        until=_time(request, "until"),
        q=q.get("q") or None,
        cursor=q.get("cursor") or None,
        mdn=q.get("mdn"),
    )
    async with request.app[DATABASE].read() as conn:
        rows, more = await queries.list_messages(conn, filters, limit=limit, mdn_overdue=mdn_overdue(request))
    return web.json_response({"items": [queries.message_summary(m) for m in rows], "next": more})


async def _message(conn: Any, message_id: str) -> Any:
    if not plausible_id(message_id):  # never hand a NUL or a megabyte to the driver
        raise ApiError(404, "not_found", "no such message")
    message = await queries.find_message(conn, message_id)
    if message is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    return message


#: The lists of a message's detail that are paged (name -> default page, most per page).
DETAIL_PAGES = queries.DETAIL_PAGES


def _detail_page(request: web.Request, name: str) -> queries.Page:
    """(limit, cursor) of one paged list of the detail: ``<name>_limit`` (0 leaves the
    list out, its count stays) and ``<name>_cursor`` (the ``next`` of the page before)."""
    default, most = DETAIL_PAGES[name]
    raw = request.query.get(f"{name}_limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or int(raw) > most:
        raise ApiError(400, "bad_request", f"{name}_limit must be an integer from 0 to {most}")
    cursor = request.query.get(f"{name}_cursor")
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise ApiError(400, "bad_request", f"{name}_cursor must be the {name}_next of the page before")
    return int(raw), int(cursor) if cursor is not None else None


async def get_message(request: web.Request) -> web.Response:
    """One message. Its documents, timeline and delivery attempts come a page at a
    time (``documents_limit``/``_cursor``, ``events_limit``/``_cursor``,
    ``attempts_limit``/``_cursor``; small defaults): a 20 MB file with thousands of
    documents never becomes one answer of a hundred megabytes. ``counts`` says how
    many there are, ``*_next`` where the next page starts (null: none), and
    ``progress`` how far translation is while it runs."""
    require_token(request)
    check_query_text(request)
    message_id = request.match_info["id"]
    pages = {name: _detail_page(request, name) for name in DETAIL_PAGES}
    async with request.app[DATABASE].read() as conn:
        message = await _message(conn, message_id)
        body = await queries.message_detail(conn, message, pages=pages, mdn_overdue=mdn_overdue(request))
    return web.json_response(body)


async def get_raw(request: web.Request) -> web.StreamResponse:
    require_token(request)
    async with request.app[DATABASE].read() as conn:
        message = await _message(conn, request.match_info["id"])
    found = await request.app[BLOBS].locate(message.raw_sha256)
    if found is None:
        raise ApiError(410, "gone", "the raw payload was pruned by retention")
    content_type = "application/json" if message.kind == "canonical" else "application/edi-x12"
    if isinstance(found, bytes):  # a small payload, a database row (gateway.blobs)
        return web.Response(body=found, headers={"Content-Type": content_type})
    return web.FileResponse(found, headers={"Content-Type": content_type})


async def post_replay(request: web.Request) -> web.Response:
    require_token(request)
    message_id = request.match_info["id"]
    if not plausible_id(message_id):
        raise ApiError(404, "not_found", "no such message")
    stage, redeliver = await replay_request(request)
    try:
        status = await operations.replay_message(
            request.app[PIPELINE],
            request.app[DELIVERY],
            message_id,
            requested_by="api",
            stage=stage,
            redeliver=redeliver,
        )
    except operations.Refused as exc:
        async with request.app[DATABASE].read() as conn:
            await _message(conn, message_id)  # 404 for an unknown id
        raise ApiError(409, "replay_refused", str(exc)) from None
    return web.json_response({"message_id": message_id, "status": status, "from": str(stage)}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/messages", list_messages)
    app.router.add_get("/api/v1/messages/{id}", get_message)
    app.router.add_get("/api/v1/messages/{id}/raw", get_raw)
    app.router.add_post("/api/v1/messages/{id}/replay", post_replay)
