"""The translate write's remaining lookups and small writes as plain ``sqlite3``
statements, for the lean SQLite path (gateway.db.writer, gateway.db.lean): the batch's
look-ups at its start (acks issued, documents stored, interchanges seen), control
numbers, the documents' business keys and the order rows they touch.

Each function is the plain twin of a SQLAlchemy statement in gateway.pipeline_rows,
gateway.db.control_numbers or gateway.orders, with the same SQL meaning and the same
stored text (gateway.db.lean encodes values exactly as SQLAlchemy does); those
modules call it when their session is a writer-thread session and keep their own
statement for every other session (PostgreSQL, aiosqlite). Statement building and
result processing in SQLAlchemy were ~40% of the writer thread's time per translated
batch. Everything here runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson

from gateway.db import lean
from gateway.db.models import DocumentKey, Order

_ACK_KINDS = ("TA1", "997", "999")


def _in(values: Sequence[Any]) -> str:
    return lean.placeholders(len(values))


def message_ids_with(
    conn: sqlite3.Connection, table: str, message_ids: Sequence[str], kinds: bool
) -> set[str]:
    """The ``message_ids`` with a row in ``table`` (``outbox``: an ack row when ``kinds``)."""
    found: set[str] = set()
    extra = f" AND kind IN ({_in(_ACK_KINDS)})" if kinds else ""
    for part in lean.chunks(list(message_ids)):
        found.update(
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT message_id FROM {table} WHERE message_id IN ({_in(part)}){extra}",
                (*part, *(_ACK_KINDS if kinds else ())),
            )
            if row[0] is not None
        )
    return found


def any_seen(conn: sqlite3.Connection, keys: Sequence[tuple[str, str, str]]) -> bool:
    """Whether any (partner, sender, ISA13) of ``keys`` is in ``interchanges_seen``."""
    for part in lean.chunks(list(keys), 300):
        clause = " OR ".join(["(partner_id = ? AND sender = ? AND control_number = ?)"] * len(part))
        if conn.execute(
            f"SELECT 1 FROM interchanges_seen WHERE {clause} LIMIT 1", [v for key in part for v in key]
        ).fetchone():
            return True
    return False


def allocate(conn: sqlite3.Connection, partner_id: str, kind: str, count: int) -> int:
    """gateway.db.control_numbers.allocate's upsert: the counter's new last value."""
    row = conn.execute(
        "INSERT INTO control_numbers (partner_id, kind, last_value) VALUES (?, ?, ?) "
        "ON CONFLICT (partner_id, kind) DO UPDATE SET last_value = control_numbers.last_value + ? "
        "RETURNING last_value",
        (partner_id, kind, count, count),
    ).fetchone()
    return int(row[0])


def give_back(conn: sqlite3.Connection, partner_id: str, kind: str, count: int) -> None:
    """Hand back the last ``count`` numbers taken (gateway.pipeline_rows.return_control_numbers)."""
    conn.execute(
        "UPDATE control_numbers SET last_value = last_value - ? WHERE partner_id = ? AND kind = ?",
        (count, partner_id, kind),
    )


def transports(conn: sqlite3.Connection, message_ids: Sequence[str]) -> dict[str, str | None]:
    """Each message's ``transport_id``."""
    found: dict[str, str | None] = {}
    for part in lean.chunks(list(message_ids)):
        found.update(
            conn.execute(f"SELECT id, transport_id FROM messages WHERE id IN ({_in(part)})", tuple(part))
        )
    return found


def insert_keys(conn: sqlite3.Connection, keys: Sequence[dict[str, Any]]) -> None:
    lean.insert(conn, DocumentKey, keys)


def lock_orders(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """gateway.orders._lock_orders: new order rows inserted, existing ones left as they are."""
    columns = ("id", "partner_id", "po_number", "state", "open_exceptions", "first_at", "updated_at")
    conn.executemany(
        f"INSERT INTO orders ({', '.join(columns)}) VALUES ({lean.placeholders(len(columns))}) "
        "ON CONFLICT (partner_id, po_number) DO UPDATE SET updated_at = orders.updated_at",
        lean.encode(lean.table_of(Order), columns, rows),
    )


def _utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


# session.info key: document id -> canonical JSON of documents this transaction stored
KNOWN = "gateway.lean.known_canonical"


def linked(
    conn: sqlite3.Connection, pairs: set[tuple[str, str]], known: dict[str, Any] | None = None
) -> list[Any]:
    """The documents keyed with a PO of ``pairs`` (two plain INs: the caller keeps the
    exact pairs), as gateway.orders._linked selects them, rows with the same names.
    ``known``: canonical JSON already at hand by document id (stored in this
    transaction), used instead of decoding the stored text again."""
    known = known or {}
    partners, pos = {p for p, _ in pairs}, {po for _, po in pairs}
    sql = (
        "SELECT k.partner_id, k.value, d.id, d.message_id, d.kind, d.direction, d.created_at, "
        "d.canonical, d.business_number, d.status, m.status "
        "FROM document_keys AS k JOIN documents AS d ON d.id = k.document_id "
        "JOIN messages AS m ON m.id = d.message_id "
        f"WHERE k.key_kind = 'po' AND k.partner_id IN ({_in(list(partners))}) AND k.value IN ({_in(list(pos))})"
    )
    return [linked_row(r, _utc(r[6]), known) for r in conn.execute(sql, (*partners, *pos))]


def linked_row(r: Sequence[Any], created_at: datetime | None, known: dict[str, Any]) -> SimpleNamespace:
    """One row of the linked-documents look-up (either database's; ``r`` in its
    column order), named as gateway.orders._select_linked names it."""
    return SimpleNamespace(
        partner_id=r[0],
        value=r[1],
        id=r[2],
        message_id=r[3],
        kind=r[4],
        direction=r[5],
        created_at=created_at,
        canonical=known[r[2]] if r[2] in known else orjson.loads(r[7]) if r[7] is not None else None,
        business_number=r[8],
        status=r[9],
        message_status=r[10],
    )


def any_open_exception(conn: sqlite3.Connection, partners: set[str], pos: set[str]) -> bool:
    """Whether an open exception may concern these orders (else the ORM read is skipped)."""
    return (
        conn.execute(
            "SELECT 1 FROM order_exceptions WHERE closed_at IS NULL "
            f"AND partner_id IN ({_in(list(partners))}) AND po_number IN ({_in(list(pos))}) LIMIT 1",
            (*partners, *pos),
        ).fetchone()
        is not None
    )


def update_orders(
    conn: sqlite3.Connection, states: Sequence[dict[str, Any]], milestones: Sequence[str]
) -> None:
    """gateway.orders.refresh's order update: state, counts, milestones; ``updated_at``
    moved only when the state or the count changed (SET reads the old row)."""
    table = lean.table_of(Order)
    names = ("state", "open_exceptions", "first_at", "next_check_at", *milestones)
    keys = ("state", "open", "first", "next", *(f"m_{m}" for m in milestones))
    sets = ", ".join(f"{n} = ?" for n in names)
    sql = (
        f"UPDATE orders SET {sets}, updated_at = CASE WHEN state != ? OR open_exceptions != ? "
        "THEN ? ELSE updated_at END WHERE partner_id = ? AND po_number = ?"
    )
    encoders = lean.encoders(table, names)
    at = lean.encoders(table, ("updated_at",))[0]
    conn.executemany(
        sql,
        [
            (
                *(enc(row[k]) for enc, k in zip(encoders, keys, strict=True)),
                row["state"],
                row["open"],
                at(row["now"]),
                row["p"],
                row["po"],
            )
            for row in states
        ],
    )
