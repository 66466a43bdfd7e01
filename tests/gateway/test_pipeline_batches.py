"""The pipeline runs claimed jobs in batches (one claim commit, one outcome commit):
what must not change when several messages share a batch. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import test_service_pipeline
from conftest import GLOBEX_KEY
from gwsamples import order_850
from sqlalchemy import select
from test_service_pipeline import RecordingErp, load, post, settle

from gateway.app import DATABASE, PIPELINE, Overrides
from gateway.db.models import ControlNumber, Job
from gateway.erp import OrderedSink
from gateway.ports import DeliveryResult, DocumentRecord

erp, overrides = test_service_pipeline.erp, test_service_pipeline.overrides  # its fixtures (RecordingErp)


async def test_one_claim_runs_a_batch_and_numbers_stay_consecutive(client: Any, erp: RecordingErp) -> None:
    ids = [await post(client, order_850("ACME", 400 + n, po=f"PO-B{n}")) for n in range(5)]
    pipeline = client.app[PIPELINE]
    # One claim: all five translated in one commit, then delivered and acknowledged by
    # the same worker (the deliver jobs are inserted already claimed: no second claim).
    assert await pipeline.run_one()
    assert not await pipeline.run_one()  # nothing left to claim
    for message_id in ids:
        message, events, _, _ = await load(client, message_id)
        assert message.status == "acknowledged"
        assert events == ["received", "parsed", "ack_issued", "translated", "delivered", "acknowledged"]
    # Control numbers: in message order, no gaps, and the counter says exactly 5 were used.
    assert [(await load(client, i))[3][0].interchange_control for i in ids] == [1, 2, 3, 4, 5]
    async with client.app[DATABASE].read() as conn:
        used = (
            await conn.execute(
                select(ControlNumber.last_value).where(
                    ControlNumber.partner_id == "acme", ControlNumber.kind == "interchange"
                )
            )
        ).scalar_one()
        steps = (await conn.execute(select(Job.step).where(Job.message_id == ids[0]))).scalars().all()
    assert used == 5
    assert sorted(steps) == ["deliver", "translate"]  # acknowledged inside the deliver commit
    assert [d.canonical["document"]["po_number"] for d in erp.deliveries] == [f"PO-B{n}-1" for n in range(5)]


async def test_same_interchange_twice_in_one_batch_is_a_duplicate(client: Any, erp: RecordingErp) -> None:
    first = await post(client, order_850("GLOBEX", 410), "globex", GLOBEX_KEY)
    again = await post(client, order_850("GLOBEX", 410), "globex", GLOBEX_KEY)
    await settle(client)
    assert (await load(client, first))[0].status == "acknowledged"
    message, events, documents, outbox = await load(client, again)
    assert message.status == "duplicate" and first in message.reason
    assert "duplicate_interchange" in events and documents == []
    assert len(erp.deliveries) == 1
    assert [o.kind for o in outbox] == ["TA1"]


class HalfBrokenErp(OrderedSink):
    """Refuses the documents of one purchase order (not transient), takes the rest."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.deliveries: list[DocumentRecord] = []

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        if document.business_number == self.refuse:
            return DeliveryResult(ok=False, transient=False, detail="ERP says 422")
        self.deliveries.append(document)
        return DeliveryResult(ok=True)


async def test_one_refused_message_does_not_hold_back_its_batch(aiohttp_client: Any, settings: Any) -> None:
    from gateway.app import build_app

    refusing = HalfBrokenErp("PO-R1-1")
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=refusing)))
    ids = [await post(client, order_850("ACME", 420 + n, po=f"PO-R{n}")) for n in range(3)]
    await settle(client)
    statuses = [(await load(client, i))[0] for i in ids]
    assert [m.status for m in statuses] == ["acknowledged", "failed", "acknowledged"]
    assert "ERP refused" in statuses[1].reason
    assert sorted(d.business_number for d in refusing.deliveries) == ["PO-R0-1", "PO-R2-1"]
    assert [o.status for o in (await load(client, ids[1]))[3]] == [
        "pending"
    ]  # a failed message's ack goes out


async def test_sqlite_batches_are_written_by_the_lean_writer(
    client: Any, erp: RecordingErp, caplog: pytest.LogCaptureFixture
) -> None:
    """On SQLite the claim, the translated batch and the delivered batch are each one
    transaction of the writer thread (gateway.db.writer), not the one-by-one fallback."""
    db = client.app[DATABASE]
    if db.writer is None:
        pytest.skip("PostgreSQL writes through the engine")
    ids = [await post(client, order_850("ACME", 420 + n, po=f"PO-L{n}")) for n in range(4)]
    before = db.writer.transactions
    with caplog.at_level("INFO", logger="gateway.pipeline"):
        assert await client.app[PIPELINE].run_one()
    assert "one by one" not in caplog.text
    assert db.writer.transactions - before == 3  # claim, translations, deliveries
    for message_id in ids:
        message, events, _, outbox = await load(client, message_id)
        assert message.status == "acknowledged"
        assert events == ["received", "parsed", "ack_issued", "translated", "delivered", "acknowledged"]
        assert [o.status for o in outbox] == ["pending"]  # the held 997 released with the delivery
    assert len(erp.deliveries) == 4


async def test_sqlite_feed_batches_are_parked_by_the_lean_writer(aiohttp_client: Any, settings: Any) -> None:
    """Feed mode on SQLite: a batch whose documents the sink parks is recorded in one
    writer-thread transaction too (it went through the per-message ORM path on
    aiosqlite, holding the write gate ~90 ms per batch while the intake waited), with
    the rows that path wrote: documents ``available`` after one attempt, jobs done,
    one ``available_in_feed`` event, the message still ``translated`` and its 997 held."""
    from gateway.app import build_app
    from gateway.erp import FeedParkingSink

    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=FeedParkingSink())))
    db = client.app[DATABASE]
    if db.writer is None:
        pytest.skip("PostgreSQL writes through the engine")
    ids = [await post(client, order_850("ACME", 430 + n, po=f"PO-F{n}")) for n in range(3)]
    before = db.writer.transactions
    assert await client.app[PIPELINE].run_one()
    assert db.writer.transactions - before == 3  # claim, translations, parked deliveries
    for message_id in ids:
        message, events, documents, outbox = await load(client, message_id)
        assert message.status == "translated"
        assert events == ["received", "parsed", "ack_issued", "translated", "available_in_feed"]
        assert [(d.status, d.attempts, d.delivered_at, d.last_error) for d in documents] == [
            ("available", 1, None, None)
        ]
        assert [o.status for o in outbox] == ["held"]  # released when the ERP confirms
    async with db.read() as conn:
        states = (await conn.execute(select(Job.state).where(Job.message_id.in_(ids)))).scalars().all()
    assert sorted(states) == ["done"] * 6
