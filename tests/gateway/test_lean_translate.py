"""The translate write's plain twins (gateway.db.lean_translate on SQLite's writer
thread, gateway.db.pg_translate on PostgreSQL's asyncpg connection): an order's
documents linked, its row derived, its exceptions opened and closed, and control
numbers taken and handed back leave the same rows whether the transaction runs the
plain statements or SQLAlchemy's."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from gateway import pipeline_rows as rows
from gateway.db import lean, pg_raw, schema
from gateway.db.engine import Database, open_database
from gateway.db.models import Message

T0 = datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=UTC)


def _message(message_id: str, transport_id: str | None) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": "in",
        "partner_id": "acme",
        "channel": "rest",
        "transport_id": transport_id,
        "idempotency_key": None,
        "kind": "x12",
        "status": "translated",
        "reason": None,
        "raw_sha256": "0" * 64,
        "raw_size": 1,
        "interchange_sender": None,
        "interchange_control": None,
        "received_at": T0,
        "updated_at": T0,
    }


def _document(n: int, message_id: str, kind: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": f"D{n:025d}",
        "message_id": message_id,
        "seq": 1,
        "partner_id": "acme",
        "direction": "in",
        "kind": kind,
        "set_id": {"order": "850", "shipment": "856"}[kind],
        "set_control": "0001",
        "group_control": str(n),
        "interchange_control": f"{n:09d}",
        "business_number": body.get("po_number") or body.get("shipment_id"),
        "canonical": {"kind": kind, "document": body},
        "idempotency_key": f"key-{n}",
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "created_at": at,
        "delivered_at": None,
    }


LINE = {"line_number": "1", "quantity": "10", "unit": "EA", "unit_price": "2.00", "vendor_item": "A-1"}
ORDER = {"po_number": "PO-1", "purpose": "original", "lines": [LINE]}
OVER = {  # 14 shipped of 10 ordered: an exception
    "shipment_id": "SH-1",
    "orders": [{"po_number": "PO-1", "items": [{**LINE, "quantity_shipped": "14"}]}],
    "carrier": {"tracking_number": "1Z999"},
}
RAISED = {**ORDER, "purpose": "change", "lines": [{**LINE, "quantity": "20"}]}  # closes it
# Each step: documents stored (and linked) in one transaction, control numbers taken
# and a few handed back, as the translate write does.
STEPS = [
    [("order", ORDER), ("order", {**ORDER, "po_number": "PO-2"})],
    [("shipment", OVER)],
    [("order", RAISED), ("order", {**ORDER, "po_number": "PO-3"})],
]


async def _run(db: Database, lean_path: bool, watch: Any = None) -> dict[str, list[Any]]:
    """The steps; ``watch``: a before_cursor_execute listener while they run."""
    await schema.upgrade(db)
    messages = [_message(f"M{n:025d}", f"T-{n}" if n % 2 else None) for n in range(9)]

    def setup(conn: sqlite3.Connection) -> None:
        lean.insert(conn, Message, messages)

    if db.is_sqlite:
        await db.lean_write(setup)
    else:
        async with db.begin() as session:
            await session.execute(insert(Message), messages)
    if watch is not None:
        event.listen(db.engine.sync_engine, "before_cursor_execute", watch)
    n = 0
    for step, batch in enumerate(STEPS):
        at = T0 + timedelta(hours=step)
        documents = []
        for kind, body in batch:
            n += 1
            documents.append(_document(n, f"M{n:025d}", kind, body, at))

        async def write(session: Any, documents: list[dict[str, Any]] = documents, at: datetime = at) -> None:
            rows.pool_control_numbers(session)
            await rows.allocate_pooled(session, "acme", "interchange")
            await rows.allocate_pooled(session, "acme", "group", 2)
            await rows.store_documents(session, documents)
            await rows.return_control_numbers(session)

        if lean_path and db.is_sqlite:
            await db.lean_session(write)
        else:
            async with db.begin() as session:
                await write(session)
    if watch is not None:
        event.remove(db.engine.sync_engine, "before_cursor_execute", watch)
    tables = READ_BACK
    found: dict[str, list[Any]] = {}
    async with db.read() as conn:
        for name, sql in tables.items():
            result = await conn.execute(text(sql))
            columns = list(result.keys())
            # ids are fresh on each path; everything else must be the same text
            found[name] = [
                tuple(v for c, v in zip(columns, r, strict=True) if c != "id") for r in result.all()
            ]
    return found


READ_BACK = {
    "orders": "SELECT * FROM orders ORDER BY partner_id, po_number",
    "document_keys": "SELECT document_id, partner_id, key_kind, value FROM document_keys ORDER BY id",
    "order_exceptions": "SELECT * FROM order_exceptions ORDER BY partner_id, po_number, kind, subject",
    "control_numbers": "SELECT * FROM control_numbers ORDER BY partner_id, kind",
}


async def test_the_plain_path_writes_what_sqlalchemy_writes(tmp_path: Path) -> None:
    plain = open_database(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    orm = open_database(f"sqlite+aiosqlite:///{tmp_path / 'orm.db'}")
    try:
        assert plain.writer is not None
        written = plain.writer.transactions
        expected = await _run(orm, lean_path=False)
        got = await _run(plain, lean_path=True)
        assert plain.writer.transactions - written == 1 + len(STEPS)  # setup, then one per step
    finally:
        await plain.close()
        await orm.close()
    # the scenario reaches what it is meant to: three orders, one shipped over its
    # quantity (an exception) then changed after the shipment (that one closed, another
    # opened), keys, control numbers taken in a pool and the unused ones handed back
    assert [(r[0], r[1], r[2]) for r in expected["orders"]] == [
        ("acme", "PO-1", "exception"),
        ("acme", "PO-2", "received"),
        ("acme", "PO-3", "received"),
    ], expected["orders"]
    assert [(r[2], r[5] is None) for r in expected["order_exceptions"]] == [
        ("changed_after_shipment", True),
        ("shipped_over_ordered", False),  # closed
    ]
    assert ("acme", "group", 6) in expected["control_numbers"]
    assert ("acme", "interchange", 3) in expected["control_numbers"]
    assert ("D0000000000000000000000003", "acme", "tracking", "1Z999") in expected["document_keys"]
    assert got == expected


@pytest.fixture
def two_pg_databases() -> Iterator[tuple[str, str]]:
    from conftest import PG_ABSENT, postgres_available, throwaway_postgres

    if not postgres_available():
        pytest.skip(PG_ABSENT)
    with throwaway_postgres() as (first, _), throwaway_postgres() as (second, _):
        yield first, second


@pytest.mark.postgres
async def test_the_plain_path_writes_what_sqlalchemy_writes_on_postgres(
    monkeypatch: pytest.MonkeyPatch, two_pg_databases: tuple[str, str]
) -> None:
    """The same steps on PostgreSQL: the asyncpg twins (gateway.db.pg_translate) on the
    session's own connection against SQLAlchemy's statements (the driver withheld);
    the plain run sends no statement through SQLAlchemy but its own read-back."""
    plain, orm = (open_database(url) for url in two_pg_databases)
    through_sqlalchemy: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        through_sqlalchemy.append(statement)

    try:
        got = await _run(plain, lean_path=True, watch=seen)

        async def no_driver(session: Any) -> None:
            return None

        monkeypatch.setattr(pg_raw, "driver", no_driver)
        expected = await _run(orm, lean_path=False)
    finally:
        await plain.close()
        await orm.close()
    assert [(r[0], r[1], r[2]) for r in expected["orders"]] == [
        ("acme", "PO-1", "exception"),
        ("acme", "PO-2", "received"),
        ("acme", "PO-3", "received"),
    ], expected["orders"]
    assert [(r[2], r[5] is None) for r in expected["order_exceptions"]] == [
        ("changed_after_shipment", True),
        ("shipped_over_ordered", False),  # closed
    ]
    assert ("acme", "group", 6) in expected["control_numbers"]
    assert got == expected
    # the twins' tables never through SQLAlchemy (the documents' own ORM path without a
    # batch, and the open exceptions the ORM reads and closes, still are)
    twins = ("control_numbers", "document_keys", "INTO orders", "UPDATE orders", "FROM messages")
    assert any("order_exceptions" in s for s in through_sqlalchemy)
    assert [s for s in through_sqlalchemy if any(t in s for t in twins)] == []
