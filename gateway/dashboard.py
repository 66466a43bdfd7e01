"""The figures of the console's dashboard and partners page, read from the database
(gateway.console renders them; nothing here knows HTML or HTTP).

- :func:`today`: orders received, ASNs sent and acknowledged, invoices sent since
  midnight UTC.
- :func:`stuck`: work that has not moved for ``stale`` by stage (jobs by step,
  messages by status, outbox items by status).
- :func:`erp_latency`: median and p95 of the last ERP deliveries: in webhook mode
  the time the ERP took to answer a post; in feed mode the time from a document
  stored to the ERP's confirmation of it (``POST /api/v1/feed/ack``).
- :func:`daily_volume`: messages and failures per partner per day (the 14-day chart),
  grouped in the database from the (partner_id, received_at, status) index.
- :func:`partners_traffic`: last traffic, error rate and overdue acknowledgments of
  every partner, in grouped queries (not three per partner).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, select, union_all

from gateway.db.models import Document, Job, Message, OutboxItem
from gateway.db.models_delivery import DeliveryAttempt

FAILED_STATES = ("failed", "partly_delivered", "quarantined", "rejected")
ACCEPTED_STATES = ("accepted", "accepted_with_errors", "partially_accepted")
OPEN_MESSAGE_STATES = ("received", "translated", "delivered", "queued")


def midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def today(conn: Any, now: datetime) -> dict[str, int]:
    start = midnight(now)
    rows = (
        await conn.execute(
            select(Document.direction, Document.kind, Document.status, func.count())
            .where(Document.created_at >= start)
            .group_by(Document.direction, Document.kind, Document.status)
        )
    ).all()
    counts = {
        "orders_received": 0,
        "asns_sent": 0,
        "asns_acknowledged": 0,
        "asns_rejected": 0,
        "invoices_sent": 0,
    }
    for direction, kind, status, n in rows:
        if direction == "in" and kind == "order":
            counts["orders_received"] += n
        elif direction == "out" and kind == "shipment" and status != "queued":
            counts["asns_sent"] += n
            # A 997 that rejects the ASN acknowledges it too: counted, and named apart.
            if status in ACCEPTED_STATES or status == "rejected":
                counts["asns_acknowledged"] += n
            if status == "rejected":
                counts["asns_rejected"] += n
        elif direction == "out" and kind == "invoice" and status != "queued":
            counts["invoices_sent"] += n
    return counts


async def stuck(conn: Any, now: datetime, stale: timedelta = timedelta(minutes=15)) -> list[dict[str, Any]]:
    """What has not moved for ``stale``, by stage, oldest first within a stage."""
    before = now - stale
    out: list[dict[str, Any]] = []
    jobs = (
        await conn.execute(
            select(Job.step, func.count(), func.min(Job.created_at))
            .where(Job.state.in_(("ready", "running")), Job.created_at < before)
            .group_by(Job.step)
        )
    ).all()
    out += [{"stage": f"job: {step}", "count": n, "oldest": oldest} for step, n, oldest in jobs]
    boxes = (
        await conn.execute(
            select(OutboxItem.status, func.count(), func.min(OutboxItem.created_at))
            .where(OutboxItem.status.in_(("held", "pending", "sending")), OutboxItem.created_at < before)
            .group_by(OutboxItem.status)
        )
    ).all()
    out += [{"stage": f"outbox: {status}", "count": n, "oldest": oldest} for status, n, oldest in boxes]
    overdue = (
        await conn.execute(
            select(func.count(), func.min(Message.updated_at)).where(Message.status == "overdue")
        )
    ).one()
    if overdue[0]:
        out.append({"stage": "acknowledgment overdue", "count": overdue[0], "oldest": overdue[1]})
    return out


@dataclass(frozen=True, slots=True)
class Latency:
    samples: int
    median_ms: float | None
    p95_ms: float | None


async def erp_latency(conn: Any, last: int = 200, *, feed: bool = False) -> Latency:
    """Over the last ``last`` deliveries: webhook posts answered (``delivered``), or
    with ``feed`` feed documents confirmed (``confirmed``)."""
    outcome = "confirmed" if feed else "delivered"
    rows = (
        await conn.execute(
            select(DeliveryAttempt.duration_ms)
            .where(DeliveryAttempt.target == "erp", DeliveryAttempt.outcome == outcome)
            .order_by(DeliveryAttempt.id.desc())
            .limit(last)
        )
    ).scalars()
    values = sorted(float(v) for v in rows)
    if not values:
        return Latency(0, None, None)
    return Latency(
        len(values), values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.95))]
    )


@dataclass(slots=True)
class Volume:
    partner_id: str
    days: list[date]
    total: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


async def daily_volume(conn: Any, now: datetime, days: int = 14) -> list[Volume]:
    """Per partner, per UTC day of the last ``days`` (today included): messages and
    failures. One grouped query; SQLite's date() and PostgreSQL's ::date both work
    on the stored UTC time."""
    first = midnight(now) - timedelta(days=days - 1)
    dialect = conn.dialect.name
    day = func.date(Message.received_at) if dialect == "sqlite" else cast(Message.received_at, Date)
    failed = func.sum(case((Message.status.in_(FAILED_STATES), 1), else_=0))
    rows = (
        await conn.execute(
            select(Message.partner_id, day, func.count(), failed)
            .where(Message.partner_id.is_not(None), Message.received_at >= first)
            .group_by(Message.partner_id, day)
        )
    ).all()
    calendar = [(first + timedelta(days=i)).date() for i in range(days)]
    index = {d: i for i, d in enumerate(calendar)}
    found: dict[str, Volume] = {}
    for partner_id, when, total, bad in rows:
        key = when if isinstance(when, date) else date.fromisoformat(str(when))
        volume = found.get(partner_id)
        if volume is None:
            volume = found[partner_id] = Volume(partner_id, calendar, [0] * days, [0] * days)
        if key in index:
            volume.total[index[key]] += int(total)
            volume.failed[index[key]] += int(bad or 0)
    return [found[p] for p in sorted(found)]


async def partners_traffic(
    conn: Any, partner_ids: Iterable[str], now: datetime, window: timedelta = timedelta(days=7)
) -> dict[str, dict[str, Any]]:
    """Per partner of ``partner_ids``: last traffic, messages and failures over
    ``window``, and overdue acknowledgments (a partner not in ``partner_ids`` is never
    reported). Three statements whatever the number of partners: the window's counts
    grouped by partner from the (partner_id, received_at, status) index, the overdue
    acknowledgments grouped from the status index, and one backward step on the
    partner index per partner for the last traffic (cheaper than a max() over every
    row of the window)."""
    ids = sorted(set(partner_ids))
    if not ids:
        return {}
    recent = (
        await conn.execute(
            select(Message.partner_id, func.count(), func.count().filter(Message.status.in_(FAILED_STATES)))
            .where(Message.partner_id.in_(ids), Message.received_at >= now - window)
            .group_by(Message.partner_id)
        )
    ).all()
    # Not narrowed to ``ids`` in SQL: SQLite would then walk every message of each
    # partner on the partner index; the status index finds the few overdue ones.
    overdue = dict(
        (
            await conn.execute(
                select(Message.partner_id, func.count())
                .where(Message.status == "overdue", Message.direction == "out")
                .group_by(Message.partner_id)
            )
        ).all()
    )
    counts = {partner: (int(total), int(bad)) for partner, total, bad in recent}
    last = await _last_traffic(conn, ids)
    out: dict[str, dict[str, Any]] = {}
    for partner in ids:
        total, bad = counts.get(partner, (0, 0))
        out[partner] = {
            "last_traffic": last.get(partner),
            "messages": total,
            "failed": bad,
            "error_rate": (bad / total) if total else None,
            "overdue_acks": int(overdue.get(partner, 0)),
        }
    return out


LOOKUPS_PER_QUERY = 200  # under SQLite's 500 terms of a compound SELECT


async def _last_traffic(conn: Any, partner_ids: list[str]) -> dict[str, datetime | None]:
    """The newest ``received_at`` of each partner: one backward step on the
    (partner_id, received_at, status) index per partner, gathered in one statement."""
    out: dict[str, datetime | None] = {}
    for first in range(0, len(partner_ids), LOOKUPS_PER_QUERY):
        lookups = [
            select(
                literal(partner).label("partner_id"),
                select(Message.received_at)
                .where(Message.partner_id == partner)
                .order_by(Message.partner_id.desc(), Message.received_at.desc())
                .limit(1)
                .scalar_subquery()
                .label("last"),
            )
            for partner in partner_ids[first : first + LOOKUPS_PER_QUERY]
        ]
        out.update((await conn.execute(union_all(*lookups))).all())
    return out
