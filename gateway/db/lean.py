"""Plain ``sqlite3`` statements for the lean write path (gateway.db.writer): rows of
the SQLAlchemy tables inserted and updated with ``executemany``, every value encoded
exactly as SQLAlchemy would store it (timestamps as UTC text, JSON columns as JSON
text, ``None`` in a JSON column as ``null``), so the two paths share the tables.

The functions run in the writer thread inside its transaction; they never commit.
The table definitions stay in gateway.db.models (columns are looked up there, once).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import JSON, Table

from gateway.db.models import Base, UTCDateTime
from gateway.db.writer import json_text, ts


def _identity(value: Any) -> Any:
    return value


@cache
def _encoders(table: Table, columns: tuple[str, ...]) -> tuple[Callable[[Any], Any], ...]:
    encoders: list[Callable[[Any], Any]] = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):
            encoders.append(json_text)
        elif isinstance(kind, UTCDateTime):
            encoders.append(ts)
        else:
            encoders.append(_identity)
    return tuple(encoders)


def encoders(table: Table, columns: tuple[str, ...]) -> tuple[Callable[[Any], Any], ...]:
    """Per column of ``table``, the function that encodes a value as SQLAlchemy stores it."""
    return _encoders(table, columns)


def encode(table: Table, columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """``rows`` as parameter tuples in ``columns`` order, encoded for ``table``."""
    encoders = _encoders(table, columns)
    pairs = tuple(zip(columns, encoders, strict=True))
    return [tuple(enc(row.get(name)) for name, enc in pairs) for row in rows]


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def by_columns(
    rows: Iterable[dict[str, Any]], skip: str | None = None
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """``rows`` grouped by the keys they name (less ``skip``): one ``executemany`` per
    group, since rows need not all name the same columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(k for k in row if k != skip), []).append(row)
    return groups


def insert(conn: sqlite3.Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, as for SQLAlchemy's ``insert``)."""
    table = table_of(model)
    for columns, same in by_columns(rows).items():
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})"
        conn.executemany(sql, encode(table, columns, same))


def update_by_id(
    conn: sqlite3.Connection, model: type[Base], rows: Sequence[dict[str, Any]], *, status_in: Sequence[str]
) -> int:
    """Update rows by primary key ``id`` (dicts with ``id`` and the columns to set, as
    for SQLAlchemy's bulk ``update``), each only while its ``status`` is one of
    ``status_in`` (the transition table's guard): one ``executemany`` per set of
    columns. Returns how many rows were updated."""
    table = table_of(model)
    guard = f"status IN ({placeholders(len(status_in))})"
    updated = 0
    for columns, same in by_columns(rows, skip="id").items():
        sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ? AND {guard}"
        values = [(*row, *status_in) for row in encode(table, (*columns, "id"), same)]
        updated += conn.executemany(sql, values).rowcount
    return updated


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """``values`` in slices small enough for SQLite's bound-parameter limit."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
