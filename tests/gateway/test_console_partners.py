"""The console's partners page over real HTTP (the real app on SQLite and PostgreSQL):
the figures of each partner (last traffic, messages and error rate over 7 days,
overdue acknowledgments) are that partner's own, for two partners with different
traffic, one of them silent for the whole window, and a partner without a profile
never shows; and the grouped read behind them (gateway.dashboard.partners_traffic)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import test_console
from sqlalchemy import insert
from test_console import login
from test_erp import Clock

from gateway.app import DATABASE
from gateway.dashboard import partners_traffic
from gateway.db.ids import new_id
from gateway.db.models import Message

clock, fake_erp, gw = test_console.clock, test_console.fake_erp, test_console.gw  # its fixtures


def row(partner: str | None, at: datetime, status: str, direction: str = "in") -> dict[str, Any]:
    return {
        "id": new_id(int(at.timestamp() * 1000)),
        "direction": direction,
        "partner_id": partner,
        "channel": "as2",
        "transport_id": None,
        "idempotency_key": None,
        "kind": "x12",
        "status": status,
        "reason": None,
        "raw_sha256": "0" * 64,
        "raw_size": 100,
        "received_at": at,
        "updated_at": at,
    }


async def fill(client: Any, now: datetime) -> None:
    day = timedelta(days=1)
    rows = [
        # acme: 4 messages in the last 7 days, 1 failed; an overdue ASN from before the
        # window (counted as overdue, not as traffic); older traffic outside the window
        row("acme", now - 20 * day, "failed"),
        row("acme", now - 10 * day, "overdue", direction="out"),
        row("acme", now - 6 * day, "acknowledged"),
        row("acme", now - 2 * day, "failed"),
        row("acme", now - 1 * day, "delivered", direction="out"),
        row("acme", now - timedelta(hours=3), "acknowledged"),
        # globex: silent for the last 7 days; an overdue inbound message is not an ack
        row("globex", now - 9 * day, "overdue"),
        row("globex", now - 8 * day, "rejected"),
        # a partner without a profile and a message without a partner: never shown
        row("initech", now - timedelta(hours=1), "failed"),
        row(None, now - timedelta(hours=1), "failed"),
    ]
    async with client.app[DATABASE].write() as conn:
        await conn.execute(insert(Message), rows)


def partner_rows(html: str) -> dict[str, list[str]]:
    found = {}
    for tr in re.findall(r'<tr data-testid="partner">(.*?)</tr>', html, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
        found[cells[0]] = cells[3:7]  # last traffic, messages (7 d), error rate, overdue acks
    return found


async def test_each_partner_shows_its_own_traffic(gw: Any, clock: Clock) -> None:
    now = clock()
    await fill(gw, now)
    await login(gw, "victor")
    page = await (await gw.get("/ui/partners")).text()
    assert partner_rows(page) == {
        "acme": [(now - timedelta(hours=3)).strftime("%Y-%m-%d %H:%M"), "4", "25.0 %", "1"],
        "globex": [(now - timedelta(days=8)).strftime("%Y-%m-%d %H:%M"), "0", "-", "0"],
    }
    assert "initech" not in page


async def test_partners_traffic_grouped_for_every_partner(gw: Any, clock: Clock) -> None:
    now = clock()
    await fill(gw, now)
    async with gw.app[DATABASE].read() as conn:
        figures = await partners_traffic(conn, ["globex", "acme", "nobody"], now)
        assert await partners_traffic(conn, [], now) == {}
    assert figures == {
        "acme": {
            "last_traffic": now - timedelta(hours=3),
            "messages": 4,
            "failed": 1,
            "error_rate": 0.25,
            "overdue_acks": 1,
        },
        "globex": {
            "last_traffic": now - timedelta(days=8),
            "messages": 0,
            "failed": 0,
            "error_rate": None,
            "overdue_acks": 0,
        },
        "nobody": {"last_traffic": None, "messages": 0, "failed": 0, "error_rate": None, "overdue_acks": 0},
    }
