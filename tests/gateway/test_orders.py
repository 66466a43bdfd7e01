"""The order lifecycle through the service (real HTTP, SQLite and PostgreSQL):
a partner's 850, our 855, two partial 856s and an 810 posted by the ERP, the
partner's 997s; the order's endpoint at each step (docs/orders.md)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth
from sqlalchemy import select
from test_erp import Clock
from test_outbound import TOKEN, app_client, invoice, send, shipment

from gateway.app import DATABASE, PIPELINE
from gateway.db.models import Document, DocumentKey

PO = "PO-7700"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def order_850(
    control: int,
    *,
    po: str = PO,
    purpose: str = "00",
    lines: tuple[tuple[str, str, str, str], ...] = (("1", "10", "2.00", "A-1"), ("2", "5", "4.00", "A-2")),
    extra: tuple[str, ...] = (),
) -> bytes:
    """An 850 from ACME with the given (line number, quantity, price, vendor item) lines;
    ``extra`` segments (DTM...) after its BEG."""
    body = ["ST*850*0001", f"BEG*{purpose}*SA*{po}**20240312", *extra, "N1*ST*STORE 42*92*0042"]
    body += [f"PO1*{n}*{q}*EA*{p}*PE*VN*{item}" for n, q, p, item in lines]
    body += [f"CTT*{len(lines)}", f"SE*{len(body) + 2}*0001"]
    segments = [
        f"ISA*00*          *00*          *ZZ*ACME           *ZZ*OURCOMPANY     *240315*1402*U*00401*{control:09d}*0*P*>",
        f"GS*PO*ACME*OURCOMPANY*20240315*1402*{control}*X*004010",
        *body,
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]
    return ("~\n".join(segments) + "~\n").encode()


def ack_997(functional_id: str, set_id: str, group_control: str, control: int, code: str = "A") -> bytes:
    """ACME's 997 about our group ``group_control`` (one set ``0001``)."""
    segments = [
        f"ISA*00*          *00*          *ZZ*ACME           *ZZ*OURCOMPANY     *240316*0900*U*00401*{control:09d}*0*P*>",
        f"GS*FA*ACME*OURCOMPANY*20240316*0900*{control}*X*004010",
        "ST*997*0001",
        f"AK1*{functional_id}*{group_control}",
        f"AK2*{set_id}*0001",
        f"AK5*{code}",
        f"AK9*{code}*1*1*{1 if code == 'A' else 0}",
        "SE*6*0001",
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]
    return ("~\n".join(segments) + "~\n").encode()


def an_855(po: str = PO) -> dict[str, Any]:
    return {
        "po_number": po,
        "ack_type": "AC",
        "po_date": "2024-03-12",
        "ack_date": "2024-03-15",
        "lines": [
            {
                "line_number": "1",
                "quantity": "10",
                "uom": "EA",
                "unit_price": "2.00",
                "product_ids": {"vendor_item": "A-1"},
                "status": "IA",
            },
            {
                "line_number": "2",
                "quantity": "5",
                "uom": "EA",
                "unit_price": "4.00",
                "product_ids": {"vendor_item": "A-2"},
                "status": "IA",
            },
        ],
    }


def an_856(shipment_id: str, items: list[tuple[str | None, str, str]], po: str = PO) -> dict[str, Any]:
    """A shipment of (line number, vendor item, quantity) against ``po``."""
    doc = copy.deepcopy(shipment())
    doc["shipment_id"] = shipment_id
    doc["carrier"]["tracking_number"] = f"1Z-{shipment_id}"
    doc["orders"] = [
        {
            "po_number": po,
            "po_date": None,
            "tares": [],
            "packs": [],
            "items": [
                {"line_number": n, "product_ids": {"vendor_item": item}, "quantity_shipped": q, "uom": "EA"}
                for n, item, q in items
            ],
        }
    ]
    return doc


def an_810(number: str, lines: list[tuple[str | None, str, str, str]], po: str = PO) -> dict[str, Any]:
    """An invoice of (line number, vendor item, quantity, unit price) against ``po``."""
    doc = copy.deepcopy(invoice())
    doc.update(invoice_number=number, po_number=po, allowances_charges=[], currency="USD")
    doc["lines"] = [
        {
            "line_number": n,
            "quantity": q,
            "uom": "EA",
            "unit_price": p,
            "product_ids": {"vendor_item": item},
            "description": None,
            "allowances_charges": [],
        }
        for n, item, q, p in lines
    ]
    doc["total_amount"] = str(sum(float(q) * float(p) for _, _, q, p in lines))
    return doc


async def receive(client: Any, data: bytes) -> str:
    resp = await client.post("/partners/acme/edi", data=data, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    await client.app[PIPELINE].run_until_idle()
    return str((await resp.json())["message_id"])


async def post(client: Any, route: str, document: dict[str, Any]) -> dict[str, Any]:
    resp = await send(client, route, "acme", document)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def order(client: Any, po: str = PO, partner: str = "acme") -> dict[str, Any]:
    resp = await client.get(f"/api/v1/orders/{partner}/{po}", headers=TOKEN)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def quantities(view: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (line["line_number"], line["ordered"], line["shipped"], line["invoiced"]) for line in view["lines"]
    ]


async def fetch_mailbox(client: Any) -> None:
    """ACME fetches everything waiting for it: our outbound becomes ``sent``."""
    items = (await (await client.get("/partners/acme/outbox", headers=auth(ACME_KEY))).json())["items"]
    for item in items:
        assert (
            await client.delete(f"/partners/acme/outbox/{item['id']}", headers=auth(ACME_KEY))
        ).status == 204


async def test_a_whole_order_chain(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock, database_url)
    assert (await client.get(f"/api/v1/orders/acme/{PO}", headers=TOKEN)).status == 404
    inbound = await receive(client, order_850(501))
    view = await order(client)
    assert view["state"] == "received" and view["partner_id"] == "acme" and view["po_number"] == PO
    assert quantities(view) == [("1", "10", "0", "0"), ("2", "5", "0", "0")]
    assert view["lines"][0]["product_ids"] == {"vendor_item": "A-1"}
    [doc] = view["documents"]
    assert (doc["kind"], doc["direction"], doc["business_number"], doc["message_id"]) == (
        "order",
        "in",
        PO,
        inbound,
    )
    assert doc["at"] == clock.now.isoformat()
    # Our 997 about their 850 is part of the chain.
    assert [(a["kind"], a["direction"], a["about_message_id"]) for a in view["acknowledgments"]] == [
        ("997", "out", inbound)
    ]

    groups: dict[str, tuple[str, str]] = {}
    ack = await post(client, "order-acks", an_855())
    groups[ack["message_id"]] = ("PR", "855")
    assert (await order(client))["state"] == "acknowledged"

    clock.advance(3600)
    first = await post(client, "shipments", an_856("SH-1", [("1", "A-1", "6")]))
    groups[first["message_id"]] = ("SH", "856")
    view = await order(client)
    assert view["state"] == "partially_shipped"
    assert quantities(view) == [("1", "10", "6", "0"), ("2", "5", "0", "0")]

    second = await post(client, "shipments", an_856("SH-2", [("1", "A-1", "4"), (None, "A-2", "5")]))
    groups[second["message_id"]] = ("SH", "856")
    view = await order(client)
    assert view["state"] == "shipped"
    assert quantities(view) == [("1", "10", "10", "0"), ("2", "5", "5", "0")]

    clock.advance(3600)
    bill = await post(
        client, "invoices", an_810("INV-1", [("1", "A-1", "10", "2.00"), ("2", "A-2", "5", "4.00")])
    )
    groups[bill["message_id"]] = ("IN", "810")
    view = await order(client)
    assert view["state"] == "invoiced"  # until the partner accepts what we sent
    assert quantities(view) == [("1", "10", "10", "10"), ("2", "5", "5", "5")]
    assert [(d["kind"], d["direction"]) for d in view["documents"]] == [
        ("order", "in"),
        ("order_ack", "out"),
        ("shipment", "out"),
        ("shipment", "out"),
        ("invoice", "out"),
    ]

    await fetch_mailbox(client)
    for n, message_id in enumerate(
        [ack["message_id"], first["message_id"], second["message_id"], bill["message_id"]]
    ):
        functional_id, set_id = groups[message_id]
        async with client.app[DATABASE].read() as conn:
            group = (
                await conn.execute(select(Document.group_control).where(Document.message_id == message_id))
            ).scalar_one()
        await receive(client, ack_997(functional_id, set_id, group, 900 + n))
    view = await order(client)
    assert view["state"] == "closed", view
    assert view["exceptions"] == []
    theirs = [a for a in view["acknowledgments"] if a["direction"] == "in"]
    assert len(theirs) == 4 and {a["status"] for a in theirs} == {"accepted"}
    assert all(a["kind"] == "997" and a["message_id"] for a in theirs)

    # Linked by every key it carries: the second ASN by its tracking number and shipment id.
    async with client.app[DATABASE].read() as conn:
        keys = set(
            (
                await conn.execute(
                    select(DocumentKey.key_kind, DocumentKey.value)
                    .join(Document, Document.id == DocumentKey.document_id)
                    .where(Document.message_id == second["message_id"])
                )
            ).all()
        )
    assert {
        ("po", PO),
        ("shipment", "SH-2"),
        ("tracking", "1Z-SH-2"),
        ("group", second["group_control"]),
        ("interchange", str(int(second["interchange_control"]))),
    } <= keys

    listed = await (await client.get("/api/v1/orders?partner_id=acme&state=closed", headers=TOKEN)).json()
    assert [(o["po_number"], o["state"], o["open_exceptions"]) for o in listed["items"]] == [
        (PO, "closed", 0)
    ]
    assert listed["next"] is None
    assert (await (await client.get("/api/v1/exceptions", headers=TOKEN)).json()) == {
        "items": [],
        "next": None,
    }


async def test_one_asn_links_three_orders_and_po_numbers_are_per_partner(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    for n, po in enumerate(["PO-A", "PO-B", "PO-C"]):
        await receive(client, order_850(600 + n, po=po))
    asn = an_856("SH-9", [])
    asn["orders"] = [
        {
            "po_number": po,
            "po_date": None,
            "tares": [],
            "packs": [],
            "items": [
                {
                    "line_number": "1",
                    "product_ids": {"vendor_item": "A-1"},
                    "quantity_shipped": "10",
                    "uom": "EA",
                }
            ],
        }
        for po in ("PO-A", "PO-B", "PO-C")
    ]
    await post(client, "shipments", asn)
    for po in ("PO-A", "PO-B", "PO-C"):
        view = await order(client, po)
        assert view["state"] == "partially_shipped"
        assert quantities(view)[0] == ("1", "10", "10", "0")
    # globex never ordered PO-A.
    resp = await client.get("/api/v1/orders/globex/PO-A", headers=TOKEN)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert (await client.get("/api/v1/orders/acme/PO-A")).status == 401


def _cli(tmp_path: Path, partners_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_DATA_DIR=str(tmp_path / "var"), GATEWAY_PARTNERS_DIR=str(partners_dir))
    return subprocess.run(
        [sys.executable, "-m", "gateway.service_cli", "orders", "show", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_cli_shows_what_the_api_answers(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await receive(client, order_850(1))
    await post(client, "shipments", an_856("SH-1", [("1", "A-1", "6")]))
    view = await order(client)
    shown = _cli(tmp_path, partners_dir, "acme", PO, "--json", "--at", clock.now.isoformat())
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == view
    table = _cli(tmp_path, partners_dir, "acme", PO, "--at", clock.now.isoformat())
    assert table.stdout.startswith(f"order {PO} of acme: partially_shipped\n"), table.stdout
    assert "no exceptions" in table.stdout and "SH-1" in table.stdout
    missing = _cli(tmp_path, partners_dir, "acme", "NOPE")
    assert missing.returncode == 1 and "no order 'NOPE' of partner 'acme'" in missing.stderr


async def test_a_replay_replaces_the_keys_and_the_transport_id_is_one(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    headers = {**auth(ACME_KEY), "X-Request-Id": "req-850-1"}
    resp = await client.post("/partners/acme/edi", data=order_850(1), headers=headers)
    message_id = (await resp.json())["message_id"]
    await client.app[PIPELINE].run_until_idle()

    async def keys() -> list[tuple[str, str]]:
        async with client.app[DATABASE].read() as conn:
            rows = await conn.execute(
                select(DocumentKey.key_kind, DocumentKey.value).order_by(DocumentKey.id)
            )
            return [tuple(r) for r in rows.all()]

    first = await keys()
    assert first == [("po", PO), ("interchange", "1"), ("group", "1"), ("transport", "req-850-1")]
    assert (await client.post(f"/api/v1/messages/{message_id}/replay", headers=TOKEN)).status == 202
    await client.app[PIPELINE].run_until_idle()
    assert await keys() == first
    view = await order(client)
    assert len(view["documents"]) == 1 and view["state"] == "received"
