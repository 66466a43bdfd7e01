"""Schema revisions on SQLite and PostgreSQL: the models match what the migrations
build, and a database at 0002 (with data) is refused at start until
``gateway db upgrade`` brings it to the head (0003: index on outbox.message_id; 0004:
instances, schedules, outbox.locked_by; 0005: document_keys, orders, order_exceptions;
0006: users, console_sessions, audit_log; 0007: alert_events, alert_deliveries;
0008: jobs.progress_done/_total; 0009: outbox.mdn_status/_at/_detail; 0010:
login_failures; 0011: raw_journal; 0012: its owners; 0013: orders.updated_at text on
SQLite; 0014: raw_journal.kept and its sha256 index; 0015: 64-bit serial ids on
PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from gwsamples import message_row
from sqlalchemy import Connection, insert, inspect, select, text

import gateway.db.models_alerts  # (its tables are part of the metadata)
import gateway.db.models_console  # (its tables are part of the metadata)
import gateway.db.models_delivery  # noqa: F401  (its table too)
from gateway.db import schema
from gateway.db.engine import open_database
from gateway.db.models import Base, JournaledPayload, Message, Order, OutboxItem, utcnow


def _url(database_url: str | None, tmp_path: Path) -> str:
    return database_url or f"sqlite+aiosqlite:///{tmp_path / 'var' / 'gateway.db'}"


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _indexes(connection: Connection, table: str) -> dict[str, list[str | None]]:
    return {ix["name"]: ix["column_names"] for ix in inspect(connection).get_indexes(table) if ix["name"]}


async def test_models_match_the_migrations(database_url: str | None, tmp_path: Path) -> None:
    db = open_database(_url(database_url, tmp_path))
    try:
        await schema.upgrade(db)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert (await conn.run_sync(_indexes, "outbox"))["ix_outbox_message"] == ["message_id"]
    finally:
        await db.close()


async def test_database_at_0002_is_refused_then_upgraded_by_the_cli(
    database_url: str | None, tmp_path: Path
) -> None:
    head = schema.head_revision()
    assert head == "0015"
    url = _url(database_url, tmp_path)
    db = open_database(url)
    now = utcnow()
    try:
        await schema.upgrade(db, "0002")
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(Message).values(message_row("01HZZZZZZZZZZZZZZZZZZZZZZZ", "acknowledged", now))
            )
            await conn.execute(
                insert(OutboxItem).values(
                    id="01HZZZZZZZZZZZZZZZZZZZZZZY",
                    partner_id="acme",
                    message_id="01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    kind="997",
                    channel="mailbox",
                    payload="ISA...",
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        with pytest.raises(schema.SchemaError, match=f"revision 0002, this gateway needs {head}"):
            await schema.prepare_schema(db)
    finally:
        await db.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "var")
    env["GATEWAY_DATABASE_URL"] = url
    up = subprocess.run(
        [sys.executable, "-m", "gateway.service_cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    assert f"schema upgraded from 0002 to {head}" in up.stdout

    db = open_database(url)
    try:
        assert await schema.prepare_schema(db) == f"schema at revision {head}"
        async with db.engine.connect() as conn:
            assert (await conn.run_sync(_indexes, "outbox"))["ix_outbox_message"] == ["message_id"]
            kept = (await conn.execute(select(OutboxItem.message_id, OutboxItem.kind))).all()
            assert [tuple(r) for r in kept] == [("01HZZZZZZZZZZZZZZZZZZZZZZZ", "997")]
            assert {"instances", "schedules", "document_keys", "orders", "order_exceptions"} <= set(
                await conn.run_sync(lambda c: inspect(c).get_table_names())
            )
        # And back: 0004's downgrade drops its tables and column, 0003's only its index.
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(schema.alembic_config(c), "0002"))
            assert "ix_outbox_message" not in await conn.run_sync(_indexes, "outbox")
    finally:
        await db.close()


async def test_0013_rewrites_orders_updated_at_stored_with_an_offset(tmp_path: Path) -> None:
    """SQLite only (PostgreSQL stores real timestamps): the order updates of earlier
    versions stored ``updated_at`` as ``... +00:00`` text, which ``?since=`` and the
    ordering compare as text out of place; 0013 rewrites them in the common form."""
    db = open_database(_url(None, tmp_path))
    rows = {
        "o1": "2026-12-07 10:00:00.123456+00:00",
        "o2": "2026-12-07 10:00:00+00:00",
        "o3": "2026-12-07 09:00:00.000001",  # already in the common form
    }
    try:
        await schema.upgrade(db, "0012")
        async with db.engine.begin() as conn:
            for key, stamp in rows.items():
                await conn.exec_driver_sql(
                    "INSERT INTO orders (id, partner_id, po_number, state, open_exceptions, first_at, updated_at)"
                    " VALUES (?, 'acme', ?, 'ordered', 0, '2026-12-07 08:00:00.000000', ?)",
                    (key, key, stamp),
                )
        await schema.upgrade(db)
        async with db.engine.connect() as conn:
            got = dict((await conn.exec_driver_sql("SELECT id, updated_at FROM orders")).all())
            assert got == {
                "o1": "2026-12-07 10:00:00.123456",
                "o2": "2026-12-07 10:00:00.000000",
                "o3": "2026-12-07 09:00:00.000001",
            }
            newest = (await conn.execute(select(Order.id).order_by(Order.updated_at.desc()))).scalars().all()
            assert newest == ["o1", "o2", "o3"]
    finally:
        await db.close()


async def test_0014_marks_the_journal_rows_already_there_for_replay(
    database_url: str | None, tmp_path: Path
) -> None:
    """Rows written before 0014 are journal rows whose files may not be synced (a
    database upgraded after a crash): they are marked to be replayed to files; rows
    inserted afterwards without naming the column are kept (the payload's only copy)."""
    db = open_database(_url(database_url, tmp_path))
    try:
        await schema.upgrade(db, "0013")
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(JournaledPayload.__table__).values(sha256="a" * 64, data=b"old", store="s", writer="w")
            )
        await schema.upgrade(db)
        async with db.engine.begin() as conn:
            await conn.execute(insert(JournaledPayload.__table__).values(sha256="b" * 64, data=b"new"))
            got = dict((await conn.execute(select(JournaledPayload.data, JournaledPayload.kept))).all())
            assert got == {b"old": False, b"new": True}
            assert (await conn.run_sync(_indexes, "raw_journal"))["ix_raw_journal_sha256"] == ["sha256"]
    finally:
        await db.close()


# The serial ids 0015 makes 64-bit on PostgreSQL, with one row each of these tables.
_SERIAL_TABLES = {
    "message_events": "INSERT INTO message_events (message_id, at, state) VALUES ('M1', now(), 'received')",
    "jobs": "INSERT INTO jobs (message_id, step, state, attempts, next_attempt_at, created_at, updated_at)"
    " VALUES ('M1', 'translate', 'ready', 0, now(), now(), now())",
    "delivery_attempts": "INSERT INTO delivery_attempts (message_id, target, at, outcome, duration_ms)"
    " VALUES ('M1', 'erp', now(), 'delivered', 1.5)",
    "document_keys": "INSERT INTO document_keys (document_id, partner_id, key_kind, value)"
    " VALUES ('D1', 'acme', 'po', 'PO-1')",
    "audit_log": "INSERT INTO audit_log (at, actor, action, target, outcome) VALUES (now(), 'a', 'b', 'c', 'ok')",
    "login_failures": "INSERT INTO login_failures (name_key, client, at) VALUES ('a', '127.0.0.1', now())",
}


async def _insert_one_of_each(db: Any) -> dict[str, int]:
    """A row in every table of ``_SERIAL_TABLES``: their new ids."""
    async with db.engine.begin() as conn:
        return {
            table: (await conn.exec_driver_sql(f"{sql} RETURNING id")).scalar_one()
            for table, sql in _SERIAL_TABLES.items()
        }


@pytest.mark.postgres
async def test_0015_serial_ids_go_past_2_to_the_31_on_postgres(pg_database: tuple[str, str]) -> None:
    """With 32-bit serials every insert failed once a sequence passed 2^31 - 1
    (SQLSTATE 2200H after 430 million messages); after 0015 the rows from before
    are kept and the ids go on past it. Its downgrade restores 32-bit ids while they fit."""
    url = pg_database[0]
    now = utcnow()
    past = 2**31 + 7
    db = open_database(url)
    try:
        await schema.upgrade(db, "0014")
        async with db.engine.begin() as conn:
            await conn.execute(insert(Message).values(message_row("M1", "received", now)))
            await conn.exec_driver_sql(
                "INSERT INTO documents (id, message_id, seq, direction, kind, canonical, idempotency_key,"
                " status, attempts, created_at) VALUES ('D1', 'M1', 1, 'in', 'order', '{}', 'k1', 'pending', 0, now())"
            )
        before = await _insert_one_of_each(db)
        await schema.upgrade(db, "0015")
        # And back, then forward again: the 32-bit types while every id fits.
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(schema.alembic_config(c), "0014"))
            assert await conn.run_sync(_id_types) == dict.fromkeys(_SERIAL_TABLES, ("integer", "integer"))
        await schema.upgrade(db)
        async with db.engine.begin() as conn:
            assert await conn.run_sync(_id_types) == dict.fromkeys(_SERIAL_TABLES, ("bigint", "bigint"))
            for table in _SERIAL_TABLES:
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {past - 1})"
                )
    finally:
        await db.close()
    # A process started after the upgrade (its pool's prepared statements are planned
    # for the new types: a process running through it is refused them, so stop first).
    db = open_database(url)
    try:
        after = await _insert_one_of_each(db)
        assert after == dict.fromkeys(_SERIAL_TABLES, past)
        async with db.engine.connect() as conn:
            for table, first in before.items():
                kept = (await conn.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id")).scalars().all()
                assert kept == [first, past], table
    finally:
        await db.close()


def _id_types(connection: Connection) -> dict[str, tuple[str, str]]:
    """Per table of ``_SERIAL_TABLES``: the type of its ``id`` and of its sequence."""
    found = connection.execute(
        text(
            "SELECT c.table_name, c.data_type, s.data_type FROM information_schema.columns c"
            " JOIN information_schema.sequences s"
            " ON s.sequence_name = split_part(pg_get_serial_sequence(c.table_name, 'id'), '.', 2)"
            " WHERE c.column_name = 'id' AND c.table_schema = current_schema()"
            " AND c.table_name = ANY(:tables)"
        ),
        {"tables": list(_SERIAL_TABLES)},
    )
    return {table: (column, sequence) for table, column, sequence in found.all()}
