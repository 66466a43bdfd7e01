"""AS2 send end to end: our outbound 856 and our 997s go through the OutboxSender
and ``As2Transport`` to a real AS2 server built with pyas2lib (loopback), which
opens them and answers a signed synchronous MDN; we verify it (signature, MIC,
disposition) before marking the item sent. An error MDN is a dead letter with its
text; a 503 is retried."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from as2peer import THEIR_AS2, FakeAs2Partner, add_as2_partner, as2_settings, tls_server
from conftest import make_settings
from gwsamples import order_850
from test_outbound import shipment, status_of
from test_service_pipeline import RecordingErp, settle

import as2
from gateway.app import DELIVERY, Overrides, build_app

TOKEN = {"Authorization": "Bearer internal-test-token"}


async def make_client(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    us: as2.KeyPair,
    them: as2.KeyPair,
    peer: FakeAs2Partner,
    database_url: str | None = None,
    **profile: Any,
) -> Any:
    add_as2_partner(partners_dir, them, url=peer.url, delivery=True, **profile)
    settings = make_settings(
        tmp_path,
        partners_dir,
        database_url,
        as2=as2_settings(tmp_path, us),
        outbound={"workers": 0, "retry_base_seconds": 10, "max_attempts": 3},
    )
    return await aiohttp_client(build_app(settings, overrides=Overrides(sink=RecordingErp())))


Connect = Callable[..., Awaitable[Any]]


@pytest.fixture
def connect(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, us: as2.KeyPair, them: as2.KeyPair
) -> Connect:
    """``await connect(peer, database_url=None, **profile)``: :func:`make_client` with
    this test's folders and keys."""

    async def connected(peer: FakeAs2Partner, database_url: str | None = None, **profile: Any) -> Any:
        return await make_client(
            aiohttp_client, tmp_path, partners_dir, us, them, peer, database_url, **profile
        )

    return connected


@contextlib.asynccontextmanager
async def tls_peer(
    us: as2.KeyPair, them: as2.KeyPair, context: ssl.SSLContext
) -> AsyncIterator[FakeAs2Partner]:
    """A partner answering AS2 over HTTPS with ``context``, for the block."""
    peer = FakeAs2Partner(us, them, tls=context)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


async def send_shipment(client: Any) -> str:
    """Post a shipment and let the outbox send it: its message id."""
    message_id = await post_shipment(client)
    await client.app[DELIVERY].run_until_idle()
    return message_id


async def post_shipment(client: Any) -> str:
    resp = await client.post(
        "/api/v1/shipments", json={"partner_id": "holdretail", "document": shipment()}, headers=TOKEN
    )
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def with_mdn(client: Any, status: str) -> list[str]:
    """The ids of the messages the API finds with ``mdn=status``."""
    resp = await client.get("/api/v1/messages", params={"mdn": status}, headers=TOKEN)
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["items"]]


async def mdn_of(client: Any, message_id: str) -> dict[str, Any] | None:
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    [item] = [o for o in detail["outbox"] if o["channel"] == "as2"]
    return item["mdn"]  # type: ignore[no-any-return]


async def timeline(client: Any, message_id: str) -> list[dict[str, Any]]:
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    return list(detail["timeline"])


async def details(client: Any, message_id: str, state: str) -> list[dict[str, Any]]:
    """The details of the message's timeline events in ``state``, in order."""
    return [e["detail"] for e in await timeline(client, message_id) if e["state"] == state]


@pytest.mark.parametrize(
    "profile",
    [
        {},
        {"compress": True, "signature_algorithm": "sha512", "encryption_algorithm": "3des"},
        {"encryption_algorithm": "aes128-cbc", "signature_algorithm": "sha1"},
        {
            "micalg_spelling": "sha256",
            "content_transfer_encoding": "base64",
            "quote_parameters": False,
            "compress": True,
            "compression_order": "after-signing",
        },
    ],
    ids=["default", "compressed-sha512-3des", "sha1-aes128", "compatibility-switches"],
)
async def test_outbound_856_is_sent_over_as2_and_the_mdn_verified(
    connect: Connect, peer: FakeAs2Partner, profile: dict[str, Any]
) -> None:
    client = await connect(peer, **profile)
    message_id = await send_shipment(client)
    assert peer.statuses == ["processed"]
    [payload] = peer.received
    assert payload.startswith(b"ISA*") and b"ST*856*0001~" in payload
    assert await status_of(client, message_id) == "sent"
    events = await timeline(client, message_id)
    [mdn] = [e["detail"] for e in events if e["state"] == "mdn_received"]
    assert mdn["mic_matches"] and mdn["signature_verified"] and mdn["disposition"].endswith("processed")
    assert mdn["message_id"] == peer.message_ids[0]
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    assert [o["channel"] for o in detail["outbox"]] == ["as2"]
    [item] = detail["outbox"]
    assert item["mdn"]["status"] == "processed" and item["mdn"]["detail"].endswith("processed")
    assert await with_mdn(client, "processed") == [message_id]
    assert await with_mdn(client, "pending") == [] and await with_mdn(client, "error") == []


async def test_our_997_for_an_as2_order_goes_back_over_as2(
    connect: Connect, peer: FakeAs2Partner, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    from as2peer import pyas2, their_org, us_as_partner

    client = await connect(peer)
    order = pyas2.Message(
        their_org(them), us_as_partner(us, sign=True, encrypt=True, mdn_mode="SYNC", mdn_digest_alg="sha256")
    )
    order.build(order_850(THEIR_AS2, 31), content_type="application/edi-x12")
    resp = await client.post("/as2", data=order.content, headers=dict(order.headers))
    assert resp.status == 200
    await settle(client)
    await client.app[DELIVERY].run_until_idle()
    assert peer.statuses == ["processed"]
    [ack] = peer.received
    assert b"ST*997*" in ack and b"AK1*PO*31" in ack


async def test_error_mdn_is_a_dead_letter_with_its_text_and_503_is_retried(
    connect: Connect, peer: FakeAs2Partner, database_url: str | None
) -> None:
    client = await connect(peer, database_url)
    peer.fail_with = [503]
    first = await send_shipment(client)
    assert await status_of(client, first) == "queued" and not peer.statuses

    # the partner verifies our signature against a certificate that is not ours
    peer.verify_with = as2.generate_self_signed("not-ours")
    second = await send_shipment(client)
    assert await status_of(client, second) == "failed"
    [dead] = (await (await client.get("/api/v1/dead-letters", headers=TOKEN)).json())["items"]
    assert dead["message_id"] == second and "authentication-failed" in dead["last_error"]
    [mdn] = await details(client, second, "mdn_received")
    assert "error" in mdn["disposition"]
    status = await mdn_of(client, second)
    assert status is not None and status["status"] == "error" and "authentication-failed" in status["detail"]
    assert await mdn_of(client, first) is None  # 503: no MDN read yet
    assert await with_mdn(client, "error") == [second]


async def test_async_mdn_arriving_later_is_recorded_and_an_error_one_fails_the_message(
    connect: Connect, peer: FakeAs2Partner
) -> None:
    client = await connect(peer, mdn="async")
    first = await send_shipment(client)
    assert await status_of(client, first) == "sent" and peer.statuses == ["processed"]
    [mdn] = peer.async_mdns
    assert mdn.mdn_url == "http://127.0.0.1:1/as2"  # our [as2] public_url
    assert (await mdn_of(client, first) or {})["status"] == "pending"
    assert await with_mdn(client, "pending") == [first] and await with_mdn(client, "overdue") == []
    resp = await client.post("/as2", data=mdn.content, headers=dict(mdn.headers))
    assert resp.status == 200 and await resp.read() == b""
    [event] = await details(client, first, "mdn_received")
    assert event["async"] and event["mic_matches"] and event["signature_verified"]
    assert await status_of(client, first) == "sent"
    settled = await mdn_of(client, first)
    assert settled is not None and settled["status"] == "processed" and settled["at"] is not None

    # a forged (unsigned) error MDN for the same message is recorded, and changes nothing
    forged = as2.build_mdn(
        original_message_id=peer.message_ids[0],
        final_recipient=THEIR_AS2,
        disposition=as2.Disposition.for_error(as2.DispositionModifier.DECRYPTION_FAILED),
    )
    headers = {**forged.headers, "AS2-From": THEIR_AS2, "AS2-To": "OURCOMPANY", "Message-ID": "<forged@x>"}
    assert (await client.post("/as2", data=forged.body, headers=headers)).status == 200
    assert await status_of(client, first) == "sent"
    events = await details(client, first, "mdn_received")
    assert len(events) == 2 and events[1]["signature_verified"] is None
    assert (await mdn_of(client, first) or {})["status"] == "processed"  # the forgery settles nothing

    peer.verify_with = as2.generate_self_signed("not-ours")
    second = await send_shipment(client)
    refusal = peer.async_mdns[-1]
    resp = await client.post("/as2", data=refusal.content, headers=dict(refusal.headers))
    assert resp.status == 200
    assert await status_of(client, second) == "failed"
    [event] = await details(client, second, "mdn_received")
    assert "authentication-failed" in event["disposition"]
    refused = await mdn_of(client, second)
    assert (
        refused is not None and refused["status"] == "error" and "authentication-failed" in refused["detail"]
    )
    assert await with_mdn(client, "error") == [second] and await with_mdn(client, "processed") == [first]


async def test_https_partner_with_a_ca_bundle_from_the_profile(
    connect: Connect, tmp_path: Path, partners_dir: Path, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    context, ca = tls_server(tmp_path / "tls")
    async with tls_peer(us, them, context) as peer:
        (partners_dir / "holdretail" / "tls").mkdir(parents=True)
        (partners_dir / "holdretail" / "tls" / "ca.pem").write_bytes(ca.read_bytes())
        client = await connect(peer, ca_bundle="tls/ca.pem")
        message_id = await send_shipment(client)
        assert peer.url.startswith("https://") and peer.statuses == ["processed"]
        assert await status_of(client, message_id) == "sent"


async def test_https_partner_not_trusted_without_its_ca_is_retried(
    connect: Connect, tmp_path: Path, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    context, _ = tls_server(tmp_path / "tls")
    async with tls_peer(us, them, context) as peer:
        client = await connect(peer)
        message_id = await send_shipment(client)
        assert peer.statuses == [] and await status_of(client, message_id) == "queued"


async def test_https_partner_requiring_a_client_certificate(
    connect: Connect, tmp_path: Path, partners_dir: Path, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    context, ca = tls_server(tmp_path / "tls")
    client_pair = as2.generate_self_signed("ourcompany-tls-client")
    key_pem, cert_pem = as2.key_pair_pem(client_pair)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=cert_pem.decode())
    async with tls_peer(us, them, context) as peer:
        folder = partners_dir / "holdretail" / "tls"
        folder.mkdir(parents=True)
        (folder / "ca.pem").write_bytes(ca.read_bytes())
        (folder / "client.pem").write_bytes(cert_pem)
        (folder / "client.key").write_bytes(key_pem)
        client = await connect(
            peer, ca_bundle="tls/ca.pem", client_certificate="tls/client.pem", client_key="tls/client.key"
        )
        message_id = await send_shipment(client)
        assert peer.statuses == ["processed"] and await status_of(client, message_id) == "sent"


async def test_mdn_none_is_sent_on_http_2xx(connect: Connect, peer: FakeAs2Partner) -> None:
    client = await connect(peer, mdn="none")
    message_id = await send_shipment(client)
    assert peer.statuses == ["processed"] and await status_of(client, message_id) == "sent"
    [sent] = await details(client, message_id, "as2_sent")
    assert sent["mdn"] == "none" and sent["message_id"] == peer.message_ids[0]
    assert await mdn_of(client, message_id) is None  # none asked for: no MDN status


async def test_an_async_mdn_that_does_not_come_is_overdue(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    us: as2.KeyPair,
    them: as2.KeyPair,
    peer: FakeAs2Partner,
) -> None:
    add_as2_partner(partners_dir, them, url=peer.url, delivery=True, mdn="async")
    settings = make_settings(
        tmp_path,
        partners_dir,
        None,
        as2={**as2_settings(tmp_path, us), "mdn_overdue_minutes": 0.002},  # 0.12 s
        outbound={"workers": 0},
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=RecordingErp())))
    message_id = await send_shipment(client)
    await asyncio.sleep(0.3)
    assert (await mdn_of(client, message_id) or {})["status"] == "overdue"
    assert await with_mdn(client, "overdue") == [message_id] and await with_mdn(client, "pending") == []
    resp = await client.get("/api/v1/messages", params={"mdn": "late"}, headers=TOKEN)
    assert resp.status == 400 and "overdue" in (await resp.json())["error"]["message"]

    # the MDN that finally comes settles it
    [late] = peer.async_mdns
    assert (await client.post("/as2", data=late.content, headers=dict(late.headers))).status == 200
    assert (await mdn_of(client, message_id) or {})["status"] == "processed"
    assert await with_mdn(client, "overdue") == []
