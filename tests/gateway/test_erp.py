"""ERP forwarding against a real fake ERP on loopback: webhook headers and HMAC,
retries (5xx, 429 + Retry-After, timeouts) and dead letters (4xx, limits), replay
under the same Idempotency-Key, and the feed mode (pull, confirm, then delivered)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth, make_settings
from fakes.alert_receiver import standard_signature
from fakes.erp_server import FakeErp
from gwsamples import order_850
from sqlalchemy import select

from gateway.app import DATABASE, PIPELINE, Overrides, build_app
from gateway.db.models import Document, Job, Message, OutboxItem
from gateway.db.models_delivery import DeliveryAttempt
from gateway.domain.alerts import correlation_id
from gateway.erp import RetryPolicy, parse_retry_after, sign, verify

TOKEN = {"Authorization": "Bearer internal-test-token"}
SECRET = "shared-erp-secret"


class Clock:
    """A clock the test moves; the pipeline and the sink both read it."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def fake_erp() -> AsyncIterator[FakeErp]:
    erp = FakeErp(secret=SECRET)
    await erp.start()
    yield erp
    await erp.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def make_client(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, **sections: Any
) -> Any:
    settings = make_settings(tmp_path, partners_dir, None, **sections)
    return await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))


@pytest.fixture
async def webhook(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, fake_erp: FakeErp
) -> Any:
    return await make_client(
        aiohttp_client,
        tmp_path,
        partners_dir,
        clock,
        erp={
            "mode": "webhook",
            "url": fake_erp.url,
            "secret": SECRET,
            "timeout_seconds": 0.5,
            "max_attempts": 4,
            "retry_base_seconds": 10,
            "retry_max_seconds": 60,
        },
    )


async def post_850(client: Any, control: int, po: str = "PO-1") -> str:
    resp = await client.post(
        "/partners/acme/edi", data=order_850("ACME", control, po=po), headers=auth(ACME_KEY)
    )
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def run(client: Any) -> None:
    await client.app[PIPELINE].run_until_idle()


async def message_row(client: Any, message_id: str) -> Any:
    async with client.app[DATABASE].read() as conn:
        return (await conn.execute(select(Message).where(Message.id == message_id))).one()


async def attempts(client: Any, message_id: str) -> list[Any]:
    async with client.app[DATABASE].read() as conn:
        return list(
            (
                await conn.execute(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.message_id == message_id)
                    .order_by(DeliveryAttempt.id)
                )
            ).all()
        )


async def test_webhook_delivers_with_key_correlation_and_valid_signature(
    webhook: Any, fake_erp: FakeErp
) -> None:
    message_id = await post_850(webhook, 201, po="PO-77")
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    async with webhook.app[DATABASE].read() as conn:
        doc = (await conn.execute(select(Document).where(Document.message_id == message_id))).one()
        [ack] = (await conn.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).all()
    assert dict(fake_erp.accepted) == {doc.idempotency_key: 1}
    assert fake_erp.bad_signatures == 0
    [headers] = fake_erp.headers
    assert headers["X-Correlation-ID"] == correlation_id("acme", "PO-77-1")  # the order's
    assert headers["X-Gateway-Message-Id"] == message_id
    # the Standard Webhooks form of the same signature (decision 0007)
    assert headers["webhook-id"] == doc.idempotency_key
    assert headers["webhook-signature"] == standard_signature(
        SECRET, doc.idempotency_key, headers["webhook-timestamp"], fake_erp.raw[doc.idempotency_key]
    )
    assert headers["X-Gateway-Document-Id"] == doc.id
    assert fake_erp.documents[doc.idempotency_key]["document"]["po_number"] == "PO-77-1"
    assert doc.status == "delivered" and ack.status == "pending"
    [attempt] = await attempts(webhook, message_id)
    assert (attempt.outcome, attempt.status_code, attempt.target) == ("delivered", 201, "erp")


async def test_5xx_is_retried_with_backoff_then_delivered_once(
    webhook: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    fake_erp.fail_next(2, 503)
    message_id = await post_850(webhook, 202)
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "translated"
    async with webhook.app[DATABASE].read() as conn:
        job = (
            await conn.execute(select(Job).where(Job.message_id == message_id, Job.step == "deliver"))
        ).one()
    # Attempt 1 with base 10 s: jittered between 5 and 10 s from now.
    assert clock.now + timedelta(seconds=5) <= job.next_attempt_at <= clock.now + timedelta(seconds=10)
    for _ in range(2):
        clock.advance(61)
        await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    assert list(fake_erp.accepted.values()) == [1]
    outcomes = [(a.outcome, a.status_code) for a in await attempts(webhook, message_id)]
    assert outcomes == [("retry", 503), ("retry", 503), ("delivered", 201)]


async def test_429_retry_after_is_honoured(webhook: Any, fake_erp: FakeErp, clock: Clock) -> None:
    fake_erp.fail_next(1, 429, retry_after="300")
    message_id = await post_850(webhook, 203)
    await run(webhook)
    async with webhook.app[DATABASE].read() as conn:
        job = (
            await conn.execute(select(Job).where(Job.message_id == message_id, Job.step == "deliver"))
        ).one()
    assert job.next_attempt_at == clock.now + timedelta(seconds=300)
    clock.advance(299)
    await run(webhook)
    assert fake_erp.accepted == {}
    clock.advance(1)
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"


async def test_timeout_is_retried(webhook: Any, fake_erp: FakeErp, clock: Clock) -> None:
    fake_erp.fail_always(0, hang_seconds=2)
    message_id = await post_850(webhook, 204)
    await run(webhook)
    [attempt] = await attempts(webhook, message_id)
    assert attempt.outcome == "retry" and attempt.status_code is None and "Timeout" in (attempt.error or "")
    fake_erp.recover()
    clock.advance(61)
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"


async def test_4xx_is_dead_lettered_at_once_and_replay_delivers_same_key(
    webhook: Any, fake_erp: FakeErp, clock: Clock
) -> None:
    fake_erp.fail_next(1, 422, body='{"error": "unknown ship-to 0042"}')
    message_id = await post_850(webhook, 205)
    await run(webhook)
    message = await message_row(webhook, message_id)
    assert message.status == "failed" and "HTTP 422" in (message.reason or "")
    resp = await webhook.get("/api/v1/dead-letters", headers=TOKEN)
    [dead] = (await resp.json())["items"]
    assert dead["type"] == "erp_document" and dead["message_id"] == message_id
    assert "unknown ship-to 0042" in dead["last_error"]
    resp = await webhook.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=TOKEN)
    assert resp.status == 202
    await run(webhook)
    assert (await message_row(webhook, message_id)).status == "acknowledged"
    assert fake_erp.accepted == {dead["idempotency_key"]: 1}
    resp = await webhook.get("/api/v1/dead-letters", headers=TOKEN)
    assert (await resp.json())["items"] == []


async def test_retries_stop_at_max_attempts(webhook: Any, fake_erp: FakeErp, clock: Clock) -> None:
    fake_erp.fail_always(500)
    message_id = await post_850(webhook, 206)
    for _ in range(6):
        await run(webhook)
        clock.advance(61)
    outcomes = [a.outcome for a in await attempts(webhook, message_id)]
    assert outcomes == ["retry", "retry", "retry", "dead"]
    message = await message_row(webhook, message_id)
    assert message.status == "failed" and "gave up after 4 attempt(s)" in (message.reason or "")
    resp = await webhook.get("/metrics", headers=TOKEN)
    text = await resp.text()
    assert 'gateway_erp_delivery_failures_total{reason="http_500"} 4' in text
    assert 'gateway_dead_letters{target="erp"} 1' in text


async def test_feed_mode_delivers_only_after_the_erp_confirms(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await make_client(aiohttp_client, tmp_path, partners_dir, clock)
    ids = [await post_850(client, 300 + n, po=f"PO-F{n}") for n in range(3)]
    await run(client)
    assert {(await message_row(client, m)).status for m in ids} == {"translated"}
    resp = await client.get("/api/v1/feed?limit=2", headers=TOKEN)
    page = await resp.json()
    assert [i["message_id"] for i in page["items"]] == ids[:2] and page["next"]
    assert page["items"][0]["document"]["document"]["po_number"] == "PO-F0-1"
    rest = await (await client.get(f"/api/v1/feed?limit=2&after={page['next']}", headers=TOKEN)).json()
    assert [i["message_id"] for i in rest["items"]] == ids[2:] and rest["next"] is None
    first = page["items"][0]["id"]
    resp = await client.post("/api/v1/feed/ack", json={"ids": [first, "nope"]}, headers=TOKEN)
    assert await resp.json() == {"delivered": [first], "unknown": ["nope"]}
    await run(client)
    assert (await message_row(client, ids[0])).status == "acknowledged"
    assert (await message_row(client, ids[1])).status == "translated"
    again = await (await client.get("/api/v1/feed", headers=TOKEN)).json()
    assert [i["message_id"] for i in again["items"]] == ids[1:]
    # Confirming twice is harmless and does not queue a second acknowledgment.
    resp = await client.post("/api/v1/feed/ack", json={"ids": [first]}, headers=TOKEN)
    assert await resp.json() == {"delivered": [], "unknown": [first]}
    assert (await client.get("/api/v1/feed")).status == 401


def test_retry_after_forms_and_backoff_bounds() -> None:
    now = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Fri, 15 Mar 2024 12:02:00 GMT", now) == 120
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
    policy = RetryPolicy(5, timedelta(hours=1), 2.0, 60.0)
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(2.0 * 2 ** (attempt - 1), 60.0)
        assert ceiling / 2 <= policy.delay(attempt, None, rng) <= ceiling
    assert policy.delay(1, 500.0, rng) == 500.0
    assert policy.gives_up(5, now, now) and not policy.gives_up(4, now, now)
    assert policy.gives_up(1, now - timedelta(hours=1), now)


def test_signature_is_over_timestamp_and_exact_body() -> None:
    body = json.dumps({"kind": "order"}).encode()
    signature = sign(SECRET, "1710504000", body)
    assert verify(SECRET, "1710504000", body, signature)
    assert not verify(SECRET, "1710504001", body, signature)
    assert not verify(SECRET, "1710504000", body + b" ", signature)
    assert not verify("other", "1710504000", body, signature)
