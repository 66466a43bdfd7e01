"""Our sender id per partner (issue 10, section 5): a partner that addresses us by one
of its profile's ``our_ids`` gets our acknowledgments from that id, and the
documents we send it go out from it too; everyone else hears from ``[identity]``.
End to end through the service: real HTTP in, the outbox's interchange text out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gwsamples import order_850
from sqlalchemy import select
from test_outbound import TOKEN, shipment
from test_service_pipeline import RecordingErp, load, post, settle

from gateway.app import DATABASE, Overrides
from gateway.db.models import OutboxItem

OUR_DUNS = "OURDUNS"


@pytest.fixture
def overrides() -> Overrides:
    return Overrides(sink=RecordingErp())


def envelope(text: str) -> tuple[str, str, str]:
    """(ISA05, ISA06, GS02) of an interchange's text."""
    isa = text[: text.index("GS")].split("*")
    gs = next(line for line in text.split("~") if line.strip().startswith("GS")).strip().split("*")
    return isa[5], isa[6].strip(), gs[2]


async def outbox_text(client: Any, message_id: str) -> str:
    async with client.app[DATABASE].read() as conn:
        payload = (
            await conn.execute(select(OutboxItem.payload).where(OutboxItem.message_id == message_id))
        ).scalar_one()
    return str(payload)


async def test_acks_and_documents_go_out_from_the_id_the_partner_uses(
    client: Any, partners_dir: Path
) -> None:
    profile = partners_dir / "acme" / "profile.toml"
    text = profile.read_text()
    profile.write_text(
        text.replace("[rest]", f'our_ids = [{{ qualifier = "ZZ", id = "{OUR_DUNS}" }}]\n[rest]')
    )
    resp = await client.post("/api/v1/partners/reload", headers=TOKEN)
    assert resp.status == 200, await resp.text()

    # addressed to the id of its profile: the 997 answers from it
    to_duns = await post(client, order_850("ACME", 601, receiver=OUR_DUNS))
    # addressed to our [identity]: the 997 answers from that
    to_identity = await post(client, order_850("ACME", 602))
    await settle(client)
    for message_id in (to_duns, to_identity):
        message, _events, documents, _outbox = await load(client, message_id)
        assert message.status == "acknowledged" and len(documents) == 1
    assert envelope(await outbox_text(client, to_duns)) == ("ZZ", OUR_DUNS, OUR_DUNS)
    assert envelope(await outbox_text(client, to_identity)) == ("ZZ", "OURCOMPANY", "OURCOMPANY")

    # a document we send the partner goes out from the id it knows us by
    resp = await client.post(
        "/api/v1/shipments", json={"partner_id": "acme", "document": shipment()}, headers=TOKEN
    )
    assert resp.status == 202, await resp.text()
    sent = (await resp.json())["message_id"]
    assert envelope(await outbox_text(client, sent)) == ("ZZ", OUR_DUNS, OUR_DUNS)


async def test_a_partner_without_our_ids_hears_from_our_identity(client: Any) -> None:
    resp = await client.post(
        "/api/v1/shipments", json={"partner_id": "globex", "document": shipment()}, headers=TOKEN
    )
    assert resp.status == 202, await resp.text()
    assert envelope(await outbox_text(client, (await resp.json())["message_id"])) == (
        "ZZ",
        "OURCOMPANY",
        "OURCOMPANY",
    )
