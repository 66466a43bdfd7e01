"""Retention of the order lifecycle's rows (part of ``gateway prune`` and the periodic
prune, gateway.retention), with ``storage.order_retention_days`` set:

1. orders ``closed`` or ``cancelled`` (no open exception) whose state last changed
   before the window: the ``orders`` row, all its exceptions (closed) and its links
   (the ``document_keys`` rows that name its PO: the documents themselves go with
   their messages, by ``message_retention_days``); a document for that PO arriving
   later starts a new order;
2. exceptions closed before the window, of orders still kept;
3. alert events older than the window once every delivery of theirs is final
   (``sent`` or ``failed``), with those deliveries.

A batch per write transaction; the rows are chosen again inside it, so a document
that reopened an order meanwhile keeps it. Never touches an open exception, an
order still in progress or an alert still to be sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, tuple_

from gateway.db.engine import Database
from gateway.db.models import DocumentKey, Order, OrderExceptionRow
from gateway.db.models_alerts import AlertDelivery, AlertEventRow
from gateway.domain.orders import PO
from gateway.domain.states import AlertStatus

BATCH = 500
FINISHED = ("closed", "cancelled")


@dataclass(slots=True)
class OrderPruneReport:
    orders: int = 0
    order_exceptions: int = 0
    order_links: int = 0
    alert_events: int = 0

    def summary(self) -> str:
        return (
            f"{self.orders} order(s) with {self.order_links} link(s), "
            f"{self.order_exceptions} closed order exception(s), {self.alert_events} alert event(s)"
        )


def _finished(cutoff: datetime) -> Any:
    return (Order.state.in_(FINISHED), Order.updated_at < cutoff, Order.open_exceptions == 0)


def _stale_alerts(cutoff: datetime) -> Any:
    pending = exists().where(
        AlertDelivery.event_id == AlertEventRow.id, AlertDelivery.status == AlertStatus.PENDING
    )
    return (AlertEventRow.at < cutoff, AlertEventRow.dispatched_at.is_not(None), ~pending)


async def prune_orders(db: Database, cutoff: datetime, *, dry_run: bool = False) -> OrderPruneReport:
    report = OrderPruneReport()
    if dry_run:
        async with db.read() as conn:
            report.orders = (
                await conn.execute(select(func.count()).select_from(Order).where(*_finished(cutoff)))
            ).scalar_one()
            report.order_exceptions = (
                await conn.execute(
                    select(func.count())
                    .select_from(OrderExceptionRow)
                    .where(OrderExceptionRow.closed_at < cutoff)
                )
            ).scalar_one()
            report.alert_events = (
                await conn.execute(
                    select(func.count()).select_from(AlertEventRow).where(*_stale_alerts(cutoff))
                )
            ).scalar_one()
        return report
    while await _orders_batch(db, cutoff, report):
        await asyncio.sleep(0)  # let queued writers have the gate between batches
    while True:
        async with db.write() as conn:
            ids = (
                (
                    await conn.execute(
                        select(OrderExceptionRow.id).where(OrderExceptionRow.closed_at < cutoff).limit(BATCH)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                result = await conn.execute(delete(OrderExceptionRow).where(OrderExceptionRow.id.in_(ids)))
                report.order_exceptions += result.rowcount
        if not ids:
            break
        await asyncio.sleep(0)
    while True:
        async with db.write() as conn:
            ids = (
                (await conn.execute(select(AlertEventRow.id).where(*_stale_alerts(cutoff)).limit(BATCH)))
                .scalars()
                .all()
            )
            if ids:
                await conn.execute(delete(AlertDelivery).where(AlertDelivery.event_id.in_(ids)))
                result = await conn.execute(delete(AlertEventRow).where(AlertEventRow.id.in_(ids)))
                report.alert_events += result.rowcount
        if not ids:
            break
        await asyncio.sleep(0)
    return report


async def _orders_batch(db: Database, cutoff: datetime, report: OrderPruneReport) -> bool:
    async with db.write() as conn:
        rows = (
            await conn.execute(
                select(Order.id, Order.partner_id, Order.po_number)
                .where(*_finished(cutoff))
                .order_by(Order.id)
                .limit(BATCH)
                .with_for_update()
            )
        ).all()
        if not rows:
            return False
        pairs = [(r.partner_id, r.po_number) for r in rows]
        gone = await conn.execute(
            delete(OrderExceptionRow).where(
                tuple_(OrderExceptionRow.partner_id, OrderExceptionRow.po_number).in_(pairs)
            )
        )
        links = await conn.execute(
            delete(DocumentKey).where(
                DocumentKey.key_kind == PO, tuple_(DocumentKey.partner_id, DocumentKey.value).in_(pairs)
            )
        )
        orders = await conn.execute(delete(Order).where(Order.id.in_([r.id for r in rows])))
    report.order_exceptions += gone.rowcount
    report.order_links += links.rowcount
    report.orders += orders.rowcount
    return True
