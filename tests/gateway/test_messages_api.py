"""The messages API: filters, search by business and control numbers, cursor
pagination, detail with timeline/documents/acks/attempts, raw bytes, replay; and
profile reload (good directory swapped in, broken one refused and the old kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth
from gwsamples import canonical_order, order_850
from test_erp import Clock
from test_outbound import TOKEN, app_client, invoice, send

from gateway.app import PARTNERS, PIPELINE


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def post(client: Any, partner: str, key: str, control: int, po: str) -> str:
    resp = await client.post(
        f"/partners/{partner}/edi", data=order_850(partner.upper(), control, po=po), headers=auth(key)
    )
    assert resp.status == 202
    return str((await resp.json())["message_id"])


async def ids(client: Any, query: str) -> list[str]:
    resp = await client.get(f"/api/v1/messages?{query}", headers=TOKEN)
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["items"]]


async def test_filters_search_and_pages(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    a1 = await post(client, "acme", ACME_KEY, 11, "PO-A1")
    clock.advance(60)
    a2 = await post(client, "acme", ACME_KEY, 12, "PO-A2")
    clock.advance(60)
    g1 = await post(client, "globex", GLOBEX_KEY, 13, "PO-G1")
    clock.advance(60)
    out = (await (await send(client, "invoices", "acme", invoice())).json())["message_id"]
    await client.app[PIPELINE].run_until_idle()

    assert await ids(client, "") == [out, g1, a2, a1]  # newest first
    assert await ids(client, "partner=acme&direction=in") == [a2, a1]
    assert await ids(client, "direction=out") == [out]
    assert await ids(client, "kind=invoice") == [out]
    assert await ids(client, "q=PO-A2-1") == [a2]
    assert await ids(client, "q=INV-5521") == [out]
    assert await ids(client, "q=13") == [g1]  # ISA13 000000013
    assert await ids(client, "q=000000001&direction=out") == [out]
    assert await ids(client, "since=2024-03-15T12:01:00Z&until=2024-03-15T12:01:30Z") == [a2]
    page = await (await client.get("/api/v1/messages?limit=3", headers=TOKEN)).json()
    assert [m["id"] for m in page["items"]] == [out, g1, a2]
    assert await ids(client, f"limit=3&cursor={page['next']}") == [a1]
    assert (await client.get("/api/v1/messages?since=yesterday", headers=TOKEN)).status == 400
    assert (await client.get("/api/v1/messages")).status == 401


async def test_detail_raw_and_replay(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    body = order_850("ACME", 21, po="PO-D")
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    message_id = (await resp.json())["message_id"]
    await client.app[PIPELINE].run_until_idle()
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    assert detail["direction"] == "in" and detail["partner_id"] == "acme"
    states = [e["state"] for e in detail["timeline"]]
    assert states[0] == "received" and "parsed" in states and "available_in_feed" in states
    [doc] = detail["documents"]
    assert doc["business_number"] == "PO-D-1" and doc["status"] == "available"
    assert doc["document"]["document"]["po_number"] == "PO-D-1"
    assert detail["acks"]["issued"][0]["kind"] == "997" and detail["acks"]["issued"][0]["status"] == "held"
    raw = await client.get(f"/api/v1/messages/{message_id}/raw", headers=TOKEN)
    assert await raw.read() == body and raw.headers["Content-Type"].startswith("application/edi-x12")
    json_resp = await client.post(
        "/partners/acme/documents", json=canonical_order(), headers={"Authorization": f"Bearer {ACME_KEY}"}
    )
    json_id = (await json_resp.json())["message_id"]
    raw = await client.get(f"/api/v1/messages/{json_id}/raw", headers=TOKEN)
    assert raw.headers["Content-Type"].startswith("application/json")
    assert (await client.get("/api/v1/messages/nope", headers=TOKEN)).status == 404
    assert (await client.post("/api/v1/messages/nope/replay", headers=TOKEN)).status == 404
    replay = await client.post(f"/api/v1/messages/{message_id}/replay", headers=TOKEN)
    assert replay.status == 202
    await client.app[PIPELINE].run_until_idle()
    again = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    assert [d["idempotency_key"] for d in again["documents"]] == [doc["idempotency_key"]]
    assert len(again["acks"]["issued"]) == 1  # no second 997


async def test_reload_swaps_good_profiles_and_keeps_the_old_on_error(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    before = client.app[PARTNERS].current
    profile = partners_dir / "acme" / "profile.toml"
    good = profile.read_text()
    profile.write_text(good.replace('ta1 = "on-error"', 'ta1 = "sometimes"'))
    resp = await client.post("/api/v1/partners/reload", headers=TOKEN)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_profiles" and any("ta1" in line for line in error["details"])
    assert client.app[PARTNERS].current is before
    # The running gateway still accepts acme's documents with the old profile.
    assert (
        await client.post("/partners/acme/edi", data=order_850("ACME", 31), headers=auth(ACME_KEY))
    ).status == 202
    profile.write_text(good.replace('name = "Test partner acme"', 'name = "Acme Renamed"'))
    resp = await client.post("/api/v1/partners/reload", headers=TOKEN)
    assert resp.status == 200 and (await resp.json())["partners"] == ["acme", "globex"]
    assert client.app[PARTNERS].current.get("acme").name == "Acme Renamed"
    assert (await client.post("/api/v1/partners/reload")).status == 401
