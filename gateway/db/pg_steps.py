"""The pipeline's delivered-batch record on PostgreSQL, run on the raw asyncpg
connection: jobs finished, documents ``delivered`` (or, in feed mode, parked
``available``), held acks released, messages ``acknowledged``, their events, in one
transaction of a pooled connection.

Through SQLAlchemy each statement cost ~0.27 ms of event-loop CPU (compilation,
cache keys, per-row parameter processing) against ~0.04 ms through asyncpg itself,
and feed mode's parked batch went message by message through the ORM (a job update,
a document update and an event per message). Here the batch is the same statements
in the same order as the SQLite twin, gateway.db.lean_steps.record_delivered (which
says what each one writes), with lists as ``= ANY($n)`` arrays and the rows of an
insert as one ``executemany``.

asyncpg's errors are raised as the SQLAlchemy classes the engine would have raised
(IntegrityError, DataError, ProgrammingError, else OperationalError), so
gateway.db.engine.is_storage_error and the pipeline's retry treat them as before.

Values are the ones SQLAlchemy binds: timestamps timezone-aware (a ``timestamptz``
stores the instant), JSON columns as the engine's JSON text (its asyncpg codec for
``json`` takes text). The transaction is asyncpg's own on a connection in autocommit
mode (as gateway.db.lean_pg's intake batch), committed when the block ends and rolled
back on any error, IllegalTransition included. Never used on SQLite.

The translate write's bulk rows (documents, outbox acks, ``interchanges_seen``,
events, the messages' status updates) go the same way through :func:`driver`,
:func:`insert` and :func:`update_by_id`: statements on the asyncpg connection under
the caller's SQLAlchemy session, inside its transaction, at the place and in the
order the SQLAlchemy statements they replace had.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import JSON, Table
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.engine import Database
from gateway.db.jobs import ClaimedJob
from gateway.db.lean import by_columns
from gateway.db.lean_steps import Delivered
from gateway.db.models import Base
from gateway.db.models_delivery import DeliveryAttempt
from gateway.db.writer import json_text
from gateway.domain.states import INBOUND, IllegalTransition, InboundStatus

_EVENT = "INSERT INTO message_events (message_id, at, state, detail) VALUES ($1, $2, $3, $4)"
_SOURCES = sorted(str(s) for s in INBOUND.sources(InboundStatus.ACKNOWLEDGED))


async def record_delivered(
    db: Database,
    *,
    attempts: Sequence[dict[str, Any]],
    complete: Sequence[tuple[ClaimedJob, Sequence[str]]],
    now: datetime,
    parked: Sequence[tuple[ClaimedJob, Sequence[str]]] = (),
) -> Delivered:
    """gateway.db.lean_steps.record_delivered on PostgreSQL (module doc), committed
    when this returns."""
    async with db.engine.connect() as conn, _as_sqlalchemy("record delivered"):
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        pg: Any = (await conn.get_raw_connection()).driver_connection
        async with pg.transaction():
            return await _record(pg, attempts, complete, now, parked)


@asynccontextmanager
async def _as_sqlalchemy(what: str) -> AsyncIterator[None]:
    """asyncpg's errors inside as SQLAlchemy's classes (module doc)."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith("asyncpg"):
            raise
        import asyncpg

        kind: type[DBAPIError] = OperationalError
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            kind = IntegrityError
        elif isinstance(exc, asyncpg.DataError):
            kind = DataError
        elif isinstance(exc, asyncpg.SyntaxOrAccessError):
            kind = ProgrammingError
        raise kind(what, None, DriverError(exc)) from exc


class DriverError(Exception):
    """An asyncpg error as the text of a mapped SQLAlchemy error: its message and
    SQLSTATE without its DETAIL, which quotes the row's values (a key that clashed,
    a failing row in full with its payload); SQLAlchemy's own asyncpg adapter keeps
    only the message too, so with ``hide_parameters`` no value reaches a log or a
    message's reason."""

    def __init__(self, exc: Exception) -> None:
        message = str(exc.args[0]) if exc.args else ""
        super().__init__(f"{type(exc).__name__}: {message}")
        self.sqlstate: str | None = getattr(exc, "sqlstate", None)


async def _record(
    pg: Any,
    attempts: Sequence[dict[str, Any]],
    complete: Sequence[tuple[ClaimedJob, Sequence[str]]],
    now: datetime,
    parked: Sequence[tuple[ClaimedJob, Sequence[str]]],
) -> Delivered:
    await insert(pg, DeliveryAttempt, attempts)
    done = Delivered()
    if not complete and not parked:
        return done
    worker = (complete or parked)[0][0].worker
    rows = await pg.fetch(
        "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL, updated_at = $1 "
        "WHERE id = ANY($2) AND locked_by = $3 AND state = 'running' RETURNING id",
        now,
        [job.id for job, _ in (*complete, *parked)],
        worker,
    )
    done.ours.update(row[0] for row in rows)
    parked = [(job, docs) for job, docs in parked if job.id in done.ours]
    if parked:
        await pg.execute(
            "UPDATE documents SET status = 'available', delivered_at = NULL, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ANY($1)",
            [d for _, docs in parked for d in docs],
        )
        await pg.executemany(
            _EVENT,
            [
                (job.message_id, now, "available_in_feed", json_text({"documents": len(docs)}))
                for job, docs in parked
            ],
        )
    complete = [(job, docs) for job, docs in complete if job.id in done.ours]
    if not complete:
        return done
    await pg.execute(
        "UPDATE documents SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, "
        "last_error = NULL WHERE id = ANY($2)",
        now,
        [d for _, docs in complete for d in docs],
    )
    message_ids = [job.message_id for job, _ in complete]
    for row in await pg.fetch(
        "UPDATE outbox SET status = 'pending' WHERE message_id = ANY($1) AND status = 'held' "
        "RETURNING message_id",
        message_ids,
    ):
        done.released[row[0]] = done.released.get(row[0], 0) + 1
    status = await pg.execute(
        "UPDATE messages SET status = $1, updated_at = $2 WHERE id = ANY($3) AND status = ANY($4)",
        str(InboundStatus.ACKNOWLEDGED),
        now,
        message_ids,
        _SOURCES,
    )
    if int(status.rsplit(" ", 1)[-1]) != len(message_ids):
        raise IllegalTransition(INBOUND.name, None, InboundStatus.ACKNOWLEDGED, ", ".join(message_ids))
    events: list[tuple[str, datetime, str, str]] = []
    for job, docs in complete:
        events.append((job.message_id, now, "delivered", json_text({"documents": len(docs)})))
        released = done.released.get(job.message_id, 0)
        events.append((job.message_id, now, "acknowledged", json_text({"acks_released": released})))
    await pg.executemany(_EVENT, events)
    return done


async def driver(session: AsyncSession) -> Any | None:
    """The asyncpg connection under ``session`` on PostgreSQL, once its transaction
    has begun (SQLAlchemy begins it at the session's first statement); else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    conn = await session.connection()
    pg: Any = (await conn.get_raw_connection()).driver_connection
    return pg if pg.is_in_transaction() else None


def _identity(value: Any) -> Any:
    return value


def _json(value: Any) -> str:
    return json_text(value)


@cache
def _encoders(table: Table, columns: tuple[str, ...]) -> tuple[Callable[[Any], Any], ...]:
    """Per column, the value as the engine binds it: JSON as its text (the asyncpg
    codec for ``json`` takes text), the rest as given (timestamps are aware: a
    ``timestamptz`` stores the instant UTCDateTime's bind would)."""
    return tuple(_json if isinstance(table.c[c].type, JSON) else _identity for c in columns)


@cache
def _defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """The Python-side scalar defaults SQLAlchemy's ``insert`` fills in for absent keys."""
    return tuple(
        (c.name, c.default.arg)  # type: ignore[attr-defined]
        for c in table.columns
        if c.default is not None and c.default.is_scalar
    )


async def insert(pg: Any, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """SQLAlchemy's ``insert(model)`` with ``rows`` (dicts, as for it): one
    ``executemany`` per set of keys, absent columns with a default given it."""
    table = cast(Table, model.__table__)
    defaults = _defaults(table)
    full = ({**{name: value for name, value in defaults if name not in row}, **row} for row in rows)
    for columns, same in by_columns(full).items():
        encoders = tuple(zip(columns, _encoders(table, columns), strict=True))
        values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values})"
        async with _as_sqlalchemy(sql):
            await pg.executemany(sql, [tuple(enc(row[c]) for c, enc in encoders) for row in same])


async def update_by_id(
    pg: Any, model: type[Base], rows: Sequence[dict[str, Any]], *, status_in: Sequence[str]
) -> int:
    """SQLAlchemy's bulk ``update(model)`` by primary key ``id`` with ``rows``, each
    only while its ``status`` is one of ``status_in`` (the transition table's guard):
    one pipelined batch per set of columns (``fetchmany``: executemany's one round
    trip, with the ids it updated, which executemany does not report). Returns how
    many rows were updated."""
    table = cast(Table, model.__table__)
    updated = 0
    for columns, same in by_columns(rows, skip="id").items():
        encoders = tuple(zip((*columns, "id"), _encoders(table, (*columns, "id")), strict=True))
        sets = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, 1))
        at = len(columns) + 1
        sql = f"UPDATE {table.name} SET {sets} WHERE id = ${at} AND status = ANY(${at + 1}) RETURNING id"
        guard = list(status_in)
        async with _as_sqlalchemy(sql):
            found = await pg.fetchmany(sql, [(*(enc(row[c]) for c, enc in encoders), guard) for row in same])
        updated += len(found)
    return updated
