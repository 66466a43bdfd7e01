"""A translate batch whose status guard trips (a message moved since it was read: a
replay, another process, a bug) is rolled back and written one message at a time.
What the one-by-one writes must leave: every other message of the batch translated
and delivered once, the moved message as its mover left it, and no job held forever.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import test_service_pipeline
from gwsamples import order_850
from sqlalchemy import select, update
from test_service_pipeline import RecordingErp, load, post, settle

from gateway.app import DATABASE, PIPELINE
from gateway.db.models import Job, Message

erp, overrides = test_service_pipeline.erp, test_service_pipeline.overrides  # its fixtures (RecordingErp)


async def test_a_message_moved_under_its_batch_holds_back_nobody(
    client: Any, erp: RecordingErp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await post(client, order_850("ACME", 500 + n, po=f"PO-F{n}")) for n in range(3)]
    moved = ids[1]
    pipeline = client.app[PIPELINE]
    db = client.app[DATABASE]
    write = pipeline._write_translated

    async def moved_first(ready: Any, now: Any) -> Any:
        # Another writer moves one message of the batch between its read and its write
        # (its job still this worker's): the batch's guarded status update trips.
        async with db.write() as conn:
            await conn.execute(update(Message).where(Message.id == moved).values(status="quarantined"))
        monkeypatch.setattr(pipeline, "_write_translated", write)
        return await write(ready, now)

    monkeypatch.setattr(pipeline, "_write_translated", moved_first)
    await settle(client)
    for message_id in (ids[0], ids[2]):
        message, events, documents, _ = await load(client, message_id)
        assert message.status == "acknowledged", (message_id, message.reason)
        assert events.count("translated") == 1 and len(documents) == 1
    message, events, documents, outbox = await load(client, moved)
    assert message.status == "quarantined"  # as its mover left it: not overwritten with "failed"
    assert documents == [] and outbox == [] and "translated" not in events
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job.message_id, Job.step, Job.state, Job.last_error))).all()
    assert not [j for j in jobs if j.state in ("ready", "running")]
    [abandoned] = [j for j in jobs if j.message_id == moved]
    assert abandoned.step == "translate" and abandoned.state == "failed"
    assert "not a legal transition" in (abandoned.last_error or "")
    assert sorted(d.business_number for d in erp.deliveries) == ["PO-F0-1", "PO-F2-1"]


async def test_a_message_moved_under_its_deliver_batch_strands_nobody(
    client: Any, erp: RecordingErp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deliver batch's record trips on the same guard: each of its jobs is failed
    (its message with it) where the message may still move there, and the moved one's
    job alone ends; before, that one's failure raised and the batch's later jobs were
    held (leased, renewed) for as long as the process lived."""
    ids = [await post(client, order_850("ACME", 510 + n, po=f"PO-D{n}")) for n in range(3)]
    moved = ids[1]
    pipeline = client.app[PIPELINE]
    db = client.app[DATABASE]
    deliver = pipeline.sink.deliver_batch

    async def moved_meanwhile(records: Any) -> Any:
        results = await deliver(records)
        async with db.write() as conn:
            await conn.execute(update(Message).where(Message.id == moved).values(status="quarantined"))
        monkeypatch.setattr(pipeline.sink, "deliver_batch", deliver)
        return results

    monkeypatch.setattr(pipeline.sink, "deliver_batch", moved_meanwhile)
    await settle(client)
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job.message_id, Job.step, Job.state))).all()
        statuses = dict((await conn.execute(select(Message.id, Message.status))).all())
    assert not [j for j in jobs if j.state in ("ready", "running")]
    assert statuses[moved] == "quarantined"
    assert {j.state for j in jobs if j.message_id == moved and j.step == "deliver"} == {"failed"}
    assert statuses[ids[0]] == statuses[ids[2]] == "failed"  # recorded nothing: replayable
