"""The console's message page over real HTTP: the segments a 997 points at are
highlighted when the 997 travels beside a TA1, a large message shows sets
translated / total while it is translated, an AS2 send shows its MDN status (overdue
after ``[as2] mdn_overdue_minutes``), and a UTF-8 payload reads as UTF-8."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from as2peer import THEIR_AS2, FakeAs2Partner, add_as2_partner, as2_settings
from conftest import ACME_KEY, GLOBEX_KEY, auth, make_settings
from gwsamples import broken_850, order_850
from sqlalchemy import select
from test_as2_receive import as2_messages, outgoing
from test_as2_receive import make_client as as2_client
from test_as2_receive import post as as2_post
from test_as2_send import post_shipment
from test_console import PASSWORD, login
from test_erp import Clock
from test_large_messages import many
from test_orders import ack_997, an_810, an_856, fetch_mailbox, receive
from test_orders import order_850 as orders_850
from test_orders import post as post_doc
from test_outbound import app_client
from test_service_pipeline import RecordingErp

import as2
from gateway import users
from gateway.app import DATABASE, DELIVERY, PIPELINE, Overrides, build_app
from gateway.db.models import Document


async def console_client(aiohttp_client: Any, tmp_path: Path, partners_dir: Path, **sections: Any) -> Any:
    settings = make_settings(tmp_path, partners_dir, None, **sections)
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=RecordingErp())))
    await users.add_user(client.app[DATABASE], "victor", "viewer", PASSWORD, now=datetime.now(UTC))
    assert (await login(client, "victor")).status == 303
    return client


async def post(client: Any, partner: str, key: str, body: bytes) -> str:
    resp = await client.post(f"/partners/{partner}/edi", data=body, headers=auth(key))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


def pointed(html: str) -> list[str]:
    """The raw segments the page highlights."""
    return re.findall(r'<li class="pointed"[^>]*><code>([^<]*)</code>', html)


async def test_the_997_beside_a_ta1_points_at_the_bad_segment(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await console_client(aiohttp_client, tmp_path, partners_dir)
    message_id = await post(client, "globex", GLOBEX_KEY, broken_850("GLOBEX", 41))  # globex: ta1 = "always"
    await client.app[PIPELINE].run_until_idle()
    html = await (await client.get(f"/ui/messages/{message_id}")).text()
    assert pointed(html) == ["BEG*00*SA*PO-1001-1**20241399"]
    detail = await (
        await client.get(
            f"/api/v1/messages/{message_id}", headers={"Authorization": "Bearer internal-test-token"}
        )
    ).json()
    # one interchange holding the TA1 and the 997: named by its most specific kind
    assert [a["kind"] for a in detail["acks"]["issued"]] == ["997"]


async def test_a_large_message_shows_sets_translated_of_total_while_translated(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    release = tmp_path / "release"
    (partners_dir / "acme" / "hooks.py").write_text(  # holds translation until the test lets go
        "import pathlib, time\n"
        "def inbound(document, context):\n"
        "    if document['document']['po_number'] == 'PO-20-1':\n"
        "        deadline = time.monotonic() + 120\n"
        f"        while not pathlib.Path({str(release)!r}).exists() and time.monotonic() < deadline:\n"
        "            time.sleep(0.05)\n"
    )
    client = await console_client(
        aiohttp_client, tmp_path, partners_dir, pipeline={"workers": 0, "translate_processes": 0}
    )
    message_id = await post(client, "acme", ACME_KEY, many("ACME", 40, 10))
    translating = asyncio.ensure_future(client.app[PIPELINE].run_until_idle())
    try:
        shown = None
        for _ in range(1200):  # a safety stop, not a timing: the hook holds translation meanwhile
            html = await (await client.get(f"/ui/messages/{message_id}")).text()
            shown = re.search(r"Translating: ([\d,]+) of ([\d,]+) transaction sets", html)
            if shown:
                break
            await asyncio.sleep(0.1)
        assert shown is not None, "no progress on the page while the hook held translation"
        assert shown.group(2) == "400" and 0 < int(shown.group(1)) <= 400
        assert '<progress id="progress-bar"' in html and 'max="400"' in html
        assert 'data-refresh="5"' in html  # the page refreshes itself meanwhile
    finally:
        release.touch()
        await translating
    html = await (await client.get(f"/ui/messages/{message_id}")).text()
    assert 'data-testid="progress"' not in html and "Canonical documents (400)" in html


async def test_the_raw_payload_reads_utf8_as_utf8(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await console_client(aiohttp_client, tmp_path, partners_dir)
    body = order_850("ACME", 42).replace(b"STORE 42", "CAFÉ 42".encode())
    message_id = await post(client, "acme", ACME_KEY, body)
    await client.app[PIPELINE].run_until_idle()
    html = await (await client.get(f"/ui/messages/{message_id}")).text()
    assert "<code>N1*ST*CAFÉ 42*92*0042</code>" in html


async def test_an_as2_send_shows_its_mdn_and_overdue_after_the_configured_minutes(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    us: as2.KeyPair,
    them: as2.KeyPair,
    peer: FakeAs2Partner,
) -> None:
    add_as2_partner(partners_dir, them, url=peer.url, delivery=True, mdn="async")
    client = await console_client(
        aiohttp_client,
        tmp_path,
        partners_dir,
        as2={**as2_settings(tmp_path, us), "mdn_overdue_minutes": 0.002},  # 0.12 s
        outbound={"workers": 0},
    )
    message_id = await post_shipment(client)
    await client.app[DELIVERY].run_until_idle()
    await asyncio.sleep(0.3)
    html = await (await client.get(f"/ui/messages/{message_id}")).text()
    assert re.search(r"856 \d{9} via as2: sent at [\d: -]+, 1 attempt\(s\)", html), html
    assert '<span class="badge mdn-overdue" data-testid="mdn">overdue</span>' in html

    [late] = peer.async_mdns  # the MDN that finally comes settles it
    assert (await client.post("/as2", data=late.content, headers=dict(late.headers))).status == 200
    html = await (await client.get(f"/ui/messages/{message_id}")).text()
    assert '<span class="badge mdn-processed" data-testid="mdn">processed</span>' in html


async def test_the_root_address_leads_a_browser_to_the_console(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir)))
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/ui/"


async def test_the_dashboard_counts_an_asn_its_partner_rejected_as_acknowledged(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    """Today's figures after an 850, two ASNs (one accepted, one rejected by ACME's 997)
    and an invoice: a rejecting 997 is an acknowledgment, and is named."""
    clock = Clock()
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    await users.add_user(client.app[DATABASE], "victor", "viewer", PASSWORD, now=clock())
    await receive(client, orders_850(601))
    shipped = [await post_doc(client, "shipments", an_856(f"SH-{n}", [("1", "A-1", "5")])) for n in (1, 2)]
    await post_doc(client, "invoices", an_810("INV-9", [("1", "A-1", "10", "2.00")]))
    await fetch_mailbox(client)
    for n, (sent, code) in enumerate(zip(shipped, ("A", "R"), strict=True)):
        async with client.app[DATABASE].read() as conn:
            group = (
                await conn.execute(
                    select(Document.group_control).where(Document.message_id == sent["message_id"])
                )
            ).scalar_one()
        await receive(client, ack_997("SH", "856", group, 910 + n, code=code))
    assert (await login(client, "victor")).status == 303
    html = await (await client.get("/ui/")).text()
    figures = dict(re.findall(r'data-testid="([a-z-]+-today)">(.*?)</dd>', html))
    assert figures["orders-today"] == "1"
    assert figures["asns-today"] == '2 / 2 <span class="badge status-rejected">1 rejected</span>'
    assert figures["invoices-today"] == "1"


async def test_the_search_box_finds_an_as2_message_id_with_or_without_brackets(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    client = await as2_client(aiohttp_client, tmp_path, partners_dir, us, them, RecordingErp())
    await users.add_user(client.app[DATABASE], "victor", "viewer", PASSWORD, now=datetime.now(UTC))
    message = outgoing(them, us, order_850(THEIR_AS2, 8))
    assert (await as2_post(client, message)).status == 200
    [stored] = await as2_messages(client)
    assert stored.transport_id == f"<{message.message_id}>"  # as the Message-ID header holds it
    assert (await login(client, "victor")).status == 303
    for term in (message.message_id, f"<{message.message_id}>"):
        html = await (await client.get("/ui/search", params={"q": term})).text()
        assert f'data-testid="result" href="/ui/messages/{stored.id}"' in html, term
