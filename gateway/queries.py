"""The read side shared by the internal API (gateway.api.messages) and the operations
console (gateway.console): the messages list with its filters and keyset paging, one
message with everything that happened to it, and the search box. Handlers validate
their input and shape their answer; the SQL lives here, once.

Paging is by keyset (``id < cursor``, ids are time-ordered ULIDs), never OFFSET, so
the last page of a million rows costs what the first does. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, union

from gateway.db.models import Document, DocumentKey, Job, Message, MessageEvent, OutboxItem
from gateway.db.models_delivery import DeliveryAttempt
from gateway.domain.mdn import DEFAULT_OVERDUE, MdnStatus, reported

DOCUMENT_KINDS = frozenset({"order", "order_ack", "shipment", "invoice"})
ACK_KINDS = ("TA1", "997", "999")
VERDICT_STATES = (
    "accepted",
    "accepted_with_errors",
    "partially_accepted",
    "rejected",
    "ta1_received",
    "ack_unclear",
)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    partner: str | None = None
    direction: str | None = None  # in | out
    status: str | None = None
    kind: str | None = None  # x12 | canonical | a document kind
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None  # a business or control number, exact
    cursor: str | None = None  # the last id of the previous page
    mdn: str | None = None  # pending | processed | error | overdue (gateway.domain.mdn)


def _number_match(term: str) -> Any:
    """Messages that carry ``term`` as a business key or a control number. Each branch
    is one indexed lookup (0006), so this costs the same on a million rows as on ten."""
    # Leading zeros dropped as text: int() refuses more than 4,300 digits.
    number = (term.lstrip("0") or "0") if term.isascii() and term.isdigit() else term
    found = union(
        select(Message.id).where(Message.interchange_control.in_({term, number, number.zfill(9)})),
        select(Document.message_id).where(Document.business_number == term),
        select(Document.message_id).where(Document.set_control == term),
        # document_keys holds the PO, shipment, invoice, tracking... numbers and the
        # interchange and group control numbers as numbers (gateway.domain.orders)
        select(Document.message_id)
        .join(DocumentKey, DocumentKey.document_id == Document.id)
        .where(DocumentKey.value.in_({term[:80], number[:80]})),
    )
    return Message.id.in_(found.scalar_subquery())


def _mdn_match(wanted: str, now: datetime, overdue_after: timedelta) -> Any:
    """Messages with an AS2 send whose MDN is ``wanted`` (overdue: pending and sent
    longer ago than ``overdue_after``; pending: pending and not yet overdue)."""
    stored = MdnStatus.PENDING if wanted == MdnStatus.OVERDUE else wanted
    cond = [OutboxItem.message_id == Message.id, OutboxItem.mdn_status == stored]
    if wanted == MdnStatus.OVERDUE:
        cond.append(OutboxItem.sent_at < now - overdue_after)
    elif wanted == MdnStatus.PENDING:
        cond.append(OutboxItem.sent_at >= now - overdue_after)
    return exists().where(*cond)


async def list_messages(
    conn: Any,
    f: MessageFilter,
    *,
    limit: int,
    now: datetime | None = None,
    mdn_overdue: timedelta = DEFAULT_OVERDUE,
) -> tuple[list[Any], str | None]:
    """One page of messages, newest first, and the cursor of the next page (None: last)."""
    query = select(Message).order_by(Message.id.desc()).limit(limit + 1)
    if f.mdn:
        query = query.where(_mdn_match(f.mdn, now or datetime.now(UTC), mdn_overdue))
    if f.partner:
        query = query.where(Message.partner_id == f.partner)
    if f.direction:
        query = query.where(Message.direction == f.direction)
    if f.status:
        query = query.where(Message.status == f.status)
    if f.kind:
        if f.kind in DOCUMENT_KINDS:
            query = query.where(exists().where(Document.message_id == Message.id, Document.kind == f.kind))
        else:
            query = query.where(Message.kind == f.kind)
    if f.since is not None:
        query = query.where(Message.received_at >= f.since)
    if f.until is not None:
        query = query.where(Message.received_at < f.until)
    if f.q:
        query = query.where(_number_match(f.q.strip()))
    if f.cursor:
        query = query.where(Message.id < f.cursor)
    rows = list((await conn.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None


def message_summary(m: Any) -> dict[str, Any]:
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


async def find_message(conn: Any, message_id: str) -> Any | None:
    return (await conn.execute(select(Message).where(Message.id == message_id))).one_or_none()


#: The lists of a message's detail that are paged: name -> (default page, most per page).
DETAIL_PAGES = {"documents": (20, 500), "events": (100, 1000), "attempts": (100, 1000)}

#: One page request per paged list: (limit, cursor); limit 0 leaves the list out (its count stays).
Page = tuple[int, int | None]


async def _paged(
    conn: Any, model: Any, key: Any, message_id: str, page: Page
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


async def message_detail(
    conn: Any,
    message: Any,
    *,
    pages: dict[str, Page] | None = None,
    now: datetime | None = None,
    mdn_overdue: timedelta = DEFAULT_OVERDUE,
) -> dict[str, Any]:
    """The message (a row from :func:`find_message`) with its timeline, documents,
    outbox items, acknowledgments and delivery attempts: the body of
    ``GET /api/v1/messages/{id}``. Documents, timeline and attempts come a page at a
    time (``pages``, by default the first page of each, see :data:`DETAIL_PAGES`);
    ``counts`` says how many there are, ``*_next`` where the next page starts."""
    message_id = message.id
    wanted: dict[str, Page] = {name: (default, None) for name, (default, _) in DETAIL_PAGES.items()}
    wanted.update(pages or {})
    events, events_next, events_total = await _paged(
        conn, MessageEvent, MessageEvent.id, message_id, wanted["events"]
    )
    documents, documents_next, documents_total = await _paged(
        conn, Document, Document.seq, message_id, wanted["documents"]
    )
    attempts, attempts_next, attempts_total = await _paged(
        conn, DeliveryAttempt, DeliveryAttempt.id, message_id, wanted["attempts"]
    )
    acks_received = (
        await conn.execute(
            select(MessageEvent)
            .where(MessageEvent.message_id == message_id, MessageEvent.state.in_(VERDICT_STATES))
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
    body = message_summary(message)
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
            "mdn": (
                {
                    "status": reported(o.mdn_status, o.sent_at, now or datetime.now(UTC), mdn_overdue),
                    "at": o.mdn_at.isoformat() if o.mdn_at else None,
                    "detail": o.mdn_detail,
                }
                if o.mdn_status is not None
                else None
            ),
        }
        for o in outbox
    ]
    body["outbox"] = items
    body["acks"] = {
        "issued": [i for i in items if i["kind"] in ACK_KINDS],
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
    return body


async def document_count(conn: Any, message_id: str) -> int:
    return int(
        (
            await conn.execute(
                select(func.count()).select_from(Document).where(Document.message_id == message_id)
            )
        ).scalar_one()
    )


async def document_page(conn: Any, message_id: str, *, after_seq: int, limit: int) -> list[Any]:
    """Documents of a message by position (keyset on ``seq``): large messages page."""
    query = (
        select(Document)
        .where(Document.message_id == message_id, Document.seq > after_seq)
        .order_by(Document.seq)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


# --------------------------------------------------------------------------- search


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # message | order
    label: str
    detail: str
    message_id: str | None = None
    partner_id: str | None = None
    po_number: str | None = None


async def search(conn: Any, term: str, *, limit: int = 50) -> list[Hit]:
    """Everything one search box finds for ``term`` (exact): a message id, an AS2
    Message-ID or file name, ISA/GS/ST control numbers, and every business key of
    document_keys (PO, shipment id, invoice, tracking number, BOL, SSCC); orders
    first (a PO opens its order), then messages, newest first."""
    term = term.strip()
    if not term or len(term) > 200:
        return []
    hits: list[Hit] = []
    seen_orders: set[tuple[str, str]] = set()
    keys = (
        await conn.execute(
            select(DocumentKey.key_kind, DocumentKey.partner_id, Document.message_id)
            .join(Document, Document.id == DocumentKey.document_id)
            .where(DocumentKey.value == term[:80])
            .order_by(Document.message_id.desc())
            .limit(limit)
        )
    ).all()
    message_ids: list[str] = []
    kinds: dict[str, str] = {}
    for k in keys:
        if k.key_kind == "po" and (k.partner_id, term) not in seen_orders:
            seen_orders.add((k.partner_id, term))
            hits.append(
                Hit(
                    "order",
                    f"Order {term}",
                    f"partner {k.partner_id}",
                    partner_id=k.partner_id,
                    po_number=term,
                )
            )
        if k.message_id not in kinds:
            kinds[k.message_id] = k.key_kind
            message_ids.append(k.message_id)
    # An AS2 Message-ID is stored as its header holds it, in angle brackets; people
    # paste it with or without them.
    bare = term[1:-1] if term.startswith("<") and term.endswith(">") else term
    transport_ids = {bare[:255], f"<{bare}>"[:255]}
    direct = (
        await conn.execute(
            select(Message.id)
            .where(or_(Message.id == term, Message.transport_id.in_(transport_ids)))
            .order_by(Message.id.desc())
            .limit(limit)
        )
    ).scalars()
    for mid in direct:
        if mid not in kinds:
            kinds[mid] = "message id" if mid == term else "transport id"
            message_ids.append(mid)
    if len(message_ids) < limit:
        numbered, _ = await list_messages(conn, MessageFilter(q=term), limit=limit)
        for m in numbered:
            if m.id not in kinds:
                kinds[m.id] = "control or business number"
                message_ids.append(m.id)
    if message_ids:
        rows = (await conn.execute(select(Message).where(Message.id.in_(message_ids[:limit])))).all()
        for m in sorted(rows, key=lambda r: r.id, reverse=True):
            hits.append(
                Hit(
                    "message",
                    f"{'Inbound' if m.direction == 'in' else 'Outbound'} {m.kind} message {m.id}",
                    f"{m.partner_id or '-'} · {m.status} · matched {kinds[m.id]}",
                    message_id=m.id,
                    partner_id=m.partner_id,
                )
            )
    return hits[:limit]


async def outbox_payloads(conn: Any, ids: list[str]) -> list[str]:
    """The X12 text of outbox items (our 997/999 about a message)."""
    rows = (await conn.execute(select(OutboxItem.payload).where(OutboxItem.id.in_(ids)))).scalars()
    return list(rows)
