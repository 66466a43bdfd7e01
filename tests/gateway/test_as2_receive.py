"""AS2 receive end to end: pyas2lib, as the partner, posts to ``POST /as2`` of the
real app on loopback; the MDN we answer is read back by pyas2lib (signature and MIC)
and by our own parser; the X12 reaches the pipeline and the ERP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from as2peer import (
    OUR_AS2,
    THEIR_AS2,
    add_as2_partner,
    as2_settings,
    http_bytes,
    pyas2,
    their_org,
    us_as_partner,
)
from conftest import make_settings
from gwsamples import order_850
from sqlalchemy import func, select
from test_service_pipeline import RecordingErp, load, settle

import as2
from gateway.app import DATABASE, GATEWAY, RAWSTORE, Overrides, build_app
from gateway.db.models import Message, MessageEvent, OutboxItem

TOKEN = {"Authorization": "Bearer internal-test-token"}


@pytest.fixture(scope="module")
def stranger() -> as2.KeyPair:
    return as2.generate_self_signed("stranger")


@pytest.fixture
def erp() -> RecordingErp:
    return RecordingErp()


async def make_client(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    us: as2.KeyPair,
    them: as2.KeyPair,
    erp: RecordingErp,
    limits: dict[str, int] | None = None,
    database_url: str | None = None,
    outbound: dict[str, Any] | None = None,
    **profile: Any,
) -> Any:
    add_as2_partner(partners_dir, them, **profile)
    settings = make_settings(
        tmp_path,
        partners_dir,
        database_url,
        as2=as2_settings(tmp_path, us),
        limits=limits or {},
        outbound=outbound or {},
    )
    return await aiohttp_client(build_app(settings, overrides=Overrides(sink=erp)))


Connect = Callable[..., Awaitable[Any]]


@pytest.fixture
def connect(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    us: as2.KeyPair,
    them: as2.KeyPair,
    erp: RecordingErp,
) -> Connect:
    """``await connect(limits=, database_url=, outbound=, **profile)``: :func:`make_client`
    with this test's folders, keys and ERP."""

    async def connected(**options: Any) -> Any:
        return await make_client(aiohttp_client, tmp_path, partners_dir, us, them, erp, **options)

    return connected


async def mdn_inbox(aiohttp_server: Any, answer: Callable[[web.Request], Awaitable[web.Response]]) -> str:
    """The URL of a partner's inbox for asynchronous MDNs, answered by ``answer``."""
    inbox = web.Application()
    inbox.router.add_post("/mdn", answer)
    server = await aiohttp_server(inbox)
    return str(server.make_url("/mdn"))


def async_order(them: as2.KeyPair, us: as2.KeyPair, mdn_url: str, number: int) -> Any:
    """A signed, encrypted 850 asking for a signed asynchronous MDN at ``mdn_url``."""
    org = their_org(them)
    org.mdn_url = mdn_url
    message = pyas2.Message(
        org, us_as_partner(us, sign=True, encrypt=True, mdn_mode="ASYNC", mdn_digest_alg="sha256")
    )
    message.build(order_850(THEIR_AS2, number), content_type="application/edi-x12")
    return message


def outgoing(
    them: as2.KeyPair,
    us: as2.KeyPair,
    payload: bytes,
    *,
    signer: as2.KeyPair | None = None,
    encrypt_to: as2.KeyPair | None = None,
    **partner: Any,
) -> Any:
    partner.setdefault("sign", True)
    partner.setdefault("encrypt", True)
    partner.setdefault("mdn_mode", "SYNC")
    partner.setdefault("mdn_digest_alg", "sha256")
    message = pyas2.Message(their_org(signer or them), us_as_partner(us, encrypt_to, **partner))
    message.build(payload, filename="po.edi", content_type="application/edi-x12")
    return message


async def post(client: Any, message: Any, body: bytes | None = None, **extra: str) -> Any:
    headers = {**dict(message.headers), **extra}
    return await client.post("/as2", data=message.content if body is None else body, headers=headers)


async def read_mdn(
    resp: Any, message: Any, them: as2.KeyPair, us: as2.KeyPair
) -> tuple[str, str | None, as2.MdnReport]:
    assert resp.status == 200, await resp.text()
    body = await resp.read()
    status, detail = pyas2.Mdn().parse(
        http_bytes(resp.headers, body), find_message_cb=lambda mid, rcpt: message
    )
    report = as2.parse_mdn(dict(resp.headers), body, partner_certs=[us.certificate])
    return status, detail, report


async def as2_messages(client: Any) -> list[Any]:
    async with client.app[DATABASE].read() as conn:
        return list((await conn.execute(select(Message).where(Message.channel == "as2"))).all())


@pytest.mark.parametrize(
    "security",
    [
        dict(sign=True, encrypt=True),
        dict(sign=True, encrypt=False),
        dict(sign=True, encrypt=True, compress=True),
    ],
    ids=["signed+encrypted", "signed", "compressed"],
)
async def test_pyas2lib_message_is_accepted_mdn_verifies_and_reaches_the_erp(
    connect: Connect, us: as2.KeyPair, them: as2.KeyPair, erp: RecordingErp, security: dict[str, bool]
) -> None:
    profile = {} if security["encrypt"] else {"accept_unencrypted": True}
    client = await connect(**profile)
    message = outgoing(them, us, order_850(THEIR_AS2, 7), **security)
    resp = await post(client, message)
    status, detail, report = await read_mdn(resp, message, them, us)
    assert (status, detail) == ("processed", None)
    assert report.signed and report.signature_verified and report.disposition.ok
    assert report.mic is not None and report.mic.value == message.mic.decode()
    assert resp.headers["AS2-From"] == OUR_AS2 and resp.headers["AS2-To"] == THEIR_AS2
    assert client.app[GATEWAY].as2_pool.opened == 1  # opened in a worker process (the default)

    [stored] = await as2_messages(client)
    assert stored.partner_id == "holdretail" and stored.transport_id == f"<{message.message_id}>"
    await settle(client)
    row, events, documents, outbox = await load(client, stored.id)
    assert row.status == "acknowledged", row.reason
    assert "mdn_sent" in events and events[0] == "received"
    assert [d.business_number for d in documents] == ["PO-1001-1"]
    assert len(erp.deliveries) == 1
    assert [o.kind for o in outbox] == ["997"]

    detail_json = await (await client.get(f"/api/v1/messages/{stored.id}", headers=TOKEN)).json()
    [mdn_event] = [e for e in detail_json["timeline"] if e["state"] == "mdn_sent"]
    assert mdn_event["detail"]["mic"].startswith(message.mic.decode())
    assert mdn_event["detail"]["disposition"].endswith("processed")
    assert client.app[RAWSTORE].exists(mdn_event["detail"]["received_sha256"])
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_certificate_expiry_days{owner="holdretail",subject="CN=holdretail-test"} 36' in metrics
    assert 'gateway_certificate_expiry_days{owner="ours",subject="CN=ourcompany-test"} 36' in metrics


async def test_duplicate_message_id_gets_the_same_mdn_and_is_not_processed_again(
    connect: Connect,
    us: as2.KeyPair,
    them: as2.KeyPair,
    erp: RecordingErp,
    database_url: str | None,
) -> None:
    client = await connect(database_url=database_url)
    message = outgoing(them, us, order_850(THEIR_AS2, 8))
    first = await post(client, message)
    first_body = await first.read()
    await settle(client)
    again = await post(client, message)
    assert again.status == 200
    assert await again.read() == first_body
    assert again.headers["Message-ID"] == first.headers["Message-ID"]
    await settle(client)
    assert len(await as2_messages(client)) == 1
    assert len(erp.deliveries) == 1
    async with client.app[DATABASE].read() as conn:
        count = (
            await conn.execute(
                select(func.count()).select_from(MessageEvent).where(MessageEvent.state == "mdn_sent")
            )
        ).scalar_one()
    assert count == 1

    # two copies at once (a resend racing the first): one message, one MDN, both answers equal
    racing = outgoing(them, us, order_850(THEIR_AS2, 18))
    one, two = await asyncio.gather(post(client, racing), post(client, racing))
    assert await one.read() == await two.read()
    assert len(await as2_messages(client)) == 2


async def refused(
    client: Any, message: Any, them: as2.KeyPair, us: as2.KeyPair, body: bytes | None = None, **extra: str
) -> tuple[str, str | None]:
    resp = await post(client, message, body, **extra)
    status, detail, report = await read_mdn(resp, message, them, us)
    assert not report.disposition.ok and report.mic is None
    assert await as2_messages(client) == []
    return status, detail


async def test_wrong_certificate_tampered_unknown_partner_and_unsigned_get_error_mdns(
    connect: Connect,
    us: as2.KeyPair,
    them: as2.KeyPair,
    stranger: as2.KeyPair,
    erp: RecordingErp,
) -> None:
    client = await connect()
    # signed by a key whose certificate is not in the partner's profile
    wrong = outgoing(them, us, order_850(THEIR_AS2, 9), signer=stranger, sign=True, encrypt=False)
    assert await refused(client, wrong, them, us) == ("processed/error", "authentication-failed")

    # one payload byte changed in a signed (not encrypted) message
    tampered = outgoing(them, us, order_850(THEIR_AS2, 10), sign=True, encrypt=False)
    changed = tampered.content.replace(b"PO-1001", b"PO-9001", 1)
    assert changed != tampered.content
    assert await refused(client, tampered, them, us, changed) == ("processed/error", "integrity-check-failed")

    # encrypted for someone else
    other = outgoing(them, us, order_850(THEIR_AS2, 11), sign=True, encrypt=True, encrypt_to=stranger)
    status, detail = await refused(client, other, them, us)
    assert (status, detail) == ("processed/error", "decryption-failed")

    # signed only, but the profile requires encryption
    plain = outgoing(them, us, order_850(THEIR_AS2, 12), sign=True, encrypt=False)
    assert await refused(client, plain, them, us) == ("processed/error", "insufficient-message-security")

    # unknown AS2-From
    unknown = outgoing(them, us, order_850(THEIR_AS2, 13))
    assert await refused(client, unknown, them, us, **{"AS2-From": "NOBODY"}) == (
        "processed/error",
        "authentication-failed",
    )

    # unsigned and unencrypted: insufficient-message-security
    bare = outgoing(them, us, order_850(THEIR_AS2, 14), sign=False, encrypt=False, mdn_digest_alg=None)
    resp = await post(client, bare)
    report = as2.parse_mdn(dict(resp.headers), await resp.read())
    assert report.disposition.modifier == "insufficient-message-security"
    assert not report.signed

    # garbage body with AS2 headers: an error MDN, never a 500
    resp = await client.post(
        "/as2",
        data=b"\x00garbage",
        headers={**dict(unknown.headers), "Content-Type": "multipart/signed; boundary=x"},
    )
    assert resp.status == 200
    report = as2.parse_mdn(dict(resp.headers), await resp.read(), partner_certs=[us.certificate])
    assert report.disposition.modifier == "unexpected-processing-error"

    # no AS2 headers at all: a JSON 4xx
    resp = await client.post("/as2", data=b"hello")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "not_as2"
    assert await as2_messages(client) == [] and erp.deliveries == []

    # and the service still serves
    good = outgoing(them, us, order_850(THEIR_AS2, 15))
    status, _, _ = await read_mdn(await post(client, good), good, them, us)
    assert status == "processed"
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_as2_refused_total{partner="holdretail",reason="authentication-failed"} 1' in metrics
    assert 'gateway_as2_refused_total{partner="unknown",reason="authentication-failed"} 1' in metrics
    assert (
        'gateway_as2_refused_total{partner="holdretail",reason="insufficient-message-security"} 2' in metrics
    )


async def test_async_mdn_is_queued_and_posted_to_the_partners_url_with_retries(
    connect: Connect,
    aiohttp_server: Any,
    us: as2.KeyPair,
    them: as2.KeyPair,
    database_url: str | None,
) -> None:
    answers = [503]
    received: list[tuple[str | None, str | None]] = []
    message: Any = None

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        if answers:
            return web.Response(status=answers.pop(0))
        received.append(
            pyas2.Mdn().parse(http_bytes(request.headers, body), find_message_cb=lambda mid, rcpt: message)
        )
        return web.Response(status=200)

    mdn_url = await mdn_inbox(aiohttp_server, inbox)
    # delivery over AS2: the outbox sender claims this partner's items, but never its MDNs
    client = await connect(database_url=database_url, delivery=True)
    await client.app[GATEWAY].scheduler.stop()  # the test runs the MDN sender itself
    message = async_order(them, us, mdn_url, 21)
    resp = await post(client, message)
    assert resp.status == 200 and await resp.read() == b""
    again = await post(client, message)  # a resend before the MDN arrived: nothing new queued
    assert again.status == 200 and await again.read() == b""

    sender = client.app[GATEWAY].as2_mdn
    assert await client.app[GATEWAY].sender.run_until_idle() == 0  # not the outbox sender's
    assert await sender.run() == 1 and received == []  # 503: retried later
    async with client.app[DATABASE].read() as conn:
        [item] = (await conn.execute(select(OutboxItem).where(OutboxItem.kind == "MDN"))).all()
    assert item.status == "pending" and item.last_error.startswith("HTTP 503") and item.channel == "as2-mdn"
    async with client.app[DATABASE].begin() as session:
        row = await session.get(OutboxItem, item.id)
        row.next_attempt_at = row.created_at
    assert await sender.run() == 1
    assert received == [("processed", None)]
    [stored] = await as2_messages(client)
    _, events, _, _ = await load(client, stored.id)
    assert events.count("mdn_sent") == 1 and "mdn_delivered" in events
    assert await client.app[GATEWAY].sender.run_until_idle() == 0


async def test_body_and_decompressed_size_limits(
    connect: Connect,
    us: as2.KeyPair,
    them: as2.KeyPair,
) -> None:
    client = await connect(limits={"max_edi_bytes": 16_000})
    big = order_850(THEIR_AS2, 41, sets=200)
    assert len(big) > 16_000
    # compressed it fits the body limit, but inflates past it: an error MDN, nothing stored
    bomb = outgoing(them, us, big, compress=True)
    assert len(bomb.content) < 16_000
    resp = await post(client, bomb)
    status, detail, _ = await read_mdn(resp, bomb, them, us)
    assert (status, detail) == ("processed/error", "unexpected-processing-error")
    # uncompressed the body itself is too large: 413 before anything is opened
    plain = outgoing(them, us, big)
    resp = await post(client, plain)
    assert resp.status == 413
    assert await as2_messages(client) == []


async def test_async_mdn_never_answered_2xx_is_dead_lettered_on_the_message(
    connect: Connect, aiohttp_server: Any, us: as2.KeyPair, them: as2.KeyPair
) -> None:
    posts: list[bytes] = []

    async def inbox(request: web.Request) -> web.Response:
        posts.append(await request.read())
        # A redirect is not a receipt either: only a 2xx counts as sent.
        return web.Response(status=500 if len(posts) == 1 else 304)

    mdn_url = await mdn_inbox(aiohttp_server, inbox)
    client = await connect(
        outbound={"max_attempts": 2, "retry_base_seconds": 0.01, "retry_max_seconds": 0.01}
    )
    await client.app[GATEWAY].scheduler.stop()  # the test runs the MDN sender itself
    message = async_order(them, us, mdn_url, 22)
    assert (await post(client, message)).status == 200

    sender = client.app[GATEWAY].as2_mdn
    assert await sender.run() == 1
    await asyncio.sleep(0.05)  # past the (tiny) backoff
    assert await sender.run() == 1
    assert await sender.run() == 0  # given up: nothing due any more
    assert len(posts) == 2
    async with client.app[DATABASE].read() as conn:
        [item] = (await conn.execute(select(OutboxItem).where(OutboxItem.kind == "MDN"))).all()
    assert item.status == "failed" and item.attempts == 2 and item.last_error.startswith("HTTP 304")
    [stored] = await as2_messages(client)
    _, events, _, _ = await load(client, stored.id)
    assert "mdn_delivery_failed" in events and "mdn_delivered" not in events
