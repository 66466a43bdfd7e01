"""Replay from a stage over the real internal API (``POST /api/v1/messages/{id}/replay``
with ``{"from": ...}``), the real pipeline and a fake ERP on loopback: deliver hands
the stored documents over again without translating (same keys; delivered ones only
when asked), acknowledge sends the built 997 again through the partner's mailbox,
translate (and no body) is the replay it always was; stages that do not apply are
refused with 409 and the reason; the stage is on the message's timeline."""

from __future__ import annotations

from typing import Any

import test_erp
from conftest import ACME_KEY, auth
from fakes.erp_server import FakeErp
from gwsamples import order_850
from sqlalchemy import func, select
from test_erp import TOKEN, Clock, message_row, post_850, run

from gateway.app import DATABASE
from gateway.db.models import Document, Job, MessageEvent

JSON = {**TOKEN, "Content-Type": "application/json"}
clock, fake_erp, webhook = test_erp.clock, test_erp.fake_erp, test_erp.webhook  # its fixtures


async def replay(client: Any, message_id: str, body: str | None) -> Any:
    if body is None:
        return await client.post(f"/api/v1/messages/{message_id}/replay", headers=TOKEN)
    return await client.post(f"/api/v1/messages/{message_id}/replay", data=body, headers=JSON)


async def translate_jobs(client: Any, message_id: str) -> int:
    async with client.app[DATABASE].read() as conn:
        return int(
            await conn.scalar(
                select(func.count()).where(Job.message_id == message_id, Job.step == "translate")
            )
            or 0
        )


async def events(client: Any, message_id: str) -> list[tuple[str, dict[str, Any] | None]]:
    async with client.app[DATABASE].read() as conn:
        rows = await conn.execute(
            select(MessageEvent.state, MessageEvent.detail)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        )
        return [(r.state, r.detail) for r in rows]


async def test_deliver_sends_the_dead_letter_again_without_translating(
    webhook: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    fake_erp.fail_next(1, 422, body='{"error": "unknown ship-to 0042"}')
    message_id = await post_850(webhook, 501)
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "failed"
    async with webhook.app[DATABASE].read() as conn:
        doc = (await conn.execute(select(Document).where(Document.message_id == message_id))).one()
    resp = await replay(webhook, message_id, '{"from": "deliver"}')
    assert resp.status == 202
    assert await resp.json() == {"message_id": message_id, "status": "translated", "from": "deliver"}
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    assert fake_erp.accepted == {doc.idempotency_key: 1}  # the same key, once
    assert await translate_jobs(webhook, message_id) == 1  # never translated again
    state, detail = next(e for e in await events(webhook, message_id) if e[1] and e[1].get("replay"))
    assert state == "translated" and detail is not None
    assert (detail["from"], detail["requested_by"], detail["documents"]) == ("deliver", "api", 1)
    assert (await (await webhook.get("/api/v1/dead-letters", headers=TOKEN)).json())["items"] == []


async def test_deliver_skips_what_the_erp_has_unless_asked(webhook: Any, fake_erp: FakeErp) -> None:
    message_id = await post_850(webhook, 502)
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    [key] = list(fake_erp.accepted)
    refused = await replay(webhook, message_id, '{"from": "deliver"}')
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "replay_refused" and "with the ERP already" in error["message"]
    resp = await replay(webhook, message_id, '{"from": "deliver", "redeliver": true}')
    assert resp.status == 202
    await run(webhook)
    assert fake_erp.accepted == {key: 2}  # posted again under the same Idempotency-Key: the ERP dedupes
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    assert await translate_jobs(webhook, message_id) == 1


async def test_acknowledge_sends_the_built_997_again_through_the_mailbox(webhook: Any) -> None:
    message_id = await post_850(webhook, 503)
    await run(webhook)
    box = (await (await webhook.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    [ack] = [i for i in box if i["kind"] == "997"]
    # not yet collected: the 997 is still on its way, nothing to send again
    early = await replay(webhook, message_id, '{"from": "acknowledge"}')
    assert early.status == 409 and "still on its way" in (await early.json())["error"]["message"]
    assert (await webhook.delete(f"/partners/acme/outbox/{ack['id']}", headers=auth(ACME_KEY))).status == 204
    resp = await replay(webhook, message_id, '{"from": "acknowledge"}')
    assert resp.status == 202 and (await resp.json())["status"] == "acks_queued"
    box = (await (await webhook.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    [again] = [i for i in box if i["kind"] == "997"]
    assert again["id"] != ack["id"] and again["payload"] == ack["payload"]  # the same 997, sent again
    assert again["interchange_control"] == ack["interchange_control"]
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    [detail] = [d for s, d in await events(webhook, message_id) if s == "acks_resent"]
    assert detail is not None and detail["from"] == "acknowledge" and detail["outbox_ids"] == [again["id"]]


async def test_stages_that_do_not_apply_are_refused_with_the_reason(webhook: Any) -> None:
    resp = await webhook.post(
        "/partners/acme/edi", data=order_850("GLOBEX", 504), headers=auth(ACME_KEY)
    )  # acme's key, globex's ISA: quarantined
    quarantined = (await resp.json())["message_id"]
    await run(webhook)
    assert (await message_row(webhook, quarantined)).status == "quarantined"
    for stage, reason in (
        ("deliver", "no translated documents to deliver"),
        ("acknowledge", "no acknowledgment (TA1/997/999) was built"),
    ):
        resp = await replay(webhook, quarantined, f'{{"from": "{stage}"}}')
        assert resp.status == 409, stage
        assert reason in (await resp.json())["error"]["message"]
    bad = await replay(webhook, quarantined, '{"from": "parse"}')
    assert bad.status == 400 and "unknown stage" in (await bad.json())["error"]["message"]
    assert (await replay(webhook, quarantined, '{"from": "translate", "redeliver": true}')).status == 400
    assert (await replay(webhook, quarantined, '["deliver"]')).status == 400
    # no body, and an explicit translate, are the replay there always was
    resp = await replay(webhook, quarantined, None)
    assert resp.status == 202
    assert await resp.json() == {"message_id": quarantined, "status": "received", "from": "translate"}
    await run(webhook)
    resp = await replay(webhook, quarantined, '{"from": "translate"}')
    assert resp.status == 202
    replays = [d for s, d in await events(webhook, quarantined) if s == "received" and d and d.get("replay")]
    assert [d["from"] for d in replays] == ["translate", "translate"]
