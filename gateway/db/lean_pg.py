"""The intake's batch on PostgreSQL as one statement: every row of an accept batch
(small payloads' ``raw_journal`` rows, messages, ``received`` events, first jobs)
inserted by data-modifying CTEs over ``unnest`` of one array per column.

Through SQLAlchemy's Core ``insert`` a batch was four or five statements, each an
``executemany`` of asyncpg (a bind and an execute per row) with SQLAlchemy's
compilation and per-row parameter processing on the event loop: on PostgreSQL the
event loop spent about twice the CPU per accept that it spends on SQLite, where the
same rows go through gateway.db.writer. Here a batch is one round trip with one
parameter per column, whatever its size.

The statement runs through the caller's SQLAlchemy connection (``exec_driver_sql``),
so it is part of the caller's transaction and its errors are SQLAlchemy's classes
(IntegrityError on an idempotency-key clash, as before). Values are encoded as the
engine stores them: timestamps timezone-aware, JSON columns as the engine's JSON text.
The column types come from gateway.db.models; a column added there with no value
here is inserted as NULL, as SQLAlchemy's ``insert`` with those dicts would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.engine import Database
from gateway.db.models import Base, Job, JournaledPayload, Message, MessageEvent
from gateway.db.notify import CHANNEL
from gateway.db.writer import json_text

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_TYPMOD = re.compile(r"\([^)]*\)")


@cache
def _casts(model: type[Base], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns' types without their modifiers (``VARCHAR``, not ``VARCHAR(255)``): an
    explicit cast to ``VARCHAR(255)`` cuts a longer value silently, where the INSERT's
    own conversion to the column's type refuses it, as it does for SQLAlchemy's insert."""
    table = cast(Table, model.__table__)
    return tuple(_TYPMOD.sub("", table.c[name].type.compile(dialect=_DIALECT)) for name in columns)


@cache
def _json_columns(model: type[Base], columns: tuple[str, ...]) -> frozenset[str]:
    table = cast(Table, model.__table__)
    return frozenset(name for name in columns if isinstance(table.c[name].type, JSON))


class _Params:
    """Positional parameters ($1, $2...) of the statement being built."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, sql_type: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{sql_type}"


def _unnest(model: type[Base], rows: Sequence[dict[str, Any]], params: _Params) -> str:
    """``INSERT INTO t (cols) SELECT * FROM unnest($1::type[], ...)`` for ``rows``."""
    columns = tuple(rows[0])
    jsons = _json_columns(model, columns)
    arrays = []
    for name, sql_type in zip(columns, _casts(model, columns), strict=True):
        if name in jsons:
            # As text (the engine's codec for json takes text), cast per element by the
            # statement; None is the JSON null, as SQLAlchemy stores it.
            arrays.append(params.add([json_text(row.get(name)) for row in rows], "TEXT[]"))
        else:
            arrays.append(params.add([row.get(name) for row in rows], f"{sql_type}[]"))
    table = cast(Table, model.__table__).name
    selected = ", ".join(f"{name}::JSON" if name in jsons else name for name in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected} "
        f"FROM unnest({', '.join(arrays)}) AS u({', '.join(columns)})"
    )


async def accept_batch(
    db: Database,
    journaled: Sequence[dict[str, Any]],
    messages: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    jobs: Sequence[dict[str, Any]],
    *,
    returning: bool,
    notify: bool,
) -> dict[str, int]:
    """Insert one accept batch as one statement in a transaction of its own (module
    doc), committed when this returns; with ``notify``, ``NOTIFY gateway_jobs`` is part
    of it (delivered at its commit). With ``returning``, the new jobs' ids by message
    id, else an empty dict."""
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await insert_accept_batch(
            conn, journaled, messages, events, jobs, returning=returning, notify=notify
        )


async def insert_accept_batch(
    conn: AsyncConnection,
    journaled: Sequence[dict[str, Any]],
    messages: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    jobs: Sequence[dict[str, Any]],
    *,
    returning: bool,
    notify: bool = False,
) -> dict[str, int]:
    """The statement of :func:`accept_batch`, in ``conn``'s transaction if it has one."""
    params = _Params()
    parts: list[str] = []
    if journaled:
        # One process's batch: one store, one writer (gateway.raw_journal).
        # Unbounded casts, as in _casts: a too long value is refused, not cut.
        store = params.add(journaled[0]["store"], "VARCHAR")
        writer = params.add(journaled[0]["writer"], "VARCHAR")
        shas = params.add([r["sha256"] for r in journaled], "VARCHAR[]")
        datas = params.add([r["data"] for r in journaled], "BYTEA[]")
        parts.append(
            f"INSERT INTO {JournaledPayload.__tablename__} (store, writer, sha256, data) "
            f"SELECT {store}, {writer}, s, d FROM unnest({shas}, {datas}) AS u(s, d)"
        )
    parts.append(_unnest(Message, messages, params))
    parts.append(_unnest(MessageEvent, events, params))
    # The rows of all sub-statements are checked against their foreign keys when the
    # whole statement ends, so events and jobs may name messages of a sibling.
    last = _unnest(Job, jobs, params)
    ctes = [f"w{n} AS ({sql})" for n, sql in enumerate(parts)]
    if notify:
        # Evaluated once (MATERIALIZED) and joined to the jobs' rows, so it runs exactly
        # when they are inserted; PostgreSQL delivers it at the commit.
        ctes.append(f"wake AS MATERIALIZED (SELECT pg_notify({params.add(CHANNEL, 'TEXT')}, ''))")
        last += " CROSS JOIN wake"
    if returning:
        last += " RETURNING id, message_id"
    result = await conn.exec_driver_sql(f"WITH {', '.join(ctes)} {last}", tuple(params.values))
    if not returning:
        return {}
    return {message_id: job_id for job_id, message_id in cast(list[tuple[int, str]], result.all())}
