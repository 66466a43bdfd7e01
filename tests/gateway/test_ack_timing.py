"""When the 997/999 of an inbound message leaves (profile ``x12.ack_after``):
``"translation"`` releases it in the translate step's own commit, whatever the ERP
does; the default ``"erp"`` holds it until the documents are with the ERP. Either
way one ack per message, replays included. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth
from gwsamples import order_850, profile_toml
from sqlalchemy import select, update

from gateway.app import DATABASE, PIPELINE, Overrides
from gateway.db.models import Document, Job, Message, MessageEvent, OutboxItem
from gateway.erp import OrderedSink
from gateway.ports import DeliveryResult, DocumentRecord

TOKEN = {"Authorization": "Bearer internal-test-token"}


class ErpDown(OrderedSink):
    """An ERP that answers "try later" while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.delivered: list[str] = []

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        if self.down:
            return DeliveryResult(ok=False, transient=True, detail="ERP says 503")
        self.delivered.append(document.id)
        return DeliveryResult(ok=True)


@pytest.fixture
def partners_dir(tmp_path: Path) -> Path:
    """acme: ``ack_after = "translation"``; globex: the default."""
    root = tmp_path / "partners"
    for partner_id, isa_id, key, ack_after in (
        ("acme", "ACME", ACME_KEY, "translation"),
        ("globex", "GLOBEX", GLOBEX_KEY, None),
    ):
        (root / partner_id).mkdir(parents=True)
        (root / partner_id / "profile.toml").write_text(
            profile_toml(partner_id, isa_id, key, ack_after=ack_after)
        )
    return root


@pytest.fixture
def erp() -> ErpDown:
    return ErpDown()


@pytest.fixture
def overrides(erp: ErpDown) -> Overrides:
    return Overrides(sink=erp)


async def post(client: Any, body: bytes, partner: str, key: str) -> str:
    resp = await client.post(f"/partners/{partner}/edi", data=body, headers=auth(key))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def translate(client: Any) -> None:
    """Run the translate step (one claimed batch) and nothing after it."""
    assert await client.app[PIPELINE].run_one()


async def due_now(client: Any) -> None:
    """Skip the retry backoff: every waiting job is due."""
    async with client.app[DATABASE].write() as conn:
        await conn.execute(update(Job).where(Job.state == "ready").values(next_attempt_at=Job.created_at))


async def settle(client: Any) -> None:
    await client.app[PIPELINE].run_until_idle()


async def state(client: Any, message_id: str) -> tuple[str, list[Any], list[str], list[Any]]:
    """(message status, its outbox rows, its document statuses, ack_issued details)."""
    async with client.app[DATABASE].read() as conn:
        status = (await conn.execute(select(Message.status).where(Message.id == message_id))).scalar_one()
        outbox = (
            await conn.execute(
                select(OutboxItem.kind, OutboxItem.status, OutboxItem.payload)
                .where(OutboxItem.message_id == message_id)
                .order_by(OutboxItem.id)
            )
        ).all()
        documents = list(
            (await conn.execute(select(Document.status).where(Document.message_id == message_id))).scalars()
        )
        issued = list(
            (
                await conn.execute(
                    select(MessageEvent.detail)
                    .where(MessageEvent.message_id == message_id, MessageEvent.state == "ack_issued")
                    .order_by(MessageEvent.id)
                )
            ).scalars()
        )
    return status, outbox, documents, issued


async def test_translation_releases_the_997_while_the_erp_is_down(client: Any, erp: ErpDown) -> None:
    message_id = await post(client, order_850("ACME", 401), "acme", ACME_KEY)
    await translate(client)
    status, outbox, documents, issued = await state(client, message_id)
    assert status == "translated"
    assert documents == ["pending"] and erp.delivered == []  # not with the ERP
    [ack] = outbox
    assert ack.kind == "997" and ack.status == "pending"
    assert "AK1*PO*401" in ack.payload and "AK9*A*1*1*1" in ack.payload
    assert [d["held"] for d in issued] == [False]
    # The partner can fetch it now.
    resp = await client.get("/partners/acme/outbox", headers={"Authorization": f"Bearer {ACME_KEY}"})
    assert [i["kind"] for i in (await resp.json())["items"]] == ["997"]

    # The ERP comes back: delivered and acknowledged, and no second ack.
    erp.down = False
    await due_now(client)
    await settle(client)
    status, outbox, documents, issued = await state(client, message_id)
    assert status == "acknowledged" and documents == ["delivered"]
    assert [(a.kind, a.status) for a in outbox] == [("997", "pending")] and len(issued) == 1


async def test_default_holds_the_997_until_the_erp_has_the_documents(client: Any, erp: ErpDown) -> None:
    message_id = await post(client, order_850("GLOBEX", 402), "globex", GLOBEX_KEY)
    await translate(client)
    status, outbox, documents, issued = await state(client, message_id)
    assert status == "translated" and documents == ["pending"]
    [ack] = outbox
    assert ack.kind == "997" and ack.status == "held"
    assert [d["held"] for d in issued] == [True]
    resp = await client.get("/partners/globex/outbox", headers={"Authorization": f"Bearer {GLOBEX_KEY}"})
    assert (await resp.json())["items"] == []

    erp.down = False
    await due_now(client)
    await settle(client)
    status, outbox, documents, _ = await state(client, message_id)
    assert status == "acknowledged" and documents == ["delivered"]
    assert [(a.kind, a.status) for a in outbox] == [("997", "pending")]


@pytest.mark.parametrize("overrides", [Overrides()])  # feed mode, no ERP reading the feed
async def test_feed_mode_without_an_erp_still_acknowledges_early_partners(client: Any) -> None:
    early = await post(client, order_850("ACME", 403), "acme", ACME_KEY)
    late = await post(client, order_850("GLOBEX", 403), "globex", GLOBEX_KEY)
    await settle(client)
    status, outbox, documents, _ = await state(client, early)
    assert status == "translated" and documents == ["available"]
    assert [(a.kind, a.status) for a in outbox] == [("997", "pending")]
    status, outbox, documents, _ = await state(client, late)
    assert status == "translated" and documents == ["available"]
    assert [(a.kind, a.status) for a in outbox] == [("997", "held")]


async def test_replay_never_issues_a_second_ack(client: Any, erp: ErpDown) -> None:
    erp.down = False
    message_id = await post(client, order_850("ACME", 404), "acme", ACME_KEY)
    await settle(client)
    await client.app[PIPELINE].replay(message_id)
    await settle(client)
    status, outbox, _, issued = await state(client, message_id)
    assert status == "acknowledged"
    assert [(a.kind, a.status) for a in outbox] == [("997", "pending")] and len(issued) == 1


async def test_replay_after_moving_to_translation_releases_the_held_ack(
    client: Any, erp: ErpDown, partners_dir: Path
) -> None:
    """A message stuck behind an ERP outage under the default: the operator moves the
    partner to "translation" and replays it; its one 997 leaves, none is added."""
    message_id = await post(client, order_850("GLOBEX", 405), "globex", GLOBEX_KEY)
    await translate(client)
    assert [(a.kind, a.status) for a in (await state(client, message_id))[1]] == [("997", "held")]
    (partners_dir / "globex" / "profile.toml").write_text(
        profile_toml("globex", "GLOBEX", GLOBEX_KEY, ack_after="translation")
    )
    assert (await client.post("/api/v1/partners/reload", headers=TOKEN)).status == 200
    await client.app[PIPELINE].replay(message_id)
    await translate(client)
    status, outbox, documents, issued = await state(client, message_id)
    assert status == "translated" and documents == ["pending"]
    assert [(a.kind, a.status) for a in outbox] == [("997", "pending")] and len(issued) == 1
