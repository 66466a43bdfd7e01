"""Values a database refuses (SQLSTATE class 22, "data exception": too long, a NUL in
text, out of range): the same input must meet the same fate on SQLite and PostgreSQL.

- A partner's canonical document with a NUL in a string is refused at intake (422) on
  both: PostgreSQL stores no NUL in text, SQLite does, so it would have been
  translated on one and failed on the other.
- X12 with a NUL (an element, the ISA sender) is rejected or quarantined alike: the
  acknowledgment copies no NUL, the stored sender spells it ``\\x00``.
- Whatever still reaches PostgreSQL with such a value fails its message at once, with
  the SQLSTATE and the server's message as its reason (no values), whichever path
  wrote it (SQLAlchemy's asyncpg adapter raised a plain DBAPIError, which counted as
  the database being down and was retried max_attempts times; gateway.db.pg_raw
  raised DataError): the same value is refused every time, and a failed message is
  replayable once the cause is fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ACME_KEY, make_settings
from gwsamples import canonical_order, order_850
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gateway.app import DATABASE, PIPELINE, build_app
from gateway.db import pg_raw, schema
from gateway.db.engine import data_error, is_storage_error, open_database
from gateway.db.models import Job, Message, OutboxItem

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
            pg = await pg_raw.driver(session)
            with pytest.raises(DBAPIError) as through_asyncpg:
                await pg_raw.update_by_id(
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


async def test_x12_with_a_nul_meets_the_same_fate_on_both_databases(client: Any) -> None:
    """A NUL in an element: the set is rejected (invalid character) and the 997 is
    queued without it (an acknowledgment copies no NUL); in the ISA sender: the file
    is quarantined, the sender written ``\\x00``. PostgreSQL could store neither the
    997 nor the sender, and failed both messages."""
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    for body in (order_850("ACME", 5, po="PO\x00X"), order_850("AC\x00ME", 6)):
        resp = await client.post("/partners/acme/edi", data=body, headers=auth)
        assert resp.status == 202, await resp.text()
    await client.app[PIPELINE].run_until_idle()
    async with client.app[DATABASE].read() as conn:
        found = (await conn.execute(select(Message.status, Message.reason).order_by(Message.id))).all()
        acks = (await conn.execute(select(OutboxItem.kind, OutboxItem.payload))).all()
    assert [m.status for m in found] == ["failed", "quarantined"]
    assert "BEG03 code 6 (invalid character)" in found[0].reason
    assert found[1].reason == "ISA sender ZZ/AC\\x00ME is not an address of partner acme"
    [(kind, payload)] = acks
    assert kind == "997" and "AK4*3*324*6*POX-1~" in payload and "\x00" not in payload


async def test_the_pipeline_fails_a_message_whose_value_postgresql_refuses_at_once(
    aiohttp_client: Any, tmp_path: Any, partners_dir: Any, pg_database: tuple[str, str]
) -> None:
    """A value none of the checks before the database stops: here a partner hook (the
    operator's own code) puts a NUL in the PO number. One attempt, not max_attempts,
    and a reason that names the refusal."""
    (partners_dir / "acme" / "hooks.py").write_text(
        "def inbound(document, context):\n    document['document']['po_number'] = 'PO\\x00HOOK'\n"
    )
    settings = make_settings(tmp_path, partners_dir, pg_database[0])
    client = await aiohttp_client(build_app(settings))
    resp = await client.post(
        "/partners/acme/edi", data=order_850("ACME", 7), headers={"Authorization": f"Bearer {ACME_KEY}"}
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
