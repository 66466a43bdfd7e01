"""gateway.db.one_of: a look-up by a list of values is one statement text on
PostgreSQL whatever the list's length (so the driver prepares it once), and finds
the same rows as ``IN`` on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from gateway.db import schema
from gateway.db.engine import Database, open_database
from gateway.db.models import ControlNumber
from gateway.db.one_of import one_of


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        found: str = request.getfixturevalue("pg_database")[0]
        return found
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = open_database(url)
    await schema.upgrade(database)
    yield database
    await database.close()


async def test_one_statement_text_for_every_length_and_the_same_rows_as_in(db: Database) -> None:
    texts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "control_numbers" in statement and statement.lstrip().upper().startswith("SELECT"):
            texts.append(statement)

    async with db.write() as conn:
        await conn.execute(
            insert(ControlNumber),
            [{"partner_id": f"p{n}", "kind": "interchange", "last_value": n} for n in range(5)],
        )
    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.read() as conn:
            for count in range(1, 5):
                wanted = [f"p{n}" for n in range(count)] + ["nobody"]
                found = await conn.execute(
                    select(ControlNumber.last_value).where(one_of(conn, ControlNumber.partner_id, wanted))
                )
                assert sorted(found.scalars()) == list(range(count))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(texts) == 4
    if db.dialect == "postgresql":
        assert len(set(texts)) == 1, texts  # with IN: one text (and one prepare) per length
