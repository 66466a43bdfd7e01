"""PostgreSQL's raw asyncpg statements beside SQLAlchemy: the asyncpg connection
under a session (inside its transaction), asyncpg's errors as SQLAlchemy's classes,
and SQLAlchemy's bulk ``insert`` / ``update`` by id as ``executemany``. Used by
gateway.db.pg_steps (the delivered record), gateway.db.pg_translate and the
translate write's bulk rows in gateway.pipeline_rows (decisions 0024, 0028).

Values are the ones SQLAlchemy binds: timestamps timezone-aware (a ``timestamptz``
stores the instant), JSON columns as the engine's JSON text (its asyncpg codec for
``json`` takes text). asyncpg's errors are raised as the SQLAlchemy classes the
engine would have raised (IntegrityError, DataError, ProgrammingError, else
OperationalError) without the server's DETAIL, so gateway.db.engine.is_storage_error
and the pipeline's retry treat them as before and no row value reaches a log.
Never used on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, cast

from sqlalchemy import JSON, Table
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.lean import by_columns
from gateway.db.models import Base
from gateway.db.writer import json_text


@asynccontextmanager
async def as_sqlalchemy(what: str) -> AsyncIterator[None]:
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


async def driver(session: AsyncSession) -> Any | None:
    """The asyncpg connection under ``session`` on PostgreSQL, inside the session's
    transaction; else None. SQLAlchemy's asyncpg adapter begins that transaction only
    at the session's first statement: when none has run yet, the adapter is asked to
    begin it here, as it would itself (None, and the caller's SQLAlchemy statement,
    if this SQLAlchemy has no such step). Kept per transaction in ``session.info``."""
    if not isinstance(session, AsyncSession) or session.get_bind().dialect.name != "postgresql":
        return None
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_DRIVER)
    if held is not None and held[0] is transaction and held[1].is_in_transaction():
        return held[1]
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    pg: Any = fairy.driver_connection
    if not pg.is_in_transaction():
        begin = getattr(fairy.dbapi_connection, "_start_transaction", None)
        if begin is None or getattr(fairy.dbapi_connection, "_transaction", False) is not None:
            return None
        try:
            await begin()
        except Exception as exc:  # the adapter's own error classes: a storage error, as SQLAlchemy's would be
            raise OperationalError("BEGIN", None, DriverError(exc)) from exc
    if not pg.is_in_transaction():
        return None
    session.info[_DRIVER] = (session.sync_session.get_transaction(), pg)
    return pg


_DRIVER = "gateway.db.pg_raw.driver"


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
        async with as_sqlalchemy(sql):
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
        async with as_sqlalchemy(sql):
            found = await pg.fetchmany(sql, [(*(enc(row[c]) for c, enc in encoders), guard) for row in same])
        updated += len(found)
    return updated
