"""Order API benchmark (not a test): GET /api/v1/orders/{partner}/{po} and GET
/api/v1/exceptions over real HTTP on loopback against a database holding N orders
with their documents, next to GET /healthz (a handler that does nothing: the
ceiling of the HTTP stack on this machine, measured in the same run).

The rows are bulk-inserted directly (what the pipeline would have written, without
running it): per order an inbound 850 (with our 997 in the outbox), for 70% an
outbound 856 and for 40% an 810 (each with the partner's verdict event), their
``document_keys``, the ``orders`` row with its milestones, and for 10% of the
orders an open ``not_invoiced`` exception, for another 10% a closed one.

Usage: python bench/bench_orders.py --api [--orders 100000] [--postgres]
(run through bench_orders.py, which makes and drops the throwaway PostgreSQL
database; on PostgreSQL the tables are ANALYZEd after the load, as autovacuum would).
Two ceilings are measured in the same run: GET /healthz (no database) and a route
added here that runs one trivial query in a read transaction (one database round
trip through the same pool). Targets (issue 11): order view under 50 ms, exception
list under 200 ms.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert, select, text

from gateway.app import DATABASE, build_app
from gateway.bootstrap import Overrides
from gateway.config import Settings
from gateway.db import schema
from gateway.db.engine import Database, open_database
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

TOKEN = "bench-token"
CHUNK = 2000


def _message(direction: str, status: str, at: datetime) -> dict[str, Any]:
    message_id = new_id()
    return {
        "id": message_id,
        "direction": direction,
        "partner_id": "acme",
        "channel": "rest",
        "kind": "x12",
        "status": status,
        "raw_sha256": "0" * 64,
        "raw_size": 1,
        "received_at": at,
        "updated_at": at,
        "transport_id": f"req-{message_id}",
    }


def _document(
    message: dict[str, Any], kind: str, number: str, document: dict[str, Any], n: int
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "message_id": message["id"],
        "seq": 1,
        "partner_id": "acme",
        "direction": message["direction"],
        "kind": kind,
        "set_id": {"order": "850", "shipment": "856", "invoice": "810"}[kind],
        "set_control": "0001",
        "group_control": str(n),
        "interchange_control": f"{n:09d}",
        "business_number": number,
        "canonical": {"kind": kind, "partner_id": "acme", "document": document},
        "idempotency_key": new_id() + new_id(),
        "status": "delivered" if message["direction"] == "in" else "accepted",
        "attempts": 1,
        "created_at": message["received_at"],
    }


LINES = [
    {"line_number": "1", "quantity": "10", "unit_price": "2.00", "product_ids": {"vendor_item": "A-1"}},
    {"line_number": "2", "quantity": "5", "unit_price": "4.00", "product_ids": {"vendor_item": "A-2"}},
]


def _rows(i: int, t0: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every row of order ``i``."""
    po = f"PO-{i:07d}"
    at = t0 + timedelta(seconds=i)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("m", "d", "k", "o", "x", "b", "e")}
    inbound = _message("in", "acknowledged", at)
    order = _document(inbound, "order", po, {"po_number": po, "purpose": "original", "lines": LINES}, i)
    out["m"].append(inbound)
    out["d"].append(order)
    out["b"].append(
        {
            "id": new_id(),
            "partner_id": "acme",
            "message_id": inbound["id"],
            "kind": "997",
            "channel": "rest",
            "payload": "ISA...",
            "interchange_control": i,
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": at,
            "created_at": at,
            "sent_at": at,
        }
    )
    keys = [(order, "po", po), (order, "interchange", str(i)), (order, "group", str(i))]
    shipped = invoiced = None
    if i % 10 < 7:
        shipped = at + timedelta(hours=30)
        message = _message("out", "accepted", shipped)
        items = [
            {
                "line_number": line["line_number"],
                "product_ids": line["product_ids"],
                "quantity_shipped": line["quantity"],
            }
            for line in LINES
        ]
        doc = _document(
            message,
            "shipment",
            f"SH-{i}",
            {"shipment_id": f"SH-{i}", "orders": [{"po_number": po, "items": items}]},
            i,
        )
        out["m"].append(message)
        out["d"].append(doc)
        out["e"].append(
            {
                "message_id": message["id"],
                "at": shipped,
                "state": "accepted",
                "detail": {"kind": "997", "code": "A"},
            }
        )
        keys += [(doc, "po", po), (doc, "shipment", f"SH-{i}"), (doc, "tracking", f"1Z{i}")]
    if i % 10 < 4:
        invoiced = at + timedelta(hours=80)
        message = _message("out", "accepted", invoiced)
        doc = _document(
            message, "invoice", f"INV-{i}", {"invoice_number": f"INV-{i}", "po_number": po, "lines": LINES}, i
        )
        out["m"].append(message)
        out["d"].append(doc)
        out["e"].append(
            {
                "message_id": message["id"],
                "at": invoiced,
                "state": "accepted",
                "detail": {"kind": "997", "code": "A"},
            }
        )
        keys += [(doc, "po", po), (doc, "invoice", f"INV-{i}")]
    out["k"] = [{"document_id": d["id"], "partner_id": "acme", "key_kind": k, "value": v} for d, k, v in keys]
    exception = i % 10 in (4, 5)  # shipped, not invoiced: 4 open, 5 closed
    out["o"].append(
        {
            "id": new_id(),
            "partner_id": "acme",
            "po_number": po,
            "state": "closed"
            if invoiced
            else ("exception" if i % 10 == 4 else "shipped" if shipped else "received"),
            "open_exceptions": int(i % 10 == 4),
            "first_at": at,
            "updated_at": invoiced or shipped or at,
            "next_check_at": None,
            "ordered_at": at,
            "acknowledged_at": None,
            "shipped_at": shipped,
            "invoiced_at": invoiced,
            "order_to_asn_seconds": (shipped - at).total_seconds() if shipped else None,
            "asn_to_invoice_seconds": (invoiced - shipped).total_seconds() if invoiced and shipped else None,
        }
    )
    if exception and shipped:
        out["x"].append(
            {
                "id": new_id(),
                "partner_id": "acme",
                "po_number": po,
                "kind": "not_invoiced",
                "subject": "",
                "since": shipped + timedelta(hours=72),
                "closed_at": None if i % 10 == 4 else shipped + timedelta(hours=90),
                "documents": [out["d"][1]["id"]],
                "detail": None,
                "updated_at": shipped + timedelta(hours=72),
            }
        )
    return out


async def fill(db: Database, orders: int, t0: datetime) -> dict[str, int]:
    """Bulk-insert ``orders`` orders with their rows, CHUNK orders a transaction."""
    tables = {
        "m": Message,
        "d": Document,
        "k": DocumentKey,
        "o": Order,
        "x": OrderExceptionRow,
        "b": OutboxItem,
        "e": MessageEvent,
    }
    counts = dict.fromkeys(tables, 0)
    for start in range(0, orders, CHUNK):
        batch: dict[str, list[dict[str, Any]]] = {k: [] for k in tables}
        for i in range(start, min(orders, start + CHUNK)):
            for key, rows in _rows(i, t0).items():
                batch[key] += rows
        async with db.begin() as session:
            for key in ("m", "d", "k", "o", "x", "b", "e"):
                if batch[key]:
                    await session.execute(insert(tables[key]), batch[key])
                    counts[key] += len(batch[key])
    return counts


async def _timed(session: aiohttp.ClientSession, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            await resp.read()
            assert resp.status == 200, (url, resp.status)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _line(label: str, times: list[float], ceiling: float | None) -> str:
    times = sorted(times)
    p50, p95 = statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]
    ratio = f", {p50 / ceiling:.1f}x the ceiling's p50" if ceiling else ""
    return f"{label:<38} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ({len(times)} requests{ratio})"


async def run_api(args: Any, url: str | None) -> None:
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        database_url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'var' / 'gateway.db'}"
        (Path(tmp) / "var").mkdir(mode=0o700)
        db = open_database(database_url)
        try:
            await schema.upgrade(db)
            started = time.perf_counter()
            counts = await fill(db, args.orders, t0)
            took = time.perf_counter() - started
            if db.dialect == "postgresql":
                async with db.engine.connect() as conn:  # what autovacuum does after a bulk load
                    await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                        text("ANALYZE")
                    )
        finally:
            await db.close()
        print(f"bulk insert: {sum(counts.values()):,} rows ({counts}) in {took:.1f} s")
        settings = Settings.model_validate(
            {
                "data_dir": str(Path(tmp) / "var"),
                "partners_dir": str(Path(tmp) / "partners"),
                "database_url": database_url,
                "api": {"token": TOKEN},
                "pipeline": {"workers": 0, "translate_processes": 0},
                "outbound": {"workers": 0},
                "storage": {"prune_interval_minutes": 0},
            }
        )
        from gateway.partners import PartnerDirectory

        now = t0 + timedelta(seconds=args.orders, days=10)
        app = build_app(
            settings,
            overrides=Overrides(clock=lambda: now, load_partners=lambda _s: PartnerDirectory()),
            sighup=False,
        )

        async def one_query(request: web.Request) -> web.Response:
            # the second ceiling: one read transaction with one trivial query
            async with request.app[DATABASE].read() as conn:
                await conn.execute(select(1))
            return web.json_response({"status": "ok"})

        app.router.add_get("/bench/one-query", one_query)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        rng = random.Random(7)
        try:
            async with aiohttp.ClientSession() as session:
                pos = [f"PO-{rng.randrange(args.orders):07d}" for _ in range(args.requests)]
                await _timed(
                    session, [f"{base}/healthz"] * 50 + [f"{base}/api/v1/orders/acme/{po}" for po in pos[:50]]
                )
                ceiling = await _timed(session, [f"{base}/healthz"] * args.requests)
                floor = statistics.median(ceiling)
                print(_line("GET /healthz (ceiling)", ceiling, None))
                one = await _timed(session, [f"{base}/bench/one-query"] * args.requests)
                print(_line("GET one query (database ceiling)", one, floor))
                print(
                    _line(
                        "GET /api/v1/orders/acme/{po}",
                        await _timed(session, [f"{base}/api/v1/orders/acme/{po}" for po in pos]),
                        floor,
                    )
                )
                first = f"{base}/api/v1/exceptions"
                print(
                    _line(
                        "GET /api/v1/exceptions (first page)",
                        await _timed(session, [first] * args.requests),
                        floor,
                    )
                )
                async with session.get(
                    f"{first}?limit=500", headers={"Authorization": f"Bearer {TOKEN}"}
                ) as resp:
                    ids = [item["id"] for item in (await resp.json())["items"]]
                cursors = [f"{first}?cursor={rng.choice(ids)}" for _ in range(args.requests)]
                print(_line("GET /api/v1/exceptions?cursor=", await _timed(session, cursors), floor))
                kind = f"{first}?partner_id=acme&kind=not_invoiced&open=false&limit=200"
                print(
                    _line(
                        "GET /api/v1/exceptions?kind=&open=false&limit=200",
                        await _timed(session, [kind] * args.requests),
                        floor,
                    )
                )
                listed = f"{base}/api/v1/orders?partner_id=acme&state=exception"
                print(
                    _line(
                        "GET /api/v1/orders?state=exception",
                        await _timed(session, [listed] * args.requests),
                        floor,
                    )
                )
        finally:
            await runner.cleanup()
