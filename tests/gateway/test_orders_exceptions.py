"""Reconciliation exceptions through the service, with a clock the test moves:
each kind opens when its gap appears (on a new document, a partner's 997, or the
periodic check) and closes by itself when the gap closes (docs/orders.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_erp import Clock
from test_orders import PO, ack_997, an_810, an_855, an_856, fetch_mailbox, order, order_850, post, receive
from test_outbound import TOKEN, app_client

from gateway.app import DATABASE, PARTNERS
from gateway.db.models import Document
from gateway.orders import check_orders
from gateway.reconcile import mark_overdue


@pytest.fixture
def clock() -> Clock:
    return Clock()


def with_orders(partners_dir: Path, **settings: Any) -> None:
    profile = partners_dir / "acme" / "profile.toml"
    lines = "".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n" for k, v in settings.items())
    profile.write_text(profile.read_text() + "[orders]\n" + lines)


async def exceptions(client: Any, *, open_only: bool = True) -> list[tuple[str, bool]]:
    url = "/api/v1/exceptions" + ("" if open_only else "?open=false")
    body = await (await client.get(url, headers=TOKEN)).json()
    return [(e["kind"], e["open"]) for e in body["items"]]


async def check(client: Any, clock: Clock) -> None:
    await check_orders(client.app[DATABASE], client.app[PARTNERS], now=clock())


async def test_not_acknowledged_opens_on_the_periodic_check_and_closes_with_our_855(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=2)
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, database_url)
    await receive(client, order_850(1))
    received_at = clock.now.isoformat()
    clock.advance(timedelta(hours=1).total_seconds())
    await check(client, clock)
    assert await exceptions(client) == []
    listed = await (await client.get("/api/v1/orders", headers=TOKEN)).json()
    assert [o["updated_at"] for o in listed["items"]] == [received_at]  # nothing changed: not touched
    clock.advance(timedelta(hours=1).total_seconds())
    await check(client, clock)
    assert await exceptions(client) == [("not_acknowledged", True)]
    view = await order(client)
    assert view["state"] == "exception"
    [found] = view["exceptions"]
    assert found["kind"] == "not_acknowledged" and found["open"] is True
    assert found["since"] == clock.now.isoformat() and found["documents"] == [
        view["documents"][0]["document_id"]
    ]
    listed = await (await client.get("/api/v1/orders?state=exception", headers=TOKEN)).json()
    assert [o["open_exceptions"] for o in listed["items"]] == [1]

    await post(client, "order-acks", an_855())  # closed in the transaction that stores the 855
    assert await exceptions(client) == []
    assert await exceptions(client, open_only=False) == [("not_acknowledged", False)]
    view = await order(client)
    assert view["state"] == "acknowledged"
    assert [(e["kind"], e["open"]) for e in view["exceptions"]] == [("not_acknowledged", False)]


async def test_shipment_and_invoice_mismatches_open_and_close(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await receive(client, order_850(1))
    await post(client, "invoices", an_810("INV-1", [("1", "A-1", "10", "2.00")]))
    assert await exceptions(client) == [("invoiced_without_shipment", True)]
    await post(client, "shipments", an_856("SH-1", [("1", "A-1", "4"), ("7", "ZZ-9", "1")]))
    assert sorted(await exceptions(client)) == [
        ("invoiced_over_shipped", True),
        ("shipped_not_ordered", True),
    ]
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_order_exceptions{partner="acme",kind="invoiced_over_shipped"} 1' in metrics
    view = await order(client)
    over = next(e for e in view["exceptions"] if e["kind"] == "invoiced_over_shipped")
    assert over["detail"] == {"measure": "quantity", "line_number": "1"} and len(over["documents"]) == 2
    await post(client, "shipments", an_856("SH-2", [("1", "A-1", "8")]))
    assert sorted(await exceptions(client)) == [("shipped_not_ordered", True), ("shipped_over_ordered", True)]
    assert ("invoiced_without_shipment", False) in await exceptions(client, open_only=False)


async def test_not_shipped_and_not_invoiced_are_opened_by_time(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    with_orders(partners_dir, invoice_due_hours=24)
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    # Ship no later than 2024-03-16 (the clock starts 2024-03-15 12:00).
    await receive(client, order_850(1, extra=("DTM*038*20240316",)))
    clock.advance(timedelta(hours=36).total_seconds())  # 2024-03-17 00:00
    await check(client, clock)
    assert await exceptions(client) == [("not_shipped", True)]
    await post(client, "shipments", an_856("SH-1", [("1", "A-1", "10"), ("2", "A-2", "5")]))
    assert await exceptions(client) == []
    clock.advance(timedelta(hours=24).total_seconds())
    await check(client, clock)
    assert await exceptions(client) == [("not_invoiced", True)]
    await post(client, "invoices", an_810("INV-1", [("1", "A-1", "10", "2.00"), ("2", "A-2", "5", "4.00")]))
    assert await exceptions(client) == []


async def test_partner_rejection_and_silence_on_our_documents(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await receive(client, order_850(1))
    rejected = await post(client, "order-acks", an_855())
    await fetch_mailbox(client)
    await receive(client, ack_997("PR", "855", rejected["group_control"], 900, code="R"))
    assert await exceptions(client) == [("partner_rejected", True)]
    clock.advance(60)
    again = await post(client, "order-acks", an_855())
    assert await exceptions(client) == []  # sent again: the gap is closed while it waits
    await fetch_mailbox(client)
    clock.advance(timedelta(hours=25).total_seconds())
    assert await mark_overdue(client.app[DATABASE], client.app[PARTNERS], now=clock()) == [
        again["message_id"]
    ]
    assert await exceptions(client) == [("partner_ack_overdue", True)]
    await receive(client, ack_997("PR", "855", again["group_control"], 901))
    assert await exceptions(client) == []
    async with client.app[DATABASE].read() as conn:
        statuses = (
            (await conn.execute(select(Document.status).where(Document.direction == "out"))).scalars().all()
        )
    assert sorted(statuses) == ["accepted", "rejected"]


async def test_a_change_after_shipment(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await receive(client, order_850(1))
    clock.advance(60)
    await post(client, "shipments", an_856("SH-1", [("1", "A-1", "4")]))
    clock.advance(60)
    await receive(client, order_850(2, purpose="04", lines=(("1", "8", "2.00", "A-1"),)))
    assert await exceptions(client) == [("changed_after_shipment", True)]
    view = await order(client)
    assert [line["ordered"] for line in view["lines"]] == ["8"]
    assert [d["purpose"] for d in view["documents"] if d["kind"] == "order"] == ["original", "change"]
    clock.advance(60)
    await post(client, "order-acks", an_855())
    assert await exceptions(client) == []
    assert view["po_number"] == PO


async def test_the_order_check_is_a_scheduled_task(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    from gateway.api.keys import GATEWAY
    from gateway.bootstrap import ORDER_CHECK_SECONDS

    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=1)
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await receive(client, order_850(1))
    task = client.app[GATEWAY].scheduler.tasks["order-check"]
    assert task.interval == ORDER_CHECK_SECONDS
    clock.advance(timedelta(hours=2).total_seconds())
    await task.run()
    assert await exceptions(client) == [("not_acknowledged", True)]
