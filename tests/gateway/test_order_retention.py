"""Retention of order rows (gateway.order_retention through gateway.retention.prune):
a cancelled order past ``storage.order_retention_days`` goes with its exceptions and
links, a closed exception of a kept order goes, an order in progress, a recent
cancellation and an open exception stay; a dry run counts without deleting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_erp import Clock
from test_orders import an_855, order_850, post, receive
from test_orders_exceptions import check, exceptions, with_orders
from test_outbound import TOKEN, app_client

from gateway import retention
from gateway.app import DATABASE, GATEWAY, PARTNERS, RAWSTORE, SETTINGS
from gateway.db.models import DocumentKey, Order

DAY = 86400.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def status(client: Any, po: str) -> int:
    return int((await client.get(f"/api/v1/orders/acme/{po}", headers=TOKEN)).status)


async def test_finished_orders_and_closed_exceptions_past_the_window_are_pruned_with_their_links(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=2)
    client = await app_client(
        aiohttp_client,
        tmp_path,
        partners_dir,
        clock,
        database_url,
        storage={"order_retention_days": 30, "prune_interval_minutes": 0},  # pruned by the test only
    )
    await receive(client, order_850(1, po="PO-OLD"))
    await receive(client, order_850(2, po="PO-OLD", purpose="01"))  # cancelled
    await receive(client, order_850(3, po="PO-ACK"))
    clock.advance(3 * 3600)
    await check(client, clock)  # both not acknowledged; PO-OLD's is not: it is cancelled
    assert await exceptions(client) == [("not_acknowledged", True)]
    await post(client, "order-acks", an_855("PO-ACK"))  # closes it; PO-ACK stays in progress
    await receive(client, order_850(4, po="PO-OPEN"))
    clock.advance(20 * DAY)
    await receive(client, order_850(5, po="PO-NEW"))
    await receive(client, order_850(6, po="PO-NEW", purpose="01"))  # cancelled, 10 days before the prune
    clock.advance(11 * DAY)
    await check(client, clock)  # PO-OPEN: not acknowledged, open
    assert sorted(await exceptions(client, open_only=False)) == [
        ("not_acknowledged", False),
        ("not_acknowledged", True),
    ]

    db, settings = client.app[DATABASE], client.app[SETTINGS]
    await client.app[GATEWAY].alerts.run()  # the exception's two alert events: dispatched (no webhook)
    preview = await retention.prune(
        db, client.app[RAWSTORE], settings, partners=client.app[PARTNERS](), now=clock(), dry_run=True
    )
    assert preview.orders is not None and (preview.orders.orders, preview.orders.order_exceptions) == (1, 1)
    assert await status(client, "PO-OLD") == 200  # a dry run deletes nothing
    report = await retention.prune(
        db, client.app[RAWSTORE], settings, partners=client.app[PARTNERS](), now=clock()
    )
    assert report.orders is not None
    assert (report.orders.orders, report.orders.order_exceptions, report.orders.order_links) == (1, 1, 2)
    assert "1 order(s) with 2 link(s)" in report.summary()
    assert report.orders_line("deleted") == (
        "orders: 1 order(s) with 2 link(s), 1 closed order exception(s), 2 alert event(s) deleted"
    )

    assert await status(client, "PO-OLD") == 404  # gone with its links
    for kept in ("PO-ACK", "PO-OPEN", "PO-NEW"):
        assert await status(client, kept) == 200, kept
    assert await exceptions(client, open_only=False) == [("not_acknowledged", True)]  # PO-OPEN's
    async with db.read() as conn:
        orders = sorted((await conn.execute(select(Order.po_number))).scalars().all())
        old_links = (
            await conn.execute(
                select(func.count()).select_from(DocumentKey).where(DocumentKey.value == "PO-OLD")
            )
        ).scalar_one()
    assert orders == ["PO-ACK", "PO-NEW", "PO-OPEN"] and old_links == 0
    again = await retention.prune(
        db, client.app[RAWSTORE], settings, partners=client.app[PARTNERS](), now=clock()
    )
    assert again.orders is not None and again.orders.orders == 0
