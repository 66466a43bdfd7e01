"""The pipeline state machine on real storage: states and timeline, documents and
their idempotency keys, acknowledgments in the outbox, quarantine, duplicates,
retries and replay. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth
from gwsamples import broken_850, canonical_order, order_850
from sqlalchemy import select

from gateway.app import DATABASE, INTAKE, PIPELINE, Overrides
from gateway.db.models import Document, Job, Message, MessageEvent, OutboxItem
from gateway.erp import OrderedSink
from gateway.pipeline_replay import ReplayRefused
from gateway.ports import DeliveryResult, DocumentRecord


class RecordingErp(OrderedSink):
    """Stands in for the ERP: remembers every delivery and the idempotency keys it saw.
    ``fail_next`` makes the next deliveries fail (transient or not)."""

    def __init__(self) -> None:
        self.deliveries: list[DocumentRecord] = []
        self.fail_next = 0
        self.transient = True

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        if self.fail_next:
            self.fail_next -= 1
            return DeliveryResult(ok=False, transient=self.transient, detail="ERP says 503")
        self.deliveries.append(document)
        return DeliveryResult(ok=True)

    @property
    def keys(self) -> list[str]:
        return [d.idempotency_key for d in self.deliveries]


@pytest.fixture
def erp() -> RecordingErp:
    return RecordingErp()


@pytest.fixture
def overrides(erp: RecordingErp) -> Overrides:
    return Overrides(sink=erp)


async def settle(client: Any, timeout: float = 10.0) -> None:
    """Run the pipeline until no job is waiting (retries included)."""
    app = client.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await app[PIPELINE].run_until_idle()
        async with app[DATABASE].read() as conn:
            waiting = (
                await conn.execute(select(Job.id).where(Job.state.in_(("ready", "running"))).limit(1))
            ).first()
        if waiting is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("pipeline did not settle")


async def post(client: Any, body: bytes, partner: str = "acme", key: str = ACME_KEY) -> str:
    resp = await client.post(f"/partners/{partner}/edi", data=body, headers=auth(key))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def load(client: Any, message_id: str) -> tuple[Any, list[str], list[Any], list[Any]]:
    async with client.app[DATABASE].read() as conn:
        message = (await conn.execute(select(Message).where(Message.id == message_id))).one()
        events = (
            await conn.execute(
                select(MessageEvent.state)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            )
        ).scalars()
        documents = (
            await conn.execute(
                select(Document).where(Document.message_id == message_id).order_by(Document.seq)
            )
        ).all()
        outbox = (await conn.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).all()
    return message, list(events), documents, outbox


async def test_happy_path_states_documents_and_997(client: Any, erp: RecordingErp) -> None:
    message_id = await post(client, order_850("ACME", 101, sets=2))
    await settle(client)
    message, events, documents, outbox = await load(client, message_id)
    assert message.status == "acknowledged", message.reason
    assert events == ["received", "parsed", "ack_issued", "translated", "delivered", "acknowledged"]
    assert message.interchange_sender == "ZZ/ACME" and message.interchange_control == "000000101"
    assert [d.business_number for d in documents] == ["PO-1001-1", "PO-1001-2"]
    assert [d.status for d in documents] == ["delivered", "delivered"]
    assert documents[0].canonical["kind"] == "order" and documents[0].canonical["partner_id"] == "acme"
    assert [d.set_control for d in documents] == ["0001", "0002"]
    assert erp.keys == [d.idempotency_key for d in documents]
    assert len(set(erp.keys)) == 2
    [ack] = outbox
    assert ack.kind == "997" and ack.status == "pending" and ack.partner_id == "acme"
    assert "AK1*PO*101" in ack.payload and "AK9*A*2*2*2" in ack.payload
    assert "*ZZ*OURCOMPANY     *ZZ*ACME           *" in ack.payload
    assert ack.interchange_control == 1


async def test_ack_is_held_until_documents_are_delivered(client: Any, erp: RecordingErp) -> None:
    erp.fail_next, erp.transient = 1, True
    message_id = await post(client, order_850("ACME", 102))
    pipeline = client.app[PIPELINE]
    assert await pipeline.run_one()  # translated, then a failed delivery attempt
    message, _, _, outbox = await load(client, message_id)
    assert message.status == "translated"
    assert [o.status for o in outbox] == ["held"]
    await settle(client)
    message, events, _, outbox = await load(client, message_id)
    assert message.status == "acknowledged"
    assert "retry" in events
    assert [o.status for o in outbox] == ["pending"]
    assert len(erp.deliveries) == 1


async def test_rejected_set_fails_with_reason_and_997_r(client: Any, erp: RecordingErp) -> None:
    message_id = await post(client, broken_850("ACME", 103))
    await settle(client)
    message, _, documents, outbox = await load(client, message_id)
    assert message.status == "failed"
    assert "BEG" in message.reason and "invalid date" in message.reason
    assert documents == [] and erp.deliveries == []
    [ack] = outbox
    assert ack.status == "pending" and "AK5*R" in ack.payload and "AK9*R" in ack.payload


async def test_unknown_sender_is_quarantined_without_ack(client: Any, erp: RecordingErp) -> None:
    # SFTP-style: the transport does not know the partner, the ISA sender decides.
    async def body() -> Any:
        yield order_850("STRANGER", 104)

    result = await client.app[INTAKE].accept(
        partner_id=None,
        channel="sftp",
        transport_id="in/po_104.edi",
        idempotency_key=None,
        body=body(),
        limit=10**6,
    )
    await settle(client)
    message, events, documents, outbox = await load(client, result.message_id)
    assert message.status == "quarantined"
    assert "unknown sender ZZ/STRANGER" in message.reason
    assert events[-1] == "quarantined"
    assert documents == [] and outbox == [] and erp.deliveries == []


async def test_sender_that_is_not_the_authenticated_partner_is_quarantined(
    client: Any, erp: RecordingErp
) -> None:
    message_id = await post(client, order_850("GLOBEX", 105))  # acme's key, globex's ISA
    await settle(client)
    message, _, documents, outbox = await load(client, message_id)
    assert message.status == "quarantined"
    assert "not an address of partner acme" in message.reason
    assert documents == [] and outbox == [] and erp.deliveries == []


async def test_duplicate_interchange_is_not_forwarded_and_gets_ta1_025(
    client: Any, erp: RecordingErp
) -> None:
    first = await post(client, order_850("GLOBEX", 106), "globex", GLOBEX_KEY)
    await settle(client)
    again = await post(client, order_850("GLOBEX", 106), "globex", GLOBEX_KEY)
    await settle(client)
    message, events, documents, outbox = await load(client, again)
    assert message.status == "duplicate"
    assert first in message.reason
    assert "duplicate_interchange" in events
    assert documents == []
    assert len(erp.deliveries) == 1
    [ta1] = outbox
    assert ta1.kind == "TA1" and ta1.status == "pending"
    assert "TA1*000000106*" in ta1.payload and "*R*025" in ta1.payload


async def test_interchange_for_another_company_is_refused_with_ta1_009(
    client: Any, erp: RecordingErp
) -> None:
    """ISA08 is not us: nothing reaches the ERP, the sender hears TA1 009 at once."""
    message_id = await post(client, order_850("ACME", 120, receiver="SOMEONEELSE"))
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert message.status == "failed"
    assert "TA1 note 009" in message.reason
    assert documents == [] and erp.deliveries == []
    [ta1] = outbox
    assert ta1.kind == "TA1" and ta1.status == "pending"
    assert "TA1*000000120*" in ta1.payload and "*R*009" in ta1.payload
    assert "AK1" not in ta1.payload


async def test_valid_sets_of_a_rejected_group_are_not_forwarded(client: Any, erp: RecordingErp) -> None:
    """GE01 claims 3 sets, 2 came: AK9 R for the group, so neither 850 goes to the ERP
    (the partner resends the group and would otherwise make duplicates)."""
    body = order_850("ACME", 121, sets=2).replace(b"GE*2*121", b"GE*3*121")
    message_id = await post(client, body)
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert message.status == "failed"
    assert "group 121 rejected: AK9 code 5" in message.reason
    assert documents == [] and erp.deliveries == []
    [ack] = outbox
    assert ack.kind == "997" and "AK9*R*3*2*0*5" in ack.payload


async def test_the_same_interchange_twice_in_one_message_is_forwarded_once(
    client: Any, erp: RecordingErp
) -> None:
    body = order_850("ACME", 122)
    message_id = await post(client, body + body)
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert len(documents) == 1 and len(erp.deliveries) == 1
    assert "TA1 note 025" in (message.reason or "")
    payloads = "".join(o.payload for o in outbox)
    assert "TA1*000000122*" in payloads and "*R*025" in payloads  # the repeat, answered once


async def test_replay_keeps_idempotency_keys_and_never_redelivers(client: Any, erp: RecordingErp) -> None:
    message_id = await post(client, order_850("ACME", 107, sets=2))
    await settle(client)
    _, _, before, outbox_before = await load(client, message_id)
    await client.app[PIPELINE].replay(message_id)
    await settle(client)
    message, events, after, outbox_after = await load(client, message_id)
    assert message.status == "acknowledged"
    assert events.count("received") == 2 and events.count("acknowledged") == 2
    assert [d.idempotency_key for d in after] == [d.idempotency_key for d in before]
    assert len(erp.deliveries) == 2  # nothing delivered twice
    assert [o.id for o in outbox_after] == [o.id for o in outbox_before]  # no second 997


async def test_permanent_erp_refusal_fails_then_replay_delivers_with_same_keys(
    client: Any, erp: RecordingErp
) -> None:
    erp.fail_next, erp.transient = 1, False
    message_id = await post(client, order_850("ACME", 108))
    await settle(client)
    message, _, documents, _ = await load(client, message_id)
    assert message.status == "failed" and "ERP refused" in message.reason
    assert documents[0].status == "pending" and documents[0].attempts == 1
    await client.app[PIPELINE].replay(message_id, requested_by="test")
    await settle(client)
    message, _, _, _ = await load(client, message_id)
    assert message.status == "acknowledged"
    assert erp.keys == [documents[0].idempotency_key]


async def test_retries_give_up_after_max_attempts(client: Any, erp: RecordingErp) -> None:
    erp.fail_next, erp.transient = 100, True
    message_id = await post(client, order_850("ACME", 109))
    await settle(client)
    message, events, _, outbox = await load(client, message_id)
    assert message.status == "failed"
    assert "gave up after 8 attempts" in message.reason
    assert events.count("retry") == 7
    assert [o.status for o in outbox] == ["pending"]  # the 997 still goes out: we did receive it


async def test_replay_of_unknown_message_is_refused(client: Any) -> None:
    with pytest.raises(ReplayRefused):
        await client.app[PIPELINE].replay("01NOTAMESSAGE0000000000000")


async def test_canonical_json_message_flows_to_erp(client: Any, erp: RecordingErp) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"}
    resp = await client.post(
        "/partners/acme/documents", data=json.dumps(canonical_order("PO-77")), headers=headers
    )
    message_id = (await resp.json())["message_id"]
    await settle(client)
    message, _, documents, outbox = await load(client, message_id)
    assert message.status == "acknowledged" and message.kind == "canonical"
    assert [d.business_number for d in documents] == ["PO-77"]
    assert erp.deliveries[0].canonical["partner_id"] == "acme"
    assert outbox == []


async def test_control_numbers_are_consecutive_per_partner(client: Any) -> None:
    ids = [await post(client, order_850("ACME", 110 + n)) for n in range(3)]
    other = await post(client, order_850("GLOBEX", 110), "globex", GLOBEX_KEY)
    await settle(client)
    controls = [(await load(client, i))[3][0].interchange_control for i in ids]
    assert controls == [1, 2, 3]
    assert (await load(client, other))[3][0].interchange_control == 1


async def test_two_pipelines_share_the_queue_without_double_processing(client: Any) -> None:
    from gateway.pipeline import Pipeline

    app = client.app
    ids = [await post(client, order_850("ACME", 200 + n)) for n in range(12)]
    first = app[PIPELINE]
    second = Pipeline(
        app[DATABASE],
        first.blobs,
        partners=first.partners,
        sink=first.sink,
        settings=first.settings,
        worker_id="second",
    )
    await asyncio.gather(
        first.run_until_idle(), second.run_until_idle(), first.run_until_idle(), second.run_until_idle()
    )
    await settle(client)
    for message_id in ids:
        message, events, documents, outbox = await load(client, message_id)
        assert message.status == "acknowledged"
        assert events.count("parsed") == 1 and events.count("delivered") == 1
        assert len(documents) == 1 and len(outbox) == 1


class StuckErp(OrderedSink):
    """An ERP that never answers: its delivery is in flight until the gateway stops."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_graceful_stop_hands_back_the_jobs_in_flight(
    aiohttp_client: Any, tmp_path: Any, partners_dir: Any, database_url: str | None
) -> None:
    """Stopping with a delivery in flight leaves its job claimable at once (not
    after its lease) for the next start or another process."""
    from conftest import make_settings

    from gateway.app import build_app
    from gateway.db.engine import open_database

    settings = make_settings(
        tmp_path, partners_dir, database_url, pipeline={"workers": 1, "lease_seconds": 3600}
    )
    stuck = StuckErp()
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=stuck)))
    message_id = await post(client, order_850("ACME", 130))
    await asyncio.wait_for(stuck.started.wait(), 20)
    await client.close()  # the app's cleanup stops the pipeline

    db = open_database(settings.effective_database_url)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(Job.step, Job.state, Job.locked_by).where(Job.message_id == message_id)
                )
            ).all()
    finally:
        await db.close()
    assert ("deliver", "ready", None) in [tuple(r) for r in rows]
    assert all(r.state != "running" for r in rows)


async def test_a_retrying_message_shows_its_next_step_and_the_last_error(
    client: Any, erp: RecordingErp
) -> None:
    erp.fail_next = 1
    message_id = await post(client, order_850("ACME", 131))
    assert await client.app[PIPELINE].run_one()  # translated, then the delivery fails once
    headers = {"Authorization": "Bearer internal-test-token"}
    body = await (await client.get(f"/api/v1/messages/{message_id}", headers=headers)).json()
    assert body["status"] == "translated"
    step = body["next_step"]
    assert (step["step"], step["state"], step["attempts"]) == ("deliver", "ready", 1)
    assert "ERP says 503" in step["last_error"]
    await settle(client)
    body = await (await client.get(f"/api/v1/messages/{message_id}", headers=headers)).json()
    assert body["status"] == "acknowledged" and body["next_step"] is None


async def test_ids_past_2_to_the_31_flow_through_every_step(
    client: Any, erp: RecordingErp, database_url: str | None
) -> None:
    """PostgreSQL (migration 0015): with the serial ids past 2^31 - 1, a message is
    accepted, translated, delivered and acknowledged as before (the raw statements'
    arrays of job ids, the events, the document keys)."""
    if database_url is None:
        pytest.skip("SQLite's INTEGER PRIMARY KEY has always been 64-bit")
    past = 2**31 + 100
    tables = ("message_events", "jobs", "document_keys")
    async with client.app[DATABASE].write() as conn:
        for table in tables:
            await conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {past})")
    message_id = await post(client, order_850("ACME", 140, sets=2))
    await settle(client)
    message, events, documents, _ = await load(client, message_id)
    assert message.status == "acknowledged", message.reason
    assert events == ["received", "parsed", "ack_issued", "translated", "delivered", "acknowledged"]
    assert erp.keys == [d.idempotency_key for d in documents] and len(set(erp.keys)) == 2
    async with client.app[DATABASE].read() as conn:
        for table in tables:
            ids = (await conn.exec_driver_sql(f"SELECT id FROM {table}")).scalars().all()
            assert ids and min(ids) > past, table
