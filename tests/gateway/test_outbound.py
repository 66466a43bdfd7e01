"""The outbound direction on real storage: internal API -> X12 in the partner's
conventions -> outbox -> partner channel (REST to a fake partner server) -> their
997/999/TA1 reconciled -> overdue check. Control numbers: unique and increasing
under concurrency and across restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth, make_settings
from fakes.partner_server import FakePartner
from gwsamples import profile_toml
from sqlalchemy import select
from test_erp import Clock

from gateway.api.internal import DELIVERY
from gateway.app import DATABASE, PARTNERS, PIPELINE, Overrides, build_app
from gateway.db.models import Message, OutboxItem
from gateway.reconcile import mark_overdue

TOKEN = {"Authorization": "Bearer internal-test-token"}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"
INITECH_KEY = "initech-secret-key"


def shipment() -> dict[str, Any]:
    return json.loads((FIXTURES / "856_si_blank_parents.json").read_text())


def invoice() -> dict[str, Any]:
    doc = json.loads((FIXTURES / "810_credit_sac.json").read_text())
    # the golden's TDS01 is what the partner sent; what we send must add up: lines
    # 270.25 - allowances 30.00 + charges 15.00 (the total check, profile-reference.md)
    doc["total_amount"] = "255.25"
    return dict(doc)


def order_ack() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "855_4010_star_tilde_crlf.json").read_text())["document"])


def functional_ack(
    group_control: str, *, code: str = "A", control: int = 900, set_control: str = "0001"
) -> bytes:
    """A 997 from ACME acknowledging our group ``group_control`` (one 856)."""
    segments = [
        f"ISA*00*          *00*          *ZZ*ACME           *ZZ*OURCOMPANY     *240316*0900*U*00401*{control:09d}*0*P*>",
        f"GS*FA*ACME*OURCOMPANY*20240316*0900*{control}*X*004010",
        "ST*997*0001",
        f"AK1*SH*{group_control}",
        f"AK2*856*{set_control}",
        f"AK5*{code}",
        f"AK9*{code}*1*1*{1 if code == 'A' else 0}",
        "SE*6*0001",
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]
    return ("~\n".join(segments) + "~\n").encode()


@pytest.fixture
async def partner_server() -> AsyncIterator[FakePartner]:
    server = FakePartner()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def add_rest_partner(partners_dir: Path, url: str) -> None:
    folder = partners_dir / "initech"
    folder.mkdir(exist_ok=True)
    text = profile_toml("initech", "INITECH", INITECH_KEY)
    (folder / "profile.toml").write_text(text + f'[delivery]\nchannel = "rest"\nurl = "{url}"\n')


async def app_client(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    database_url: str | None = None,
    **sections: Any,
) -> Any:
    sections.setdefault("outbound", {"workers": 0, "retry_base_seconds": 10, "max_attempts": 3})
    settings = make_settings(tmp_path, partners_dir, database_url, **sections)
    return await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))


async def send(
    client: Any, route: str, partner_id: str, document: dict[str, Any], key: str | None = None
) -> Any:
    headers = dict(TOKEN)
    if key:
        headers["Idempotency-Key"] = key
    return await client.post(
        f"/api/v1/{route}", json={"partner_id": partner_id, "document": document}, headers=headers
    )


async def status_of(client: Any, message_id: str) -> str:
    async with client.app[DATABASE].read() as conn:
        return str((await conn.execute(select(Message.status).where(Message.id == message_id))).scalar_one())


async def test_shipment_is_rendered_for_the_partner_and_queued(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    resp = await send(client, "shipments", "acme", shipment())
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert (
        body["status"] == "queued"
        and body["interchange_control"] == "000000001"
        and body["group_control"] == "1"
    )
    raw = await client.get(f"/api/v1/messages/{body['message_id']}/raw", headers=TOKEN)
    assert raw.headers["Content-Type"].startswith("application/edi-x12")
    text = await raw.text()
    assert text.startswith(
        "ISA*00*          *00*          *ZZ*OURCOMPANY     *ZZ*ACME           *240315*1200*U*00401*000000001*0*P*>~"
    )
    assert "GS*SH*OURCOMPANY*ACME*20240315*1200*1*X*004010~" in text and "ST*856*0001~" in text
    assert "*SHP-77*" in text.split("BSN", 1)[1].split("~", 1)[0] + "*"
    detail = await (await client.get(f"/api/v1/messages/{body['message_id']}", headers=TOKEN)).json()
    assert detail["direction"] == "out" and detail["status"] == "queued"
    assert [o["channel"] for o in detail["outbox"]] == ["mailbox"]
    assert (
        detail["documents"][0]["kind"] == "shipment" and detail["documents"][0]["business_number"] == "SHP-77"
    )
    # The stored interchange reads back as the same shipment.
    from io import BytesIO

    from translators.engine import translate

    lookup = client.app[PARTNERS].current
    sets = [
        s
        for s in translate(BytesIO(text.encode()), partners=_AsPartner(lookup.get("acme")), partner_id="acme")
        if hasattr(s, "document")
    ]
    assert sets[0].accepted and sets[0].document.document.shipment_id == "SHP-77"


class _AsPartner:
    """Reading our own outbound back: every address is the partner's profile."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile

    def get(self, partner_id: str) -> Any:
        return self.profile

    def by_interchange(self, qualifier: str, interchange_id: str) -> Any:
        return self.profile


async def test_validation_errors_name_fields_and_partner(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    bad = invoice()
    bad["lines"][0]["quantity"] = "many"
    resp = await send(client, "invoices", "nobody", bad)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed"
    locs = {f["loc"] for f in error["fields"]}
    assert "partner_id" in locs and "document.lines.0.quantity" in locs
    assert (
        await client.post("/api/v1/invoices", json={"partner_id": "acme", "document": invoice()})
    ).status == 401
    wrong = await client.post(
        "/api/v1/invoices",
        json={"partner_id": "acme", "document": invoice()},
        headers={"Authorization": "Bearer nope"},
    )
    assert wrong.status == 401


async def test_idempotency_key_returns_first_message_and_refuses_other_document(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    first = await send(client, "order-acks", "acme", order_ack(), key="ack-1")
    again = await send(client, "order-acks", "acme", order_ack(), key="ack-1")
    assert first.status == 202 and again.status == 200
    assert (await again.json())["message_id"] == (await first.json())["message_id"]
    changed = order_ack()
    changed["po_number"] = "OTHER"
    assert (await send(client, "order-acks", "acme", changed, key="ack-1")).status == 409
    async with client.app[DATABASE].read() as conn:
        assert len((await conn.execute(select(OutboxItem.id))).all()) == 1


async def test_control_numbers_unique_and_increasing_across_concurrency_and_restart(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, database_url)
    answers = await asyncio.gather(*(send(client, "invoices", "acme", invoice()) for _ in range(20)))
    bodies = [await a.json() for a in answers]
    assert [a.status for a in answers] == [202] * 20, bodies
    numbers = sorted(int(b["interchange_control"]) for b in bodies)
    assert numbers == list(range(1, 21))
    await client.close()
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, database_url)
    resp = await send(client, "invoices", "acme", invoice())
    assert (await resp.json())["interchange_control"] == "000000021"


async def test_rest_channel_delivers_retries_dead_letters_and_replays(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, partner_server: FakePartner
) -> None:
    add_rest_partner(partners_dir, partner_server.url)
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    delivery = client.app[DELIVERY]
    partner_server.fail_with = [503]
    message_id = (await (await send(client, "shipments", "initech", shipment())).json())["message_id"]
    await delivery.run_until_idle()
    assert await status_of(client, message_id) == "queued" and not partner_server.received
    clock.advance(3600)
    await delivery.run_until_idle()
    assert await status_of(client, message_id) == "sent"
    [(key, count)] = partner_server.received.items()
    assert (
        count == 1
        and partner_server.bodies[key].startswith("ISA*")
        and "ST*856*0001~" in partner_server.bodies[key]
    )
    assert partner_server.content_types[-1] == "application/edi-x12"

    partner_server.fail_with = [400]
    second = (await (await send(client, "invoices", "initech", invoice())).json())["message_id"]
    await delivery.run_until_idle()
    assert await status_of(client, second) == "failed"
    [dead] = (await (await client.get("/api/v1/dead-letters", headers=TOKEN)).json())["items"]
    assert (
        dead["type"] == "partner_delivery"
        and dead["message_id"] == second
        and "HTTP 400" in dead["last_error"]
    )
    assert (await client.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=TOKEN)).status == 202
    await delivery.run_until_idle()
    assert await status_of(client, second) == "sent"
    detail = await (await client.get(f"/api/v1/messages/{second}", headers=TOKEN)).json()
    assert [(a["target"], a["outcome"], a["status_code"]) for a in detail["delivery_attempts"]] == [
        ("partner", "dead", 400),
        ("partner", "delivered", 200),
    ]


async def test_partner_997_reconciles_and_silence_becomes_overdue(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    ids, groups = [], []
    for _ in range(3):
        body = await (await send(client, "shipments", "acme", shipment())).json()
        ids.append(body["message_id"])
        groups.append(body["group_control"])
    # The partner fetches all three from its mailbox.
    items = (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    for item in items:
        assert (
            await client.delete(f"/partners/acme/outbox/{item['id']}", headers=auth(ACME_KEY))
        ).status == 204
    assert {await status_of(client, m) for m in ids} == {"sent"}
    # An accepting 997 for the first, a rejecting one for the second, nothing for the third.
    for n, (group, code) in enumerate([(groups[0], "A"), (groups[1], "R")]):
        resp = await client.post(
            "/partners/acme/edi",
            data=functional_ack(group, code=code, control=900 + n),
            headers=auth(ACME_KEY),
        )
        assert resp.status == 202
    await client.app[PIPELINE].run_until_idle()
    assert [await status_of(client, m) for m in ids] == ["accepted", "rejected", "sent"]
    clock.advance(timedelta(hours=25).total_seconds())
    late = await mark_overdue(client.app[DATABASE], client.app[PARTNERS], now=clock())
    assert late == [ids[2]]
    assert await status_of(client, ids[2]) == "overdue"
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert "gateway_acks_overdue 1" in metrics
    listed = await (await client.get("/api/v1/messages?direction=out&status=overdue", headers=TOKEN)).json()
    assert [m["id"] for m in listed["items"]] == [ids[2]]
    detail = await (await client.get(f"/api/v1/messages/{ids[1]}", headers=TOKEN)).json()
    assert detail["acks"]["received"][0]["state"] == "rejected"
