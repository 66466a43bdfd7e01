"""The translate write's plain statements for the session at hand: ``sqlite3`` in
SQLite's writer thread (gateway.db.lean_translate), asyncpg on PostgreSQL's session
connection (gateway.db.pg_translate). :func:`plain` gives None for every other
session (aiosqlite, or a SQLAlchemy without the asyncpg step pg_raw.driver needs),
whose callers keep their SQLAlchemy statement.

The callers (gateway.pipeline_rows, gateway.db.control_numbers, gateway.orders) make
each decision once for both databases: which statement runs, and which ORM read a
plain look may skip (seen interchanges, open order exceptions). The SQLite side
never suspends (the writer thread drives its coroutines to the end at once).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.db import lean_translate, pg_raw, pg_translate
from gateway.db.writer import lean_connection


@dataclass(frozen=True, slots=True)
class Plain:
    sqlite: sqlite3.Connection | None
    pg: Any

    async def message_ids_with(self, table: str, message_ids: Sequence[str], kinds: bool) -> set[str]:
        if self.sqlite is not None:
            return lean_translate.message_ids_with(self.sqlite, table, message_ids, kinds)
        return await pg_translate.message_ids_with(self.pg, table, message_ids, kinds)

    async def any_seen(self, keys: Sequence[tuple[str, str, str]]) -> bool:
        if self.sqlite is not None:
            return lean_translate.any_seen(self.sqlite, keys)
        return await pg_translate.any_seen(self.pg, keys)

    async def allocate(self, partner_id: str, kind: str, count: int) -> int:
        if self.sqlite is not None:
            return lean_translate.allocate(self.sqlite, partner_id, kind, count)
        return await pg_translate.allocate(self.pg, partner_id, kind, count)

    async def give_back(self, partner_id: str, kind: str, count: int) -> None:
        if self.sqlite is not None:
            lean_translate.give_back(self.sqlite, partner_id, kind, count)
        else:
            await pg_translate.give_back(self.pg, partner_id, kind, count)

    async def transports(self, message_ids: Sequence[str]) -> dict[str, str | None]:
        if self.sqlite is not None:
            return lean_translate.transports(self.sqlite, message_ids)
        return await pg_translate.transports(self.pg, message_ids)

    async def insert_keys(self, keys: Sequence[dict[str, Any]]) -> None:
        if self.sqlite is not None:
            lean_translate.insert_keys(self.sqlite, keys)
        elif keys:
            await pg_translate.insert_keys(self.pg, keys)

    async def lock_orders(self, rows: Sequence[dict[str, Any]]) -> None:
        if self.sqlite is not None:
            lean_translate.lock_orders(self.sqlite, rows)
        else:
            await pg_translate.lock_orders(self.pg, rows)

    async def linked(self, pairs: set[tuple[str, str]], known: dict[str, Any] | None) -> list[Any]:
        if self.sqlite is not None:
            return lean_translate.linked(self.sqlite, pairs, known)
        return await pg_translate.linked(self.pg, pairs, known)

    async def any_open_exception(self, partners: set[str], pos: set[str]) -> bool:
        if self.sqlite is not None:
            return lean_translate.any_open_exception(self.sqlite, partners, pos)
        return await pg_translate.any_open_exception(self.pg, partners, pos)

    async def update_orders(self, states: Sequence[dict[str, Any]], milestones: Sequence[str]) -> None:
        if self.sqlite is not None:
            lean_translate.update_orders(self.sqlite, states, milestones)
        else:
            await pg_translate.update_orders(self.pg, states, milestones)


async def plain(session: Any) -> Plain | None:
    """The plain statements of ``session``'s transaction (module doc), or None."""
    raw = lean_connection(session)
    if raw is not None:
        return Plain(raw, None)
    pg = await pg_raw.driver(session)
    return Plain(None, pg) if pg is not None else None
