"""The translate write's look-ups and small writes on PostgreSQL's raw asyncpg
connection (decision 0028): the twins of gateway.db.lean_translate's ``sqlite3``
functions, for the session's own connection inside its transaction
(gateway.db.pg_raw.driver), and of the jobs statements the write runs.

Each function is the plain twin of a SQLAlchemy statement in gateway.pipeline_rows,
gateway.db.control_numbers, gateway.db.jobs or gateway.orders, with the same SQL
meaning, the same locks (an upsert's row lock, a guarded UPDATE) and the same stored
values; those modules call it when :func:`gateway.db.pg_raw.driver` gives them the
connection, and keep their own statement otherwise. Through SQLAlchemy each of these
statements cost ~0.27 ms of event-loop CPU against ~0.04 ms here (docs/performance.md,
"PostgreSQL's pipeline path"). Lists are ``= ANY($n)`` arrays (one statement text,
prepared once per connection). asyncpg's errors come out as SQLAlchemy's classes,
without the server's DETAIL (gateway.db.pg_raw.as_sqlalchemy). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.db import pg_raw
from gateway.db.lean_translate import linked_row
from gateway.db.models import DocumentKey

_ACK_KINDS = ["TA1", "997", "999"]


async def message_ids_with(pg: Any, table: str, message_ids: Sequence[str], kinds: bool) -> set[str]:
    """The ``message_ids`` with a row in ``table`` (``outbox``: an ack row when ``kinds``)."""
    sql = f"SELECT DISTINCT message_id FROM {table} WHERE message_id = ANY($1)"
    args: list[Any] = [list(message_ids)]
    if kinds:
        sql += " AND kind = ANY($2)"
        args.append(_ACK_KINDS)
    async with pg_raw.as_sqlalchemy(sql):
        return {row[0] for row in await pg.fetch(sql, *args) if row[0] is not None}


async def any_seen(pg: Any, keys: Sequence[tuple[str, str, str]]) -> bool:
    """Whether any (partner, sender, ISA13) of ``keys`` is in ``interchanges_seen`` (a
    plain look, no lock: the locked ORM read follows when it finds one)."""
    sql = (
        "SELECT partner_id, sender, control_number FROM interchanges_seen "
        "WHERE partner_id = ANY($1) AND control_number = ANY($2)"
    )
    wanted = set(keys)
    async with pg_raw.as_sqlalchemy(sql):
        found = await pg.fetch(sql, list({k[0] for k in wanted}), list({k[2] for k in wanted}))
    return any((r[0], r[1], r[2]) in wanted for r in found)


async def allocate(pg: Any, partner_id: str, kind: str, count: int) -> int:
    """gateway.db.control_numbers.allocate's upsert: the counter's new last value."""
    sql = (
        "INSERT INTO control_numbers (partner_id, kind, last_value) VALUES ($1, $2, $3) "
        "ON CONFLICT (partner_id, kind) DO UPDATE SET last_value = control_numbers.last_value + $3 "
        "RETURNING last_value"
    )
    async with pg_raw.as_sqlalchemy(sql):
        return int(await pg.fetchval(sql, partner_id, kind, count))


async def give_back(pg: Any, partner_id: str, kind: str, count: int) -> None:
    """Hand back the last ``count`` numbers taken (gateway.pipeline_rows.return_control_numbers)."""
    sql = "UPDATE control_numbers SET last_value = last_value - $1 WHERE partner_id = $2 AND kind = $3"
    async with pg_raw.as_sqlalchemy(sql):
        await pg.execute(sql, count, partner_id, kind)


async def finish_jobs(pg: Any, job_ids: Sequence[int], worker: str, now: datetime) -> set[int]:
    """gateway.db.jobs.finish_many: the jobs still leased to ``worker`` marked done."""
    sql = (
        "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL, updated_at = $1 "
        "WHERE id = ANY($2) AND locked_by = $3 AND state = 'running' RETURNING id"
    )
    async with pg_raw.as_sqlalchemy(sql):
        return {row[0] for row in await pg.fetch(sql, now, list(job_ids), worker)}


async def enqueue_claimed(
    pg: Any, message_ids: Sequence[str], step: str, worker: str, now: datetime, lease: timedelta
) -> dict[str, int]:
    """gateway.db.jobs.enqueue_claimed's rows (running, attempt 1, leased to ``worker``)
    in one statement, ids given in the order of ``message_ids``; the new id of each."""
    sql = (
        "INSERT INTO jobs (message_id, step, state, attempts, locked_by, locked_until, "
        "next_attempt_at, created_at, updated_at) "
        "SELECT m, $2, 'running', 1, $3, $4, $5, $5, $5 FROM unnest($1::varchar[]) WITH ORDINALITY AS t(m, n) "
        "ORDER BY n RETURNING id, message_id"
    )
    async with pg_raw.as_sqlalchemy(sql):
        rows = await pg.fetch(sql, list(message_ids), step, worker, now + lease, now)
    return {row[1]: row[0] for row in rows}


async def transports(pg: Any, message_ids: Sequence[str]) -> dict[str, str | None]:
    """Each message's ``transport_id``."""
    sql = "SELECT id, transport_id FROM messages WHERE id = ANY($1)"
    async with pg_raw.as_sqlalchemy(sql):
        return {row[0]: row[1] for row in await pg.fetch(sql, list(message_ids))}


async def insert_keys(pg: Any, keys: Sequence[dict[str, Any]]) -> None:
    await pg_raw.insert(pg, DocumentKey, keys)


_ORDER_COLUMNS = ("id", "partner_id", "po_number", "state", "open_exceptions", "first_at", "updated_at")


async def lock_orders(pg: Any, rows: Sequence[dict[str, Any]]) -> None:
    """gateway.orders._lock_orders: new order rows inserted, existing ones locked by a
    no-op update (in the caller's fixed order)."""
    values = ", ".join(f"${n}" for n in range(1, len(_ORDER_COLUMNS) + 1))
    sql = (
        f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ({values}) "
        "ON CONFLICT (partner_id, po_number) DO UPDATE SET updated_at = orders.updated_at"
    )
    async with pg_raw.as_sqlalchemy(sql):
        await pg.executemany(sql, [tuple(row[c] for c in _ORDER_COLUMNS) for row in rows])


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)  # as UTCDateTime returns it


async def linked(pg: Any, pairs: set[tuple[str, str]], known: dict[str, Any] | None = None) -> list[Any]:
    """The documents keyed with a PO of ``pairs``, as gateway.orders._select_linked
    reads them (rows with the same names). ``known``: canonical JSON at hand by
    document id (stored in this transaction), used instead of decoding it again."""
    known = known or {}
    sql = (
        "SELECT k.partner_id, k.value, d.id, d.message_id, d.kind, d.direction, d.created_at, "
        "d.canonical::text, d.business_number, d.status, m.status "
        "FROM document_keys AS k JOIN documents AS d ON d.id = k.document_id "
        "JOIN messages AS m ON m.id = d.message_id "
        "WHERE k.key_kind = 'po' AND k.partner_id = ANY($1) AND k.value = ANY($2)"
    )
    async with pg_raw.as_sqlalchemy(sql):
        found = await pg.fetch(sql, list({p for p, _ in pairs}), list({po for _, po in pairs}))
    return [linked_row(r, _utc(r[6]), known) for r in found]


async def any_open_exception(pg: Any, partners: set[str], pos: set[str]) -> bool:
    """Whether an open exception may concern these orders (else the ORM read is skipped)."""
    sql = (
        "SELECT 1 FROM order_exceptions WHERE closed_at IS NULL "
        "AND partner_id = ANY($1) AND po_number = ANY($2) LIMIT 1"
    )
    async with pg_raw.as_sqlalchemy(sql):
        return await pg.fetchval(sql, list(partners), list(pos)) is not None


async def update_orders(pg: Any, states: Sequence[dict[str, Any]], milestones: Sequence[str]) -> None:
    """gateway.orders.refresh's order update: state, counts, milestones; ``updated_at``
    moved only when the state or the count changed (SET reads the old row)."""
    names = ("state", "open_exceptions", "first_at", "next_check_at", *milestones)
    keys = ("state", "open", "first", "next", *(f"m_{m}" for m in milestones))
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, 1))
    at = len(names) + 1
    sql = (
        f"UPDATE orders SET {sets}, updated_at = CASE WHEN state != ${at} OR open_exceptions != ${at + 1} "
        f"THEN ${at + 2} ELSE updated_at END WHERE partner_id = ${at + 3} AND po_number = ${at + 4}"
    )
    async with pg_raw.as_sqlalchemy(sql):
        await pg.executemany(
            sql,
            [
                (*(row[k] for k in keys), row["state"], row["open"], row["now"], row["p"], row["po"])
                for row in states
            ],
        )
