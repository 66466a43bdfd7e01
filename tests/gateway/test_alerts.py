"""Alerts to a real webhook receiver on loopback, with a clock the test moves: each
event is delivered once (one webhook-id, however often it is noticed), retried when
the receiver fails (500, then 200), signed with the Standard Webhooks scheme, with
the order's link and correlation id (docs/operations.md, Alerts)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import make_settings
from fakes.alert_receiver import AlertReceiver, standard_signature
from fakes.erp_server import FakeErp
from sqlalchemy import func, select
from test_erp import Clock
from test_orders import PO, an_855, order_850, post, receive
from test_orders_exceptions import check, with_orders
from test_outbound import TOKEN

from gateway.alerts import build_targets, resolve_secret
from gateway.app import DATABASE, GATEWAY, build_app
from gateway.bootstrap import Overrides
from gateway.config import AlertTarget, ConfigError, Settings
from gateway.db.models_alerts import AlertDelivery, AlertEventRow
from gateway.domain import alerts as domain
from gateway.logsetup import JsonFormatter

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def receiver() -> AsyncIterator[AlertReceiver]:
    found = AlertReceiver(secret=SECRET)
    await found.start()
    yield found
    await found.stop()


def with_alerts(settings: Settings, receiver: AlertReceiver, **target: Any) -> Settings:
    entry = AlertTarget.model_validate(
        {
            "name": "ops",
            "url": receiver.url,
            "secret": "env:TEST_ALERT_SECRET",
            "link_base_url": "https://gateway.example.com/",
            "retry_base_seconds": 5,
            "retry_max_seconds": 10,
            **target,
        }
    )
    # the background sender only runs at start: the test sends, with its clock
    alerting = settings.alerting.model_copy(update={"send_seconds": 1e9, "watch_seconds": 1e9})
    return settings.model_copy(update={"alerts": [entry], "alerting": alerting})


async def client_with_alerts(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    receiver: AlertReceiver,
    database_url: str | None = None,
    sections: dict[str, Any] | None = None,
    **target: Any,
) -> Any:
    settings = make_settings(
        tmp_path, partners_dir, database_url, outbound={"workers": 0}, **(sections or {})
    )
    app = build_app(with_alerts(settings, receiver, **target), overrides=Overrides(clock=clock))
    return await aiohttp_client(app)


Connect = Callable[..., Awaitable[Any]]


@pytest.fixture
def connect(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    receiver: AlertReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> Connect:
    """``await connect(database_url=None, sections=None, **target)``: a gateway alerting
    ``receiver`` (:func:`client_with_alerts`), its secret in the environment."""
    monkeypatch.setenv("TEST_ALERT_SECRET", SECRET)

    async def connected(database_url: str | None = None, **options: Any) -> Any:
        return await client_with_alerts(
            aiohttp_client, tmp_path, partners_dir, clock, receiver, database_url, **options
        )

    return connected


async def test_an_exception_is_alerted_once_when_opened_and_once_when_closed_retried_after_a_500(
    connect: Connect,
    partners_dir: Path,
    clock: Clock,
    receiver: AlertReceiver,
    database_url: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=2)
    client = await connect(database_url)
    alerts = client.app[GATEWAY].alerts
    await receive(client, order_850(1))
    clock.advance(timedelta(hours=2).total_seconds())
    await check(client, clock)  # not_acknowledged opens

    receiver.script = [500]
    assert await alerts.run() == 0
    assert [r.answered for r in receiver.requests] == [500]
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_alerts{status="pending"} 1' in metrics
    await alerts.run()  # the retry is not due yet
    assert len(receiver.requests) == 1
    await check(client, clock)  # noticed again: still one event
    clock.advance(11)
    assert await alerts.run() == 1
    assert [r.answered for r in receiver.requests] == [500, 200]
    first, retry = receiver.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert first.headers["webhook-timestamp"] != retry.headers["webhook-timestamp"]  # each try signed anew
    assert all(r.signature_ok for r in receiver.requests)
    body = retry.body
    correlation = domain.correlation_id("acme", PO)
    assert body["type"] == "exception_opened" and body["data"]["kind"] == "not_acknowledged"
    assert body["partner_id"] == "acme" and body["po_number"] == PO
    assert body["order_url"] == f"https://gateway.example.com/api/v1/orders/acme/{PO}"
    assert body["correlation_id"] == correlation == retry.headers["X-Correlation-ID"]
    view = await (await client.get(f"/api/v1/orders/acme/{PO}", headers=TOKEN)).json()
    assert view["correlation_id"] == correlation
    feed = await (await client.get("/api/v1/feed", headers=TOKEN)).json()
    assert [item["correlation_id"] for item in feed["items"]] == [correlation]  # the 850, for the ERP

    await post(client, "order-acks", an_855())  # closes it
    await alerts.run()
    await alerts.run()
    assert [r.body["type"] for r in receiver.requests] == ["exception_opened"] * 2 + ["exception_closed"]
    assert receiver.requests[-1].body["data"]["closed_at"] == clock.now.isoformat()
    assert sorted(receiver.accepted.values()) == [1, 1]  # two events, each taken once
    async with client.app[DATABASE].read() as conn:
        statuses = (await conn.execute(select(AlertDelivery.status, AlertDelivery.attempts))).all()
    assert sorted(tuple(s) for s in statuses) == [("sent", 1), ("sent", 2)]
    # the JSON log lines about the order carry its correlation id (gateway.logsetup)
    about = [
        orjson.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name in ("gateway.orders", "gateway.alerts")
    ]
    assert [line["message"] for line in about] == [
        f"order acme/{PO}: not_acknowledged opened",
        f"alert exception_opened:{body['data']['exception_id']} sent to ops",
        f"order acme/{PO}: not_acknowledged closed",
        f"alert exception_closed:{body['data']['exception_id']} sent to ops",
    ]
    assert {line["correlation_id"] for line in about} == {correlation}


async def test_a_refusal_fails_the_alert_and_an_unwanted_event_is_not_sent(
    connect: Connect,
    partners_dir: Path,
    clock: Clock,
    receiver: AlertReceiver,
) -> None:
    with_orders(partners_dir, expect_order_ack=True, order_ack_due_hours=2)
    client = await connect(events=["exception_closed"])
    alerts = client.app[GATEWAY].alerts
    await receive(client, order_850(1))
    clock.advance(timedelta(hours=2).total_seconds())
    await check(client, clock)
    await alerts.run()
    assert receiver.requests == []  # exception_opened is not among its events
    receiver.script = [410]
    await post(client, "order-acks", an_855())
    await alerts.run()
    clock.advance(3600)
    await alerts.run()
    assert [r.answered for r in receiver.requests] == [410]  # a refusal is not retried
    async with client.app[DATABASE].read() as conn:
        rows = (await conn.execute(select(AlertDelivery.status, AlertDelivery.last_error))).all()
        events = (await conn.execute(select(func.count()).select_from(AlertEventRow))).scalar_one()
    assert [(r.status, r.last_error) for r in rows] == [("failed", "HTTP 410: receiver unwell")]
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_alerts{status="failed"} 1' in metrics and 'gateway_alerts{status="pending"} 0' in metrics
    assert events == 2


async def test_a_partner_silent_longer_than_its_usual_gap_is_alerted_once_per_silence(
    connect: Connect,
    clock: Clock,
    receiver: AlertReceiver,
) -> None:
    client = await connect(events=["partner_silent"])
    alerts = client.app[GATEWAY].alerts
    for n in range(1, 5):  # one message every 2 hours: the usual gap
        await receive(client, order_850(n, po=f"PO-{n}"))
        clock.advance(timedelta(hours=2).total_seconds())
    clock.advance(timedelta(hours=20).total_seconds())  # 22 h quiet: under the 24 h floor
    await alerts.watch()
    await alerts.run()
    assert receiver.requests == []
    clock.advance(timedelta(hours=3).total_seconds())
    await alerts.watch()
    await alerts.watch()
    await alerts.run()
    [silent] = receiver.requests
    assert silent.body["type"] == "partner_silent" and silent.body["partner_id"] == "acme"
    assert silent.body["data"]["usual_gap_hours"] == 2.0 and silent.body["data"]["silent_hours"] == 25.0
    assert silent.body["order_url"] is None
    await receive(client, order_850(9, po="PO-9"))  # it speaks again
    clock.advance(timedelta(hours=30).total_seconds())
    await alerts.watch()
    await alerts.run()
    assert [r.body["type"] for r in receiver.requests] == ["partner_silent"] * 2
    assert len(receiver.accepted) == 2  # a new silence, a new event


async def test_an_erp_dead_letter_is_alerted_once_with_its_order(
    connect: Connect,
    clock: Clock,
    receiver: AlertReceiver,
) -> None:
    erp = FakeErp(secret="erp-secret")
    await erp.start()
    try:
        erp.refuse(PO, 422, body="unknown ship-to")
        webhook = {"mode": "webhook", "url": erp.url, "secret": "erp-secret", "timeout_seconds": 2}
        client = await connect(sections={"erp": webhook})
        alerts = client.app[GATEWAY].alerts
        await receive(client, order_850(1))  # the ERP refuses it: a dead letter
        await alerts.watch()
        await alerts.watch()  # noticed twice, one event
        await alerts.run()
        [dead] = receiver.requests
        assert dead.body["type"] == "dead_letter" and dead.signature_ok
        assert (
            dead.body["data"]["type"] == "erp_document"
            and "unknown ship-to" in dead.body["data"]["last_error"]
        )
        assert dead.body["po_number"] == PO and dead.body["order_url"].endswith(f"/api/v1/orders/acme/{PO}")
        assert dead.headers["X-Correlation-ID"] == domain.correlation_id("acme", PO)
        assert erp.headers[0]["X-Correlation-ID"] == domain.correlation_id("acme", PO)  # the same id
        clock.advance(3600)
        await alerts.watch()
        await alerts.run()
        assert len(receiver.requests) == 1
    finally:
        await erp.stop()


async def test_our_certificate_nearing_its_end_is_alerted_once(
    connect: Connect,
    tmp_path: Path,
    clock: Clock,
    receiver: AlertReceiver,
) -> None:
    from cryptography.hazmat.primitives import serialization

    import as2

    pair = as2.generate_self_signed("ourcompany-alerts", days=40, key_size=1024)
    clock.now = pair.certificate.not_valid_after_utc - timedelta(days=40)  # valid now, 40 days left
    (tmp_path / "our.pem").write_bytes(pair.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "our.key").write_bytes(
        pair.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ours = {
        "id": "OURCOMPANY",
        "keys": [{"key": str(tmp_path / "our.key"), "certificate": str(tmp_path / "our.pem")}],
    }
    client = await connect(
        sections={"as2": ours},
        events=["certificate_expiring"],
    )
    alerts = client.app[GATEWAY].alerts
    await alerts.watch()
    await alerts.run()
    assert receiver.requests == []  # 40 days left: more than certificate_days (30)
    clock.advance(11 * 86400)
    for _ in range(2):
        await alerts.watch()
        await alerts.run()
        clock.advance(86400)
    [expiring] = receiver.requests
    data = expiring.body["data"]
    assert expiring.body["type"] == "certificate_expiring" and data["owner"] == "ours"
    assert data["subject"] == "CN=ourcompany-alerts" and data["days_left"] == 29
    assert expiring.body["partner_id"] is None and expiring.body["order_url"] is None


def test_the_standard_webhooks_signature_matches_the_published_example() -> None:
    # The example in the Standard Webhooks specification's README.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert domain.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) == expected
    assert domain.verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, "v1,bad= " + expected)
    assert not domain.verify(secret, "msg_other", 1614265330, body, expected)


def test_usual_gap_and_silence() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    arrivals = [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=2), t0 + timedelta(hours=10)]
    assert domain.usual_gap(arrivals) == timedelta(hours=1)
    assert domain.usual_gap(arrivals[:2]) is None
    late = t0 + timedelta(hours=14)
    assert domain.silent_for(arrivals, late, factor=3, minimum=timedelta(hours=1)) == timedelta(hours=4)
    assert domain.silent_for(arrivals, late, factor=3, minimum=timedelta(hours=5)) is None
    assert domain.silent_for(arrivals, t0 + timedelta(hours=12), factor=3, minimum=timedelta(0)) is None


def test_secrets_come_from_the_environment_or_a_file_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_KEY", "from-the-environment")
    (tmp_path / "key").write_text("from-a-file\n")
    assert resolve_secret("env:ALERT_KEY") == "from-the-environment"
    assert resolve_secret(f"file:{tmp_path / 'key'}") == "from-a-file"
    with pytest.raises(ConfigError, match="MISSING_KEY is not set"):
        resolve_secret("env:MISSING_KEY")
    entry = AlertTarget(url="https://hooks.example.com/x", secret="literal-secret-value")  # type: ignore[arg-type]
    [target] = build_targets([entry])
    assert "literal-secret-value" not in repr(entry) + repr(target)
    assert target.name.startswith("alert-")
    with pytest.raises(ValueError, match=r"alerts\.secret is required"):
        AlertTarget(url="https://hooks.example.com/x")
    with pytest.raises(ConfigError, match=r"two \[\[alerts\]\] entries"):
        build_targets([entry, entry])


def test_a_typo_in_an_alerts_table_names_the_nearest_key(tmp_path: Path) -> None:
    from gateway.config import load_settings

    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[alerts]]\nurl = "https://hooks.example.com/x"\nsecret = "env:X"\nevnts = ["dead_letter"]\n'
    )
    with pytest.raises(
        ConfigError, match=r"alerts\.0\.evnts: unknown key \(did you mean alerts\.0\.events\?\)"
    ):
        load_settings(path, environ={})
    path.write_text('[[alerts]]\nurl = "ftp://hooks.example.com/x"\nsecret = "the-literal-secret"\n')
    with pytest.raises(ConfigError, match="http:// or https://") as found:
        load_settings(path, environ={})
    assert "the-literal-secret" not in str(found.value)
