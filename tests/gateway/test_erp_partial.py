"""One refused document must not block the rest of its interchange. Against the real
fake ERP on loopback, on SQLite and PostgreSQL: a 4xx dead-letters that document
alone and the next ones are delivered (message ``partly_delivered``, 997 released);
replaying the dead letter delivers only what is missing, under the same keys; a
transient failure stops the message in order; retries given up stop it too."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth, make_settings
from fakes.erp_server import FakeErp
from gwsamples import order_850
from sqlalchemy import select
from test_erp import SECRET, TOKEN, Clock

from gateway.app import DATABASE, PIPELINE, Overrides, build_app
from gateway.db.models import Document, Job, Message, MessageEvent, OutboxItem
from gateway.erp import OrderedSink
from gateway.ports import DeliveryResult, DocumentRecord

ERP = {
    "mode": "webhook",
    "secret": SECRET,
    "timeout_seconds": 0.5,
    "max_attempts": 4,
    "retry_base_seconds": 10,
    "retry_max_seconds": 60,
}


@pytest.fixture
async def fake_erp() -> AsyncIterator[FakeErp]:
    erp = FakeErp(secret=SECRET)
    await erp.start()
    yield erp
    await erp.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    database_url: str | None,
    clock: Clock,
    fake_erp: FakeErp,
) -> Any:
    async def make(sink: Any = None, **erp: Any) -> Any:
        settings = make_settings(
            tmp_path, partners_dir, database_url, erp={**ERP, "url": fake_erp.url, **erp}
        )
        return await aiohttp_client(build_app(settings, overrides=Overrides(sink=sink, clock=clock)))

    return make


async def post(client: Any, control: int, po: str, sets: int) -> str:
    body = order_850("ACME", control, po=po, sets=sets)
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def run(client: Any) -> None:
    await client.app[PIPELINE].run_until_idle()


async def state(client: Any, message_id: str) -> tuple[Any, list[Any], list[Any], list[str], list[Any]]:
    """The message, its documents (by seq), outbox items, event states and waiting jobs."""
    async with client.app[DATABASE].read() as conn:
        message = (await conn.execute(select(Message).where(Message.id == message_id))).one()
        docs = (
            await conn.execute(
                select(Document).where(Document.message_id == message_id).order_by(Document.seq)
            )
        ).all()
        outbox = (await conn.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).all()
        events = (
            await conn.execute(
                select(MessageEvent.state)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            )
        ).scalars()
        waiting = (
            await conn.execute(
                select(Job).where(Job.message_id == message_id, Job.state.in_(("ready", "running")))
            )
        ).all()
    return message, list(docs), list(outbox), list(events), list(waiting)


async def dead_letters(client: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/dead-letters", headers=TOKEN)
    assert resp.status == 200
    return list((await resp.json())["items"])


async def test_a_refusal_is_logged_with_message_document_partner_and_answer(
    gateway: Any, fake_erp: FakeErp, caplog: pytest.LogCaptureFixture
) -> None:
    client = await gateway()
    fake_erp.refuse("PO-7-1", 422, body='{"error": "unknown ship-to 0042", "trace": "' + "x" * 2000 + '"}')
    message_id = await post(client, 502, "PO-7", sets=2)
    with caplog.at_level(logging.WARNING, logger="gateway.pipeline"):
        await run(client)
    _message, (first, _second), *_ = await state(client, message_id)
    [record] = [r for r in caplog.records if r.name == "gateway.pipeline"]
    line = record.getMessage()
    assert record.levelno == logging.WARNING
    assert line.startswith(
        f"ERP refused document {first.id} (order PO-7-1) of message {message_id} from partner acme"
    )
    assert "HTTP 422" in line and "unknown ship-to 0042" in line and len(line) < 600


async def test_refused_document_is_dead_lettered_alone_and_replay_sends_only_it(
    gateway: Any, fake_erp: FakeErp
) -> None:
    client = await gateway()
    fake_erp.refuse("PO-1001-1", 422, body='{"error": "unknown ship-to 0042"}')
    message_id = await post(client, 501, "PO-1001", sets=2)
    await run(client)

    message, (first, second), [ack], events, waiting = await state(client, message_id)
    k1, k2 = first.idempotency_key, second.idempotency_key
    assert fake_erp.posted == [k1, k2]
    assert dict(fake_erp.accepted) == {k2: 1}
    assert message.status == "partly_delivered" and not waiting
    assert (message.reason or "").startswith("ERP refused 1 of 2 document(s): PO-1001-1 (HTTP 422: ")
    assert "unknown ship-to 0042" in message.reason
    assert (first.status, first.attempts) == ("pending", 1) and "unknown ship-to 0042" in first.last_error
    assert (second.status, second.attempts, second.last_error) == ("delivered", 1, None)
    assert ack.kind == "997" and ack.status == "pending"  # the X12 was fine: the 997 goes out
    assert events.count("dead_lettered") == 1 and events[-1] == "partly_delivered"
    [dead] = await dead_letters(client)
    assert (dead["id"], dead["message_id"], dead["business_number"]) == (first.id, message_id, "PO-1001-1")
    assert "unknown ship-to 0042" in dead["last_error"]
    listed = await (await client.get("/api/v1/messages?status=partly_delivered", headers=TOKEN)).json()
    assert [m["id"] for m in listed["items"]] == [message_id]
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_dead_letters{target="erp"} 1' in metrics

    fake_erp.recover()
    resp = await client.post(f"/api/v1/dead-letters/{first.id}/replay", headers=TOKEN)
    assert resp.status == 202
    await run(client)
    message, docs, outbox, events, waiting = await state(client, message_id)
    assert fake_erp.posted == [k1, k2, k1]  # the delivered one is not posted again
    assert dict(fake_erp.accepted) == {k1: 1, k2: 1}
    assert message.status == "acknowledged" and not waiting
    assert [d.status for d in docs] == ["delivered", "delivered"]
    assert [o.id for o in outbox] == [ack.id]  # no second 997
    assert await dead_letters(client) == []


async def test_transient_failure_keeps_the_order(gateway: Any, fake_erp: FakeErp, clock: Clock) -> None:
    client = await gateway()
    fake_erp.fail_next(1, 503)
    message_id = await post(client, 502, "PO-2001", sets=2)
    await run(client)
    message, (first, second), [ack], _, [job] = await state(client, message_id)
    k1, k2 = first.idempotency_key, second.idempotency_key
    assert fake_erp.posted == [k1]  # document 2 waits for document 1
    assert message.status == "translated" and job.step == "deliver"
    assert (second.status, second.attempts) == ("pending", 0)
    assert ack.status == "held"
    clock.advance(61)
    await run(client)
    message, _docs, [ack], _, waiting = await state(client, message_id)
    assert fake_erp.posted == [k1, k1, k2]
    assert dict(fake_erp.accepted) == {k1: 1, k2: 1}
    assert fake_erp.received_at[k1] < fake_erp.received_at[k2]
    assert message.status == "acknowledged" and ack.status == "pending" and not waiting


async def test_refusal_then_transient_resumes_after_the_refused_document(
    gateway: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    client = await gateway()
    fake_erp.refuse("PO-3001-1", 400, body="bad order")
    fake_erp.refuse("PO-3001-2", 503, times=1)
    message_id = await post(client, 503, "PO-3001", sets=3)
    await run(client)
    message, docs, [ack], events, [_job] = await state(client, message_id)
    k1, k2, k3 = (d.idempotency_key for d in docs)
    assert fake_erp.posted == [k1, k2] and message.status == "translated" and ack.status == "held"
    assert "dead_lettered" in events
    clock.advance(61)
    await run(client)
    message, docs, [ack], _, waiting = await state(client, message_id)
    assert fake_erp.posted == [k1, k2, k2, k3]  # the refused one is not posted again
    assert dict(fake_erp.accepted) == {k2: 1, k3: 1}
    assert message.status == "partly_delivered" and not waiting
    assert (message.reason or "").startswith(
        "ERP refused 1 of 3 document(s): PO-3001-1 (HTTP 400: bad order)"
    )
    assert [d.status for d in docs] == ["pending", "delivered", "delivered"]
    assert ack.status == "pending"
    assert [d["id"] for d in await dead_letters(client)] == [docs[0].id]


async def test_retries_given_up_stop_the_message_and_replay_sends_the_rest(
    gateway: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    client = await gateway(max_attempts=2)
    fake_erp.fail_always(500)
    message_id = await post(client, 504, "PO-4001", sets=2)
    await run(client)
    clock.advance(61)
    await run(client)
    message, (first, second), [ack], _, waiting = await state(client, message_id)
    k1, k2 = first.idempotency_key, second.idempotency_key
    assert fake_erp.posted == [k1, k1]  # document 2 is not sent into an ERP that is down
    assert message.status == "failed" and not waiting
    assert "gave up after 2 attempt(s)" in message.reason and "1 later document(s) not sent" in message.reason
    assert (second.status, second.attempts) == ("pending", 0)
    assert ack.status == "pending"
    assert [d["id"] for d in await dead_letters(client)] == [first.id]
    fake_erp.recover()
    assert (await client.post(f"/api/v1/dead-letters/{first.id}/replay", headers=TOKEN)).status == 202
    await run(client)
    message, docs, _, _, _ = await state(client, message_id)
    assert fake_erp.posted == [k1, k1, k1, k2]
    assert dict(fake_erp.accepted) == {k1: 1, k2: 1}
    assert message.status == "acknowledged" and [d.status for d in docs] == ["delivered", "delivered"]


class RefusingSink(OrderedSink):
    """A plain sink (no ``deliver_batch``): refuses one PO for good until told otherwise."""

    def __init__(self, refuse: str) -> None:
        self.refuse: str | None = refuse
        self.keys: list[str] = []

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        if document.business_number == self.refuse:
            return DeliveryResult(ok=False, transient=False, detail="ERP says 422")
        self.keys.append(document.idempotency_key)
        return DeliveryResult(ok=True)


async def test_plain_sink_refusal_does_not_block_the_next_document(gateway: Any) -> None:
    sink = RefusingSink("PO-5001-1")
    client = await gateway(sink=sink)
    message_id = await post(client, 505, "PO-5001", sets=2)
    await run(client)
    message, (first, second), [ack], _, _ = await state(client, message_id)
    assert sink.keys == [second.idempotency_key]
    assert message.status == "partly_delivered" and ack.status == "pending"
    assert message.reason == "ERP refused 1 of 2 document(s): PO-5001-1 (ERP says 422)"
    sink.refuse = None
    await client.app[PIPELINE].replay(message_id)
    await run(client)
    assert sink.keys == [second.idempotency_key, first.idempotency_key]
    assert (await state(client, message_id))[0].status == "acknowledged"


async def test_an_erp_answer_with_a_nul_is_retried_like_any_other(
    gateway: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    """The ERP's answer is recorded (attempt, document, event): PostgreSQL stores no NUL
    in text, so an answer holding one made the whole delivery record a data error and
    failed every message of the batch at once (though the ERP had taken the others'
    documents). It is stored spelled ``\\x00`` on both databases, and retried."""
    from gateway.db.models_delivery import DeliveryAttempt

    client = await gateway()
    fake_erp.fail_next(1, 503, body="down\x00 for maintenance")
    message_id = await post(client, 504, "PO-4001", sets=1)
    await run(client)
    message, [doc], _, _, [job] = await state(client, message_id)
    assert message.status == "translated" and job.step == "deliver", message.reason
    assert doc.last_error is not None and "down\\x00 for maintenance" in doc.last_error
    async with client.app[DATABASE].read() as conn:
        [error] = (await conn.execute(select(DeliveryAttempt.error))).scalars().all()
    assert error is not None and "\x00" not in error and "down\\x00 for maintenance" in error
    clock.advance(61)
    await run(client)
    message, [doc], _, _, waiting = await state(client, message_id)
    assert message.status == "acknowledged" and doc.status == "delivered" and not waiting
