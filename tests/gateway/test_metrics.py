"""GET /metrics: Prometheus text format with messages by partner/direction/status,
queue depths, dead letters, overdue acks and the latency histogram."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conftest import ACME_KEY, auth
from gwsamples import order_850
from test_erp import Clock
from test_outbound import TOKEN, app_client

from gateway.app import PIPELINE

SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? -?[0-9.e+]+(Inf)?$')


async def test_exposition_is_well_formed_and_counts(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    clock = Clock()
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    for n in range(3):
        await client.post("/partners/acme/edi", data=order_850("ACME", 40 + n), headers=auth(ACME_KEY))
    await client.app[PIPELINE].run_until_idle()
    feed = await (await client.get("/api/v1/feed", headers=TOKEN)).json()
    clock.advance(0.2)
    await client.post("/api/v1/feed/ack", json={"ids": [feed["items"][0]["id"]]}, headers=TOKEN)
    await client.app[PIPELINE].run_until_idle()
    assert (await client.get("/metrics")).status == 401
    resp = await client.get("/metrics", headers=TOKEN)
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert 'gateway_messages{partner="acme",direction="in",status="translated"} 2' in text
    assert 'gateway_messages{partner="acme",direction="in",status="acknowledged"} 1' in text
    assert 'gateway_queue_depth{queue="erp_feed_available"} 2' in text
    assert 'gateway_queue_depth{queue="outbox_held"} 2' in text
    assert 'gateway_queue_depth{queue="outbox_pending"} 1' in text
    assert 'gateway_processing_seconds_bucket{le="0.25"} 1' in text
    assert 'gateway_processing_seconds_bucket{le="0.1"} 0' in text
    assert "gateway_processing_seconds_count 1" in text
    assert "gateway_acks_overdue 0" in text
