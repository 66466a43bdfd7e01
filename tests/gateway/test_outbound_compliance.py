"""Outbound compliance through the service (issue 10, section 5): an invoice whose
total is not its lines and allowances/charges, and a document that breaks the
partner's profile rules (required references, parties, SSCCs on packs) are refused
with a 422 that names what is wrong, and nothing is stored or sent; the partner's
profile switch lets a total that bills otherwise through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_outbound import FIXTURES, TOKEN, shipment
from test_service_pipeline import RecordingErp

from gateway.app import DATABASE, Overrides
from gateway.db.models import Message, OutboxItem


@pytest.fixture
def overrides() -> Overrides:
    return Overrides(sink=RecordingErp())


def as_sent_by_the_partner() -> dict[str, Any]:
    """The credit invoice golden: its TDS01 (-123.45) is not 270.25 - 30.00 + 15.00."""
    return dict(json.loads((FIXTURES / "810_credit_sac.json").read_text()))


async def profile_says(client: Any, partners_dir: Path, extra: str) -> None:
    profile = partners_dir / "acme" / "profile.toml"
    profile.write_text(profile.read_text() + extra)
    resp = await client.post("/api/v1/partners/reload", headers=TOKEN)
    assert resp.status == 200, await resp.text()


async def stored(client: Any) -> tuple[int, int]:
    async with client.app[DATABASE].read() as conn:
        messages = (await conn.execute(select(func.count()).select_from(Message))).scalar_one()
        outbox = (await conn.execute(select(func.count()).select_from(OutboxItem))).scalar_one()
    return int(messages), int(outbox)


async def post(client: Any, route: str, document: dict[str, Any]) -> Any:
    return await client.post(
        f"/api/v1/{route}", json={"partner_id": "acme", "document": document}, headers=TOKEN
    )


async def test_an_invoice_that_does_not_add_up_is_refused_naming_both_totals(
    client: Any, partners_dir: Path
) -> None:
    resp = await post(client, "invoices", as_sent_by_the_partner())
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "total_mismatch"
    assert error["details"] == {
        "expected_total": "255.25",
        "given_total": "-123.45",
        "lines_total": "270.25",
        "allowances": "30.00",
        "charges": "15.00",
    }
    assert error["fields"][0]["loc"] == "document.total_amount"
    assert 'total_check = "allow"' in error["message"]
    assert await stored(client) == (0, 0)

    right = {**as_sent_by_the_partner(), "total_amount": "255.25"}
    assert (await post(client, "invoices", right)).status == 202

    # a partner that bills otherwise: the profile switch lets the total through
    await profile_says(client, partners_dir, '[mapping.invoice]\ntotal_check = "allow"\n')
    resp = await post(client, "invoices", as_sent_by_the_partner())
    assert resp.status == 202, await resp.text()
    assert await stored(client) == (2, 2)


async def test_partner_rules_apply_to_what_we_send(client: Any, partners_dir: Path) -> None:
    await profile_says(
        client,
        partners_dir,
        '[mapping.shipment]\nrequired_references = ["BM"]\nrequired_parties = ["ship_to", "ship_from"]\n'
        "require_sscc = true\n",
    )
    doc = shipment()
    resp = await post(client, "shipments", doc)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "partner_rules"
    assert [f["loc"] for f in error["fields"]] == ["document.carrier", "document.parties"]
    assert "REF*BM" in error["message"] and "ship_from" in error["message"]
    assert await stored(client) == (0, 0)

    # packs without an SSCC on an S-O-P-I partner
    doc["carrier"]["bill_of_lading"] = "BOL-77"
    doc["parties"].append({"role": "ship_from", "name": "OUR DC"})
    doc["orders"][0]["packs"] = [{"sscc": None, "items": doc["orders"][0]["items"]}]
    doc["orders"][0]["items"] = []
    resp = await post(client, "shipments", doc)
    assert resp.status == 422
    assert [f["loc"] for f in (await resp.json())["error"]["fields"]] == ["document.orders.0.packs.0.sscc"]

    doc["orders"][0]["packs"][0]["sscc"] = "00106141412345678908"
    resp = await post(client, "shipments", doc)
    assert resp.status == 202, await resp.text()
    assert await stored(client) == (1, 1)
