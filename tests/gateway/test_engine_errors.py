"""A failed statement's error text never carries its parameters (gateway.db.engine):
they are partners' payloads (on PostgreSQL a whole accept batch's), and the error is
logged with its text on the 500/503 paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.db import schema
from gateway.db.engine import open_database

SECRET_PAYLOAD = "ISA*00*PAYLOAD-THAT-MUST-NOT-BE-LOGGED"


async def test_a_failed_statement_s_error_leaves_out_its_parameters(
    tmp_path: Path, database_url: str | None
) -> None:
    db = open_database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    try:
        await schema.upgrade(db)
        with pytest.raises(DBAPIError) as failed:
            async with db.write() as conn:
                # the same primary key twice: the second insert fails
                for _ in range(2):
                    await conn.execute(
                        text(
                            "INSERT INTO raw_journal (id, sha256, data, store, writer) VALUES (7, :s, :d, 's', 'w')"
                        ),
                        {"s": SECRET_PAYLOAD, "d": SECRET_PAYLOAD.encode()},
                    )
        assert "raw_journal" in str(failed.value)  # the statement is still named
        assert SECRET_PAYLOAD not in str(failed.value)
        assert "hidden due to hide_parameters" in str(failed.value)
    finally:
        await db.close()
