"""The partner mailbox: a partner sees and confirms only its own items; another
partner's item id is a 404 exactly like an unknown one; acks of inbound messages
appear once released."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth
from gwsamples import order_850
from test_erp import Clock
from test_outbound import TOKEN, app_client, invoice, send, status_of

from gateway.app import PIPELINE


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_partner_sees_and_confirms_only_its_own_items(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    acme_msg = (await (await send(client, "invoices", "acme", invoice())).json())["message_id"]
    await send(client, "invoices", "globex", invoice())
    acme_items = (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    globex_items = (await (await client.get("/partners/globex/outbox", headers=auth(GLOBEX_KEY))).json())[
        "items"
    ]
    assert len(acme_items) == 1 and len(globex_items) == 1
    [item] = acme_items
    assert (
        item["kind"] == "810"
        and item["payload"].startswith("ISA*")
        and "*ZZ*ACME           *" in item["payload"]
    )
    # Another partner's key on acme's URL: 401; acme's item on globex's URL: 404 like a made-up id.
    assert (await client.get("/partners/acme/outbox", headers=auth(GLOBEX_KEY))).status == 401
    foreign = await client.delete(f"/partners/globex/outbox/{item['id']}", headers=auth(GLOBEX_KEY))
    unknown = await client.delete(
        "/partners/globex/outbox/01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=auth(GLOBEX_KEY)
    )
    assert foreign.status == unknown.status == 404
    assert (await foreign.json())["error"]["message"].replace(item["id"], "X") == (await unknown.json())[
        "error"
    ]["message"].replace("01HZZZZZZZZZZZZZZZZZZZZZZZ", "X")
    assert (await client.get(f"/partners/globex/outbox/{item['id']}", headers=auth(GLOBEX_KEY))).status == 404
    # The owner fetches the bytes, then confirms; the item is gone and the invoice is sent.
    raw = await client.get(f"/partners/acme/outbox/{item['id']}", headers=auth(ACME_KEY))
    assert raw.status == 200 and await raw.text() == item["payload"]
    assert (await client.delete(f"/partners/acme/outbox/{item['id']}", headers=auth(ACME_KEY))).status == 204
    assert (await client.delete(f"/partners/acme/outbox/{item['id']}", headers=auth(ACME_KEY))).status == 204
    assert (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"] == []
    assert await status_of(client, acme_msg) == "sent"
    assert (
        len((await (await client.get("/partners/globex/outbox", headers=auth(GLOBEX_KEY))).json())["items"])
        == 1
    )


async def test_held_acks_show_only_once_released(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, erp={"mode": "feed"})
    resp = await client.post("/partners/acme/edi", data=order_850("ACME", 77), headers=auth(ACME_KEY))
    message_id = (await resp.json())["message_id"]
    await client.app[PIPELINE].run_until_idle()
    # Held until the ERP confirms the feed documents.
    assert (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"] == []
    feed = await (await client.get("/api/v1/feed", headers=TOKEN)).json()
    await client.post("/api/v1/feed/ack", json={"ids": [i["id"] for i in feed["items"]]}, headers=TOKEN)
    await client.app[PIPELINE].run_until_idle()
    [ack] = (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    assert ack["kind"] == "997" and "AK1*PO*77" in ack["payload"]
    assert (await client.delete(f"/partners/acme/outbox/{ack['id']}", headers=auth(ACME_KEY))).status == 204
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    assert detail["status"] == "acknowledged"
    assert [i["status"] for i in detail["acks"]["issued"]] == ["sent"]
    assert "ack_sent" in [e["state"] for e in detail["timeline"]]
