"""Order lifecycle benchmark (not a test): what linking documents to their orders
costs, and how the order views and the periodic check scale with the number of orders.

Storage level, no HTTP: N orders (one 850 each, 2 lines) are stored in batches the
size of a translate batch, each batch with its keys and order derivation in the
same transaction (gateway.orders.link_documents, as the pipeline does), then one
shipment per order (outbound), then the periodic check over every open order, then
single-order views and a walk through the order list.

Usage: python bench/bench_orders.py [--orders 100000] [--batch 200] [--postgres] [--no-link]
       python bench/bench_orders.py --api [--orders 100000] [--requests 500] [--postgres]
(``--api``: the order endpoints over HTTP against bulk-inserted rows, bench/bench_orders_api.py)
(default: a SQLite file in a temporary directory; ``--postgres``: a throwaway
database on 127.0.0.1:5432, created and dropped by the run, never an existing one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from gateway import orders
from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.db.ids import new_id
from gateway.db.models import Document, Message
from gateway.domain.orders import OrderPolicy

T0 = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
POLICY = OrderPolicy(expect_order_ack=True)


def _order(po: str) -> dict[str, Any]:
    return {
        "kind": "order",
        "partner_id": "acme",
        "document": {
            "po_number": po,
            "purpose": "original",
            "dates": {"ship_no_later": "2024-03-20"},
            "lines": [
                {
                    "line_number": "1",
                    "quantity": "10",
                    "unit_price": "2.00",
                    "product_ids": {"vendor_item": "A-1"},
                },
                {
                    "line_number": "2",
                    "quantity": "5",
                    "unit_price": "4.00",
                    "product_ids": {"vendor_item": "A-2"},
                },
            ],
        },
    }


def _shipment(po: str) -> dict[str, Any]:
    return {
        "kind": "shipment",
        "partner_id": "acme",
        "document": {
            "shipment_id": f"SH-{po}",
            "carrier": {"tracking_number": f"1Z{po}"},
            "orders": [
                {
                    "po_number": po,
                    "items": [
                        {"line_number": "1", "product_ids": {"vendor_item": "A-1"}, "quantity_shipped": "10"}
                    ],
                }
            ],
        },
    }


async def _store(
    db: Database, kind: str, direction: str, canonicals: list[dict[str, Any]], now: datetime, link: bool
) -> None:
    async with db.begin() as session:
        session.info[orders.POLICIES] = lambda _partner_id: POLICY
        messages, documents = [], []
        for n, canonical in enumerate(canonicals):
            message_id = new_id()
            messages.append(
                {
                    "id": message_id,
                    "direction": direction,
                    "partner_id": "acme",
                    "channel": "rest",
                    "kind": "x12",
                    "status": "translated" if direction == "in" else "queued",
                    "raw_sha256": "0" * 64,
                    "raw_size": 1,
                    "received_at": now,
                    "updated_at": now,
                    "transport_id": f"req-{message_id}",
                }
            )
            number = canonical["document"].get("po_number") or canonical["document"].get("shipment_id")
            documents.append(
                {
                    "id": new_id(),
                    "message_id": message_id,
                    "seq": 1,
                    "partner_id": "acme",
                    "direction": direction,
                    "kind": kind,
                    "set_id": None,
                    "set_control": "0001",
                    "group_control": str(n + 1),
                    "interchange_control": f"{n + 1:09d}",
                    "business_number": number,
                    "canonical": canonical,
                    "idempotency_key": new_id() + new_id(),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                }
            )
        await session.execute(insert(Message), messages)
        await session.execute(insert(Document), documents)
        if link:
            await orders.link_documents(session, documents, now=now)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    name = f"bench_orders_{os.getpid()}"
    if args.postgres:
        await _admin(f"CREATE DATABASE {name}")
    try:
        await _run(args, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}" if args.postgres else None)
    finally:
        if args.postgres:
            await _admin(f"DROP DATABASE {name}")


async def _run(args: argparse.Namespace, url: str | None) -> None:
    if args.api:
        try:
            from bench_orders_api import run_api  # python bench/bench_orders.py
        except ImportError:
            from bench.bench_orders_api import run_api  # python -m bench.bench_orders

        await run_api(args, url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            await schema.upgrade(db)
            pos = [f"PO-{n:07d}" for n in range(args.orders)]
            for label, kind, direction, make, at in (
                ("850 in ", "order", "in", _order, T0),
                ("856 out", "shipment", "out", _shipment, T0 + timedelta(hours=30)),
            ):
                started = time.perf_counter()
                for i in range(0, len(pos), args.batch):
                    await _store(
                        db,
                        kind,
                        direction,
                        [make(po) for po in pos[i : i + args.batch]],
                        at,
                        not args.no_link,
                    )
                took = time.perf_counter() - started
                what = "store" if args.no_link else "store+link"
                print(
                    f"{what} {label}: {len(pos)} documents in {took:.1f} s = {len(pos) / took:,.0f} documents/s"
                )
            if args.no_link:
                return
            partners = lambda: None  # noqa: E731  (defaults: no profile thresholds)
            started = time.perf_counter()
            seen = await orders.check_orders(db, partners, now=T0 + timedelta(days=7))
            took = time.perf_counter() - started
            print(f"periodic check: {seen} open orders in {took:.1f} s = {seen / took:,.0f} orders/s")
            times = []
            async with db.read() as conn:
                for po in random.sample(pos, min(1000, len(pos))):
                    started = time.perf_counter()
                    view = await orders.order_view(
                        conn, "acme", po, now=T0 + timedelta(days=7), policy=POLICY
                    )
                    times.append(time.perf_counter() - started)
                    assert view is not None and view["state"] == "exception", view
            times.sort()
            print(
                f"order view: p50 {statistics.median(times) * 1000:.1f} ms, "
                f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.1f} ms ({len(times)} orders)"
            )
            started, pages, cursor = time.perf_counter(), 0, None
            async with db.read() as conn:
                while True:
                    page = await orders.list_orders(
                        conn, partner_id="acme", state=None, since=None, cursor=cursor, limit=500
                    )
                    pages += 1
                    cursor = page["next"]
                    if cursor is None:
                        break
            print(f"order list: {pages} pages of 500 in {time.perf_counter() - started:.1f} s")
        finally:
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="a throwaway database on 127.0.0.1:5432")
    parser.add_argument("--no-link", action="store_true", help="store the documents only: the baseline")
    parser.add_argument(
        "--api", action="store_true", help="bulk-insert, then time the order API over HTTP (bench_orders_api)"
    )
    parser.add_argument("--requests", type=int, default=500, help="--api: requests per measured endpoint")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
