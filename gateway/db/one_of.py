"""``column IN (values)`` spelled so that PostgreSQL sees one statement text
whatever the number of values.

SQLAlchemy renders ``column.in_(values)`` as ``IN ($1, $2, ...)``: one statement
text per list length. The asyncpg dialect prepares every new text (a round trip,
and a parse and plan in the server) and keeps 100 per connection, so the pipeline's
batch look-ups and updates, whose lists follow the batch size, missed that cache
about as often as they hit it (docs/performance.md, "PostgreSQL's pipeline path").
On PostgreSQL :func:`one_of` is ``column = ANY($1)`` with the values as one array
parameter: one text, prepared once per connection. SQLite keeps ``IN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(where: Any, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values`` for the database of ``where`` (a session or a connection)."""
    bind = where.get_bind() if hasattr(where, "get_bind") else where
    listed = list(values)
    if bind.dialect.name != "postgresql":
        result: ColumnElement[bool] = column.in_(listed)
        return result
    array = any_(bindparam(None, listed, type_=ARRAY(column.type)))
    found: ColumnElement[bool] = column == array
    return found
