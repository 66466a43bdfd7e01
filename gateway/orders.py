"""The storage side of the order lifecycle: every stored document is linked to the
business keys it carries (``document_keys``), and each order touched is derived
again (gateway.domain.orders) into its ``orders`` row and ``order_exceptions``.

:func:`link_documents` runs inside the transaction that stores the documents
(the pipeline's translate step, gateway.outbound.submit), :func:`refresh_messages`
inside the one that records a partner's 997/999/TA1 (gateway.reconcile), and
:func:`check_orders` on a schedule for the exceptions that time alone opens.
The views (:func:`order_view`, :func:`list_orders`, :func:`list_exceptions`)
only read. This module never commits a transaction it did not open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import alerts
from gateway.db import lean_translate
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import (
    Document,
    DocumentKey,
    Message,
    MessageEvent,
    Order,
    OrderExceptionRow,
    OutboxItem,
)
from gateway.db.one_of import one_of
from gateway.db.plain import plain
from gateway.domain import orders as domain
from gateway.domain.alerts import correlation_id
from gateway.domain.orders import LinkedDocument, OrderPolicy

log = logging.getLogger(__name__)
PolicyFor = Callable[[str], OrderPolicy]
# session.info key: the partner -> OrderPolicy lookup of whoever opened the transaction
POLICIES = "gateway.orders.policies"
ACK_KINDS = ("TA1", "997", "999")
MILESTONES = tuple(domain.milestones([]))
PARTNER_VERDICTS = (
    "accepted",
    "accepted_with_errors",
    "partially_accepted",
    "rejected",
    "ack_unclear",
    "ta1_received",
)


def policy_of(directory: Any, partner_id: str) -> OrderPolicy:
    """A partner's thresholds from its profile (``[orders]`` and ``x12.expect_functional_ack``)."""
    profile = directory.get(partner_id) if directory is not None else None
    transport = (
        directory.transport(partner_id) if directory is not None and hasattr(directory, "transport") else None
    )
    settings = getattr(transport, "orders", None)
    expect_fa = bool(getattr(getattr(profile, "x12", None), "expect_functional_ack", True))
    if settings is None:
        return OrderPolicy(expect_functional_ack=expect_fa)
    return OrderPolicy(
        expect_order_ack=settings.expect_order_ack,
        order_ack_due_hours=settings.order_ack_due_hours,
        invoice_due_hours=settings.invoice_due_hours,
        expect_functional_ack=expect_fa,
    )


def use_policies(session: AsyncSession, partners: Callable[[], Any]) -> None:
    """Make :func:`link_documents` in this transaction read thresholds from ``partners()``."""
    session.info.setdefault(POLICIES, lambda partner_id: policy_of(partners(), partner_id))


def _policy_for(session: AsyncSession) -> PolicyFor:
    found: PolicyFor | None = session.info.get(POLICIES)
    return found if found is not None else (lambda _partner_id: OrderPolicy())


# --------------------------------------------------------------------------- linking


async def link_documents(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime, replace: bool = False
) -> None:
    """Insert the keys of the stored ``rows`` (documents table dicts) and derive
    again every order they name. ``replace``: the documents had keys (a replay)."""
    rows = [r for r in rows if r.get("partner_id")]
    if not rows:
        return
    ids = [r["id"] for r in rows]
    if replace:
        await session.execute(delete(DocumentKey).where(DocumentKey.document_id.in_(ids)))
    raw = await plain(session)  # SQLite's writer thread, PostgreSQL's asyncpg: plain statements
    message_ids = list(dict.fromkeys(r["message_id"] for r in rows))
    by_id = select(Message.id, Message.transport_id).where(one_of(session, Message.id, message_ids))
    transport = await raw.transports(message_ids) if raw else dict((await session.execute(by_id)).all())
    keys: list[dict[str, Any]] = []
    touched: set[tuple[str, str]] = set()
    for row in rows:
        found = domain.extract_keys(row["kind"], (row.get("canonical") or {}).get("document") or {})
        found += domain.envelope_keys(
            interchange_control=row.get("interchange_control"),
            group_control=row.get("group_control"),
            transport_id=transport.get(row["message_id"]),
        )
        for key_kind, value in found:
            keys.append(
                {
                    "document_id": row["id"],
                    "partner_id": row["partner_id"],
                    "key_kind": key_kind,
                    "value": value,
                }
            )
            if key_kind == domain.PO:
                touched.add((row["partner_id"], value))
    if raw is not None:  # plain; and their JSON is at hand: the read below need not decode it
        await raw.insert_keys(keys)
        session.info.setdefault(lean_translate.KNOWN, {}).update((r["id"], r.get("canonical")) for r in rows)
    elif keys:
        await session.execute(insert(DocumentKey), keys)
    await refresh(session, touched, now=now, policy_for=_policy_for(session))


async def refresh_messages(session: AsyncSession, message_ids: Iterable[str], *, now: datetime) -> None:
    """Derive again the orders of these messages' documents (their statuses changed)."""
    ids = list(message_ids)
    if not ids:
        return
    found = await session.execute(
        select(DocumentKey.partner_id, DocumentKey.value)
        .join(Document, Document.id == DocumentKey.document_id)
        .where(Document.message_id.in_(ids), DocumentKey.key_kind == domain.PO)
        .distinct()
    )
    await refresh(session, {(p, v) for p, v in found.all()}, now=now, policy_for=_policy_for(session))


async def _linked(conn: Any, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], list[LinkedDocument]]:
    result: dict[tuple[str, str], list[LinkedDocument]] = {pair: [] for pair in pairs}
    if not pairs:
        return result
    raw = await plain(conn)
    found = (
        await raw.linked(pairs, conn.info.get(lean_translate.KNOWN))
        if raw is not None
        else (await _select_linked(conn, pairs)).all()
    )
    for r in found:
        if (r.partner_id, r.value) not in result:
            continue
        result[(r.partner_id, r.value)].append(
            LinkedDocument(
                document_id=r.id,
                message_id=r.message_id,
                kind=r.kind,
                direction=r.direction,
                at=r.created_at,
                document=(r.canonical or {}).get("document") or {},
                business_number=r.business_number,
                status=r.status,
                message_status=r.message_status,
            )
        )
    return result


async def _select_linked(conn: Any, pairs: set[tuple[str, str]]) -> Any:
    return await conn.execute(
        select(
            DocumentKey.partner_id,
            DocumentKey.value,
            Document.id,
            Document.message_id,
            Document.kind,
            Document.direction,
            Document.created_at,
            Document.canonical,
            Document.business_number,
            Document.status,
            Message.status.label("message_status"),
        )
        .join(Document, Document.id == DocumentKey.document_id)
        .join(Message, Message.id == Document.message_id)
        .where(  # two lists (index friendly on both databases), the exact pairs kept below
            DocumentKey.key_kind == domain.PO,
            one_of(conn, DocumentKey.partner_id, {p for p, _ in pairs}),
            one_of(conn, DocumentKey.value, {po for _, po in pairs}),
        )
    )


async def refresh(
    session: AsyncSession, pairs: set[tuple[str, str]], *, now: datetime, policy_for: PolicyFor
) -> None:
    """Derive each (partner, PO) again: upsert its ``orders`` row, open the exceptions
    that are new, close the ones whose gap closed.

    The order rows are upserted first, in a fixed order: that locks them, so two
    transactions deriving one order (PostgreSQL, two gateways) take turns and the
    second sees the first's documents and exceptions."""
    if not pairs:
        return
    raw = await plain(session)
    if raw is not None:
        await session.flush()  # plain statements below read what the ORM holds back
    await _lock_orders(session, sorted(pairs), now)
    linked = await _linked(session, pairs)
    partners, pos = {p for p, _ in pairs}, {po for _, po in pairs}
    open_rows: Sequence[OrderExceptionRow] = []  # a plain look first skips the usual empty read
    if raw is None or await raw.any_open_exception(partners, pos):
        open_rows = await _open_exceptions(session, partners, pos)
    open_rows = [row for row in open_rows if (row.partner_id, row.po_number) in pairs]
    by_order: dict[tuple[str, str], dict[tuple[str, str], OrderExceptionRow]] = {}
    for row in open_rows:
        by_order.setdefault((row.partner_id, row.po_number), {})[(row.kind, row.subject)] = row
    new_rows: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []  # alert events, in this transaction (gateway.alerts)
    for (partner_id, po), docs in sorted(linked.items()):
        if not docs:
            continue
        facts = domain.derive(po, docs, now=now, policy=policy_for(partner_id))
        current = by_order.get((partner_id, po), {})
        derived = {e.key: e for e in facts.exceptions}
        for key, row in current.items():
            if key not in derived:
                row.closed_at, row.updated_at = now, now
                events.append(alerts.exception_event(False, row, now))
            elif list(derived[key].documents) != list(row.documents):
                row.documents, row.updated_at = list(derived[key].documents), now
        new_rows += [
            {
                "id": new_id(),
                "partner_id": partner_id,
                "po_number": po,
                "kind": e.kind,
                "subject": e.subject[:120],
                "since": e.since,
                "closed_at": None,
                "documents": list(e.documents),
                "detail": dict(e.detail) or None,
                "updated_at": now,
            }
            for key, e in derived.items()
            if key not in current
        ]
        states.append(
            {
                "p": partner_id,
                "po": po,
                "state": facts.state,
                "open": len(derived),
                "first": min(d.at for d in docs),
                "now": now,
                "next": facts.next_check,
                **{f"m_{k}": v for k, v in domain.milestones(docs).items()},
            }
        )
    if new_rows:
        await session.execute(insert(OrderExceptionRow), new_rows)
    events += [alerts.exception_event(True, row, now) for row in new_rows]
    await alerts.record(session, events)
    for e in events:
        log.info(
            "order %s/%s: %s %s",
            e["partner_id"],
            e["po_number"],
            e["detail"]["kind"],
            "opened" if e["kind"] == "exception_opened" else "closed",
            extra={"partner_id": e["partner_id"], "correlation_id": e["correlation_id"]},
        )
    if states and raw is not None:
        await raw.update_orders(states, MILESTONES)
    elif states:
        table = Order.__table__
        assert isinstance(table, Table)
        await session.execute(
            table.update()
            .where(table.c.partner_id == bindparam("p"), table.c.po_number == bindparam("po"))
            .values(
                state=bindparam("state"),
                open_exceptions=bindparam("open"),
                first_at=bindparam("first"),
                next_check_at=bindparam("next"),
                **{name: bindparam(f"m_{name}") for name in MILESTONES},
                # changed only when the state or the count did: what ?since= lists
                updated_at=case(
                    (
                        or_(
                            table.c.state != bindparam("state"), table.c.open_exceptions != bindparam("open")
                        ),
                        bindparam("now", type_=table.c.updated_at.type),  # typed: stored as UTC text
                    ),
                    else_=table.c.updated_at,
                ),
            ),
            states,
        )
    await session.flush()


async def _open_exceptions(session: AsyncSession, partners: set[str], pos: set[str]) -> Sequence[Any]:
    row, s = OrderExceptionRow, session
    where = (row.closed_at.is_(None), one_of(s, row.partner_id, partners), one_of(s, row.po_number, pos))
    return (await session.execute(select(row).where(*where))).scalars().all()


async def _lock_orders(session: AsyncSession, pairs: list[tuple[str, str]], now: datetime) -> None:
    rows = [
        {
            "id": new_id(),
            "partner_id": p,
            "po_number": po,
            "state": "received",
            "open_exceptions": 0,
            "first_at": now,
            "updated_at": now,
        }
        for p, po in pairs
    ]
    raw = await plain(session)
    if raw is not None:
        await raw.lock_orders(rows)
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = (pg_insert if postgres else sqlite_insert)(Order)
    await session.execute(
        # A no-op update of an existing row: it takes the row's lock.
        stmt.on_conflict_do_update(
            index_elements=["partner_id", "po_number"], set_={"updated_at": stmt.table.c.updated_at}
        ),
        rows,
    )


async def check_orders(db: Database, partners: Callable[[], Any], *, now: datetime, chunk: int = 200) -> int:
    """The periodic check: derive again the orders whose next deadline has come
    (``next_check_at``: an 855, ship or invoice deadline), so the exceptions time
    opens (not acknowledged, not shipped, not invoiced) open. Everything else changes
    with a document or an acknowledgment, which derive their orders themselves.
    Returns how many orders it looked at."""
    seen, after = 0, ""
    while True:
        async with db.begin() as session:
            use_policies(session, partners)
            rows = (
                await session.execute(
                    select(Order.id, Order.partner_id, Order.po_number)
                    .where(Order.next_check_at <= now, Order.id > after)
                    .order_by(Order.id)
                    .limit(chunk)
                )
            ).all()
            if not rows:
                return seen
            await refresh(
                session, {(r.partner_id, r.po_number) for r in rows}, now=now, policy_for=_policy_for(session)
            )
        seen += len(rows)
        after = rows[-1].id


# --------------------------------------------------------------------------- views


async def order_view(
    conn: Any, partner_id: str, po: str, *, now: datetime, policy: OrderPolicy
) -> dict[str, Any] | None:
    """The order's chain, state, lines and exceptions (docs/orders.md); None when no
    document names this PO for this partner."""
    docs = sorted(
        (await _linked(conn, {(partner_id, po)}))[(partner_id, po)], key=lambda d: (d.at, d.document_id)
    )
    if not docs:
        return None
    facts = domain.derive(po, docs, now=now, policy=policy)
    message_ids = list({d.message_id for d in docs})
    detail = {
        r.id: r
        for r in (
            await conn.execute(
                select(
                    Document.id,
                    Document.set_id,
                    Document.delivered_at,
                    Document.interchange_control,
                    Document.group_control,
                ).where(Document.id.in_([d.document_id for d in docs]))
            )
        ).all()
    }
    documents = []
    for d in docs:
        extra = detail[d.document_id]
        entry: dict[str, Any] = {
            "kind": d.kind,
            "direction": d.direction,
            "business_number": d.business_number,
            "message_id": d.message_id,
            "at": d.at.isoformat(),
            "document_id": d.document_id,
            "set_id": extra.set_id,
            "purpose": d.document.get("purpose"),
            "status": d.status,
            "message_status": d.message_status,
            "interchange_control": extra.interchange_control,
            "group_control": extra.group_control,
        }
        if d.direction == "in":
            entry["erp"] = {
                "status": d.status,
                "delivered_at": extra.delivered_at.isoformat() if extra.delivered_at else None,
            }
        documents.append(entry)
    acknowledgments = await _acknowledgments(conn, docs, message_ids)
    closed = (
        await conn.execute(
            select(OrderExceptionRow)
            .where(
                OrderExceptionRow.partner_id == partner_id,
                OrderExceptionRow.po_number == po,
                OrderExceptionRow.closed_at.is_not(None),
            )
            .order_by(OrderExceptionRow.id)
        )
    ).all()
    exceptions = [
        {
            "kind": e.kind,
            "open": True,
            "since": e.since.isoformat(),
            "documents": list(e.documents),
            "subject": e.subject or None,
            "detail": dict(e.detail),
        }
        for e in facts.exceptions
    ] + [
        {
            "kind": e.kind,
            "open": False,
            "since": e.since.isoformat(),
            "documents": list(e.documents),
            "subject": e.subject or None,
            "detail": e.detail or {},
            "closed_at": e.closed_at.isoformat() if e.closed_at else None,
        }
        for e in closed
    ]
    return {
        "partner_id": partner_id,
        "po_number": po,
        "correlation_id": correlation_id(partner_id, po),
        "state": facts.state,
        "lines": [line.view() for line in facts.lines],
        "documents": documents,
        "acknowledgments": acknowledgments,
        "exceptions": exceptions,
    }


async def _acknowledgments(
    conn: Any, docs: Sequence[LinkedDocument], message_ids: list[str]
) -> list[dict[str, Any]]:
    """Ours about their documents (outbox TA1/997/999) and theirs about ours (the
    verdict events gateway.reconcile records on our outbound messages)."""
    inbound = [d.message_id for d in docs if d.direction == "in"]
    outbound = [d.message_id for d in docs if d.direction == "out"]
    found: list[dict[str, Any]] = []
    if inbound:
        for r in (
            await conn.execute(
                select(OutboxItem).where(OutboxItem.message_id.in_(inbound), OutboxItem.kind.in_(ACK_KINDS))
            )
        ).all():
            found.append(
                {
                    "kind": r.kind,
                    "direction": "out",
                    "about_message_id": r.message_id,
                    "message_id": None,
                    "at": (r.sent_at or r.created_at).isoformat(),
                    "status": r.status,
                    "interchange_control": f"{r.interchange_control:09d}"
                    if r.interchange_control is not None
                    else None,
                }
            )
    if outbound:
        for r in (
            await conn.execute(
                select(MessageEvent).where(
                    MessageEvent.message_id.in_(outbound), MessageEvent.state.in_(PARTNER_VERDICTS)
                )
            )
        ).all():
            info = r.detail or {}
            found.append(
                {
                    "kind": info.get("kind"),
                    "direction": "in",
                    "about_message_id": r.message_id,
                    "message_id": info.get("source_message_id"),
                    "at": r.at.isoformat(),
                    "status": r.state,
                    "code": info.get("code"),
                }
            )
    found.sort(key=lambda a: a["at"])
    return found


def _order_summary(o: Any) -> dict[str, Any]:
    return {
        "partner_id": o.partner_id,
        "po_number": o.po_number,
        "state": o.state,
        "open_exceptions": o.open_exceptions,
        "first_at": o.first_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
    }


async def list_orders(
    conn: Any,
    *,
    partner_id: str | None,
    state: str | None,
    since: datetime | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Orders, oldest first, paged by id."""
    query = select(Order).order_by(Order.id).limit(limit + 1)
    if partner_id:
        query = query.where(Order.partner_id == partner_id)
    if state:
        query = query.where(Order.state == state)
    if since is not None:
        query = query.where(Order.updated_at >= since)
    if cursor:
        query = query.where(Order.id > cursor)
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_order_summary(o) for o in rows], "next": rows[-1].id if more else None}


async def list_exceptions(
    conn: Any,
    *,
    partner_id: str | None,
    kind: str | None,
    open_only: bool,
    since: datetime | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Exceptions, oldest first, paged by id; open ones only unless ``open_only`` is False."""
    query = select(OrderExceptionRow).order_by(OrderExceptionRow.id).limit(limit + 1)
    if partner_id:
        query = query.where(OrderExceptionRow.partner_id == partner_id)
    if kind:
        query = query.where(OrderExceptionRow.kind == kind)
    if open_only:
        query = query.where(OrderExceptionRow.closed_at.is_(None))
    if since is not None:
        query = query.where(OrderExceptionRow.updated_at >= since)
    if cursor:
        query = query.where(OrderExceptionRow.id > cursor)
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": e.id,
            "partner_id": e.partner_id,
            "po_number": e.po_number,
            "kind": e.kind,
            "open": e.closed_at is None,
            "since": e.since.isoformat(),
            "documents": list(e.documents),
            "subject": e.subject or None,
            "detail": e.detail or {},
            "closed_at": e.closed_at.isoformat() if e.closed_at else None,
        }
        for e in rows
    ]
    return {"items": items, "next": rows[-1].id if more else None}
