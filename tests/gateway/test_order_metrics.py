"""The order lifecycle's business metrics, scraped from GET /metrics over HTTP after
real documents went through the service: orders per milestone and state, the oldest
open exception's age, the order -> ASN and ASN -> invoice histograms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_erp import Clock
from test_metrics import SAMPLE
from test_orders import an_810, an_855, an_856, order_850, post, receive
from test_orders_exceptions import check, with_orders
from test_outbound import TOKEN, app_client

HOUR = 3600.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric's samples (labels as written)."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


async def test_business_metrics_follow_the_documents(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=2)
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, database_url)
    await receive(client, order_850(1))
    await receive(client, order_850(2, po="PO-2"))
    await post(client, "order-acks", an_855())
    clock.advance(30 * HOUR)
    await check(client, clock)  # PO-2 was never acknowledged: open since t0 + 2 h
    await post(client, "shipments", an_856("SH-1", [("1", "A-1", "10"), ("2", "A-2", "5")]))
    clock.advance(50 * HOUR)
    await post(client, "invoices", an_810("INV-1", [("1", "A-1", "10", "2.00"), ("2", "A-2", "5", "4.00")]))

    text = await (await client.get("/metrics", headers=TOKEN)).text()
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert samples(text, "gateway_orders") == {
        '{partner="acme",milestone="received"}': 2,
        '{partner="acme",milestone="acknowledged"}': 1,
        '{partner="acme",milestone="shipped"}': 1,
        '{partner="acme",milestone="invoiced"}': 1,
    }
    assert samples(text, "gateway_orders_by_state") == {
        '{partner="acme",state="exception"}': 1,
        '{partner="acme",state="invoiced"}': 1,  # our 810 waits for the partner's 997
    }
    assert samples(text, "gateway_order_exceptions") == {'{partner="acme",kind="not_acknowledged"}': 1}
    assert samples(text, "gateway_order_exception_oldest_seconds") == {"": 78 * HOUR}
    to_asn = samples(text, "gateway_order_order_to_asn_seconds_bucket")
    assert to_asn['{partner="acme",le="86400.0"}'] == 0 and to_asn['{partner="acme",le="172800.0"}'] == 1
    assert to_asn['{partner="acme",le="+Inf"}'] == 1
    assert samples(text, "gateway_order_order_to_asn_seconds_sum") == {'{partner="acme"}': 30 * HOUR}
    to_invoice = samples(text, "gateway_order_asn_to_invoice_seconds_bucket")
    assert to_invoice['{partner="acme",le="172800.0"}'] == 0
    assert to_invoice['{partner="acme",le="259200.0"}'] == 1
    assert samples(text, "gateway_order_asn_to_invoice_seconds_count") == {'{partner="acme"}': 1}

    await post(client, "order-acks", an_855("PO-2"))  # closes the exception
    text = await (await client.get("/metrics", headers=TOKEN)).text()
    assert samples(text, "gateway_order_exception_oldest_seconds") == {"": 0}
    assert samples(text, "gateway_orders")['{partner="acme",milestone="acknowledged"}'] == 2
