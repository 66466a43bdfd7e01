"""Control numbers we write (ISA13, GS06, ST02), allocated atomically per partner.

``allocate`` reserves ``count`` consecutive numbers with one upsert ``... RETURNING``
inside the caller's transaction, so two workers (or two processes on PostgreSQL)
never hand out the same number, and a rolled-back transaction gives its numbers
back. Numbers run from 1 to 999999999 and wrap to 1 (ISA13 has nine digits).
Never read the counter and write it back in two statements.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import ControlNumber
from gateway.db.plain import plain

MAX_CONTROL = 999_999_999
KINDS = frozenset({"interchange", "group", "set"})


async def allocate(session: AsyncSession, partner_id: str, kind: str, count: int = 1) -> list[int]:
    """``count`` fresh control numbers of ``kind`` for ``partner_id``, in order."""
    if kind not in KINDS:
        raise ValueError(f"unknown control number kind {kind!r}")
    if count < 1:
        return []
    raw = await plain(session)
    if raw is not None:  # SQLite's writer thread, PostgreSQL's asyncpg: the same upsert, plain
        return _numbers(await raw.allocate(partner_id, kind, count), count)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One upsert: a new counter starts at ``count``, an existing one moves on by it,
    # under its row lock (one round trip, not an insert-if-missing then an update).
    stmt = insert(ControlNumber).values(partner_id=partner_id, kind=kind, last_value=count)
    upsert = stmt.on_conflict_do_update(
        index_elements=["partner_id", "kind"], set_={"last_value": ControlNumber.last_value + count}
    )
    last = (await session.execute(upsert.returning(ControlNumber.last_value))).scalar_one()
    return _numbers(last, count)


def _numbers(last: int, count: int) -> list[int]:
    first = last - count + 1
    return [(n - 1) % MAX_CONTROL + 1 for n in range(first, last + 1)]
