"""Values a database refuses (SQLSTATE class 22, "data exception": too long, a NUL in
text, out of range): the same input must meet the same fate on SQLite and PostgreSQL.

- A partner's canonical document with a NUL in a string is refused at intake (422) on
  both: PostgreSQL stores no NUL in text, SQLite does, so it would have been
  translated on one and failed on the other.
- Whatever still reaches PostgreSQL with such a value fails its message at once, with
  the SQLSTATE and the server's message as its reason (no values), whichever path
  wrote it (SQLAlchemy's asyncpg adapter raised a plain DBAPIError, which counted as
  the database being down and was retried max_attempts times; gateway.db.pg_steps
  raised DataError): the same value is refused every time, and a failed message is
  replayable once the cause is fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ACME_KEY, make_settings
from gwsamples import canonical_order
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gateway.app import DATABASE, PIPELINE, build_app
from gateway.db import pg_steps, schema
from gateway.db.engine import data_error, is_storage_error, open_database
from gateway.db.models import Job, Message

JSON_ACME = {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"}


async def test_a_canonical_document_with_a_nul_is_refused_at_intake(client: Any) -> None:
    for po in ("PO\x00NUL", "PO-1"):
        order = canonical_order(po)
        order["document"]["lines"][0]["product_ids"] = {"vendor_item": "W\x00" if po == "PO-1" else "W"}
        resp = await client.post(
            "/partners/acme/documents", data=json.dumps(order).encode(), headers=JSON_ACME
        )
        assert resp.status == 422, await resp.text()
        assert "NUL" in (await resp.json())["error"]["message"]
    # A backslash and "u0000" as text is no NUL: accepted.
    resp = await client.post(
        "/partners/acme/documents", data=json.dumps(canonical_order("PO\\u0000")).encode(), headers=JSON_ACME
    )
    assert resp.status == 202, await resp.text()
    async with client.app[DATABASE].read() as conn:
        assert (await conn.execute(select(Message.id))).scalars().all() == [(await resp.json())["message_id"]]


async def test_a_refused_value_is_a_data_error_on_both_postgresql_paths(pg_database: tuple[str, str]) -> None:
    db = open_database(pg_database[0])
    try:
        await schema.upgrade(db)
        caught: list[BaseException] = []
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError) as through_sqlalchemy:
                await conn.execute(text("SELECT CAST(:v AS VARCHAR(3))"), {"v": "a\x00b"})
            caught.append(through_sqlalchemy.value)
        async with db.begin() as session:
            await session.execute(text("SELECT 1"))
            pg = await pg_steps.driver(session)
            with pytest.raises(DBAPIError) as through_asyncpg:
                await pg_steps.update_by_id(
                    pg, Message, [{"id": "x", "reason": "a\x00b"}], status_in=["received"]
                )
            caught.append(through_asyncpg.value)
        for exc in caught:
            refused = data_error(exc)
            assert refused is not None and refused.startswith("SQLSTATE 22021: "), repr(exc)
            assert "0x00" in refused and "\n" not in refused and "SELECT" not in refused
        assert is_storage_error(caught[0])  # why the pipeline asks data_error first
    finally:
        await db.close()


async def test_the_pipeline_fails_a_message_whose_value_postgresql_refuses_at_once(
    aiohttp_client: Any, tmp_path: Any, partners_dir: Any, pg_database: tuple[str, str]
) -> None:
    """An X12 sender id holding a NUL: on PostgreSQL the message's row cannot take it
    (SQLite quarantines the file: the sender is not the partner's). One attempt, not
    max_attempts, and a reason that names the refusal."""
    from gwsamples import order_850

    settings = make_settings(tmp_path, partners_dir, pg_database[0])
    client = await aiohttp_client(build_app(settings))
    resp = await client.post(
        "/partners/acme/edi", data=order_850("AC\x00ME", 7), headers={"Authorization": f"Bearer {ACME_KEY}"}
    )
    assert resp.status == 202, await resp.text()
    await client.app[PIPELINE].run_until_idle()
    async with client.app[DATABASE].read() as conn:
        message = (await conn.execute(select(Message.status, Message.reason))).one()
        attempts = (await conn.execute(select(Job.attempts).where(Job.step == "translate"))).scalar_one()
    assert message.status == "failed"
    assert message.reason.startswith(
        "translate failed: the database refused a value of this message (SQLSTATE 22021"
    )
    assert attempts == 1
