"""The messages API (internal token): what came in, what went out, and what became of it.

``GET /api/v1/messages``
    Filters: ``partner``, ``direction`` (in|out), ``kind`` (x12, canonical, or a
    document kind such as order/shipment/invoice/order_ack), ``status``, ``since`` /
    ``until`` (ISO 8601, on received time), ``q`` (a PO/shipment/invoice number or an
    interchange/group/set control number, exact). Newest first; ``limit`` (<= 500)
    and ``cursor`` (the ``next`` of the previous page).
``GET /api/v1/messages/{id}``
    The message, its timeline, documents, acknowledgments (outbox items of
    kind TA1/997/999, and the partner's acks matched to it), ERP and partner
    delivery attempts, and outbox items; documents, timeline and attempts a page
    at a time, with their counts and the translation's progress.
``GET /api/v1/messages/{id}/raw``
    The exact stored bytes, with ``application/edi-x12`` or ``application/json``.
``POST /api/v1/messages/{id}/replay``
    Runs an inbound message again (gateway.pipeline.Pipeline.replay): ``202``;
    ``409`` when it is being processed or its raw payload was pruned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import exists, func, or_, select

from gateway.api.errors import ApiError
from gateway.api.feed import check_query_text, page_limit, plausible_id
from gateway.api.internal import require_token
from gateway.api.keys import DATABASE, PIPELINE, RAWSTORE
from gateway.db.models import Document, Job, Message, MessageEvent, OutboxItem
from gateway.db.models_delivery import DeliveryAttempt

DOCUMENT_KINDS = frozenset({"order", "order_ack", "shipment", "invoice"})


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


def _summary(m: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "partner_id": m.partner_id,
        "channel": m.channel,
        "kind": m.kind,
        "status": m.status,
        "reason": m.reason,
        "interchange_sender": m.interchange_sender,
        "interchange_control": m.interchange_control,
        "size": m.raw_size,
        "received_at": m.received_at.isoformat(),
        "updated_at": m.updated_at.isoformat(),
    }


async def list_messages(request: web.Request) -> web.Response:
    require_token(request)
    check_query_text(request)
    limit = page_limit(request, 50)
    query = select(Message).order_by(Message.id.desc()).limit(limit + 1)
    q = request.query
    if "partner" in q:
        query = query.where(Message.partner_id == q["partner"])
    if "direction" in q:
        if q["direction"] not in ("in", "out"):
            raise ApiError(400, "bad_request", "direction is in or out")
        query = query.where(Message.direction == q["direction"])
    if "status" in q:
        query = query.where(Message.status == q["status"])
    if "kind" in q:
        if q["kind"] in DOCUMENT_KINDS:
            query = query.where(exists().where(Document.message_id == Message.id, Document.kind == q["kind"]))
        else:
            query = query.where(Message.kind == q["kind"])
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None:
        query = query.where(Message.received_at >= since)
    if until is not None:
        query = query.where(Message.received_at < until)
    if q.get("q"):
        term = q["q"].strip()
        # Leading zeros dropped as text: int() refuses more than 4,300 digits.
        number = (term.lstrip("0") or "0") if term.isascii() and term.isdigit() else term
        query = query.where(
            or_(
                Message.interchange_control.in_({term, number, number.zfill(9)}),
                exists().where(
                    Document.message_id == Message.id,
                    or_(
                        Document.business_number == term,
                        Document.group_control.in_({term, number}),
                        Document.set_control == term,
                        Document.interchange_control.in_({term, number.zfill(9)}),
                    ),
                ),
            )
        )
    if q.get("cursor"):
        query = query.where(Message.id < q["cursor"])
    async with request.app[DATABASE].read() as conn:
        rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response({"items": [_summary(m) for m in rows], "next": rows[-1].id if more else None})


async def _message(conn: Any, message_id: str) -> Any:
    if not plausible_id(message_id):  # never hand a NUL or a megabyte to the driver
        raise ApiError(404, "not_found", "no such message")
    message = (await conn.execute(select(Message).where(Message.id == message_id))).one_or_none()
    if message is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    return message


#: The lists of a message's detail that are paged: query parameter prefix -> (default, most).
DETAIL_PAGES = {"documents": (20, 500), "events": (100, 1000), "attempts": (100, 1000)}
_ACK_EVENTS = (
    "accepted",
    "accepted_with_errors",
    "partially_accepted",
    "rejected",
    "ta1_received",
    "ack_unclear",
)


def _detail_page(request: web.Request, name: str) -> tuple[int, int | None]:
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


async def _paged(
    conn: Any, model: Any, key: Any, message_id: str, page: tuple[int, int | None]
) -> tuple[list[Any], str | None, int]:
    """One page of ``model`` rows of the message, ordered by ``key``: (rows, next cursor, total)."""
    limit, cursor = page
    total = (
        await conn.execute(select(func.count()).select_from(model).where(model.message_id == message_id))
    ).scalar_one()
    if limit == 0:
        return [], None, total
    query = select(model).where(model.message_id == message_id).order_by(key).limit(limit + 1)
    if cursor is not None:
        query = query.where(key > cursor)
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(getattr(rows[-1], key.key)) if more else None), total


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
        events, events_next, events_total = await _paged(
            conn, MessageEvent, MessageEvent.id, message_id, pages["events"]
        )
        documents, documents_next, documents_total = await _paged(
            conn, Document, Document.seq, message_id, pages["documents"]
        )
        attempts, attempts_next, attempts_total = await _paged(
            conn, DeliveryAttempt, DeliveryAttempt.id, message_id, pages["attempts"]
        )
        acks_received = (
            await conn.execute(
                select(MessageEvent)
                .where(MessageEvent.message_id == message_id, MessageEvent.state.in_(_ACK_EVENTS))
                .order_by(MessageEvent.id)
                .limit(DETAIL_PAGES["events"][1])
            )
        ).all()
        outbox = (
            await conn.execute(
                select(OutboxItem).where(OutboxItem.message_id == message_id).order_by(OutboxItem.id)
            )
        ).all()
        waiting = (
            await conn.execute(
                select(Job)
                .where(Job.message_id == message_id, Job.state.in_(("ready", "running")))
                .order_by(Job.id.desc())
                .limit(1)
            )
        ).first()
    body = _summary(message)
    # What the message waits for, and why it is not moving (a retrying delivery shows
    # the ERP's last answer here while its status stays "translated").
    body["next_step"] = (
        {
            "step": waiting.step,
            "state": waiting.state,
            "attempts": waiting.attempts,
            "next_attempt_at": waiting.next_attempt_at.isoformat() if waiting.next_attempt_at else None,
            "last_error": waiting.last_error,
        }
        if waiting is not None
        else None
    )
    # While a large message is translated: sets done / sets in the payload (gateway.progress).
    body["progress"] = (
        {
            "step": waiting.step,
            "sets_translated": waiting.progress_done,
            "sets_total": waiting.progress_total,
        }
        if waiting is not None and waiting.progress_done is not None
        else None
    )
    body["counts"] = {"documents": documents_total, "events": events_total, "attempts": attempts_total}
    body["documents_next"] = documents_next
    body["events_next"] = events_next
    body["attempts_next"] = attempts_next
    body["timeline"] = [{"at": e.at.isoformat(), "state": e.state, "detail": e.detail} for e in events]
    body["documents"] = [
        {
            "id": d.id,
            "seq": d.seq,
            "kind": d.kind,
            "set_id": d.set_id,
            "business_number": d.business_number,
            "interchange_control": d.interchange_control,
            "group_control": d.group_control,
            "set_control": d.set_control,
            "idempotency_key": d.idempotency_key,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            "document": d.canonical,
        }
        for d in documents
    ]
    items = [
        {
            "id": o.id,
            "kind": o.kind,
            "channel": o.channel,
            "status": o.status,
            "interchange_control": f"{o.interchange_control:09d}" if o.interchange_control else None,
            "attempts": o.attempts,
            "last_error": o.last_error,
            "created_at": o.created_at.isoformat(),
            "sent_at": o.sent_at.isoformat() if o.sent_at else None,
        }
        for o in outbox
    ]
    body["outbox"] = items
    body["acks"] = {
        "issued": [i for i in items if i["kind"] in ("TA1", "997", "999")],
        "received": [
            {"at": e.at.isoformat(), "state": e.state, "detail": e.detail}
            for e in acks_received
            if e.detail and "source_message_id" in e.detail
        ],
    }
    body["delivery_attempts"] = [
        {
            "at": a.at.isoformat(),
            "target": a.target,
            "document_id": a.document_id,
            "outbox_id": a.outbox_id,
            "outcome": a.outcome,
            "status_code": a.status_code,
            "error": a.error,
            "duration_ms": a.duration_ms,
        }
        for a in attempts
    ]
    return web.json_response(body)


async def get_raw(request: web.Request) -> web.StreamResponse:
    require_token(request)
    async with request.app[DATABASE].read() as conn:
        message = await _message(conn, request.match_info["id"])
    store = request.app[RAWSTORE]
    if not store.exists(message.raw_sha256):
        raise ApiError(410, "gone", "the raw payload was pruned by retention")
    content_type = "application/json" if message.kind == "canonical" else "application/edi-x12"
    response = web.FileResponse(store.path_for(message.raw_sha256), headers={"Content-Type": content_type})
    return response


async def post_replay(request: web.Request) -> web.Response:
    from gateway.pipeline import ReplayRefused

    require_token(request)
    message_id = request.match_info["id"]
    if not plausible_id(message_id):
        raise ApiError(404, "not_found", "no such message")
    try:
        await request.app[PIPELINE].replay(message_id, requested_by="api")
    except ReplayRefused as exc:
        async with request.app[DATABASE].read() as conn:
            await _message(conn, message_id)  # 404 for an unknown id
        raise ApiError(409, "replay_refused", str(exc)) from None
    return web.json_response({"message_id": message_id, "status": "received"}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/messages", list_messages)
    app.router.add_get("/api/v1/messages/{id}", get_message)
    app.router.add_get("/api/v1/messages/{id}/raw", get_raw)
    app.router.add_post("/api/v1/messages/{id}/replay", post_replay)
