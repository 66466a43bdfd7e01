"""Outbound REST delivery authenticates per partner (``[delivery.auth]``): bearer,
basic or HMAC, the secret named by environment variable or file and never written
in the profile, a log line, an attempt row or a dead letter. A real loopback
partner server checks the credentials and answers 401 when they are wrong. The ERP
webhook sends ``[erp] token`` as a bearer token besides its signature."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.erp_server import FakeErp
from fakes.partner_server import FakePartner
from gwsamples import profile_toml
from test_erp import SECRET, Clock, make_client, post_850
from test_outbound import INITECH_KEY, TOKEN, app_client, send, shipment, status_of

from gateway.api.internal import DELIVERY
from gateway.app import PIPELINE
from gateway.cli import main
from gateway.partners import check_partners

TOKEN_VALUE = "s3cr3t-initech-token-0123456789"
ENV = "INITECH_DELIVERY_SECRET_TEST"


@pytest.fixture
async def partner_server(clock: Clock) -> AsyncIterator[FakePartner]:
    server = FakePartner(now=lambda: clock().timestamp())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secret_env() -> Iterator[None]:
    os.environ[ENV] = TOKEN_VALUE
    yield
    os.environ.pop(ENV, None)


def add_partner(partners_dir: Path, url: str, auth: str) -> Path:
    folder = partners_dir / "initech"
    folder.mkdir(parents=True, exist_ok=True)
    text = profile_toml("initech", "INITECH", INITECH_KEY)
    (folder / "profile.toml").write_text(
        text + f'[delivery]\nchannel = "rest"\nurl = "{url}"\n[delivery.auth]\n{auth}\n'
    )
    return folder


async def deliver_one(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> tuple[Any, str]:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    message_id = (await (await send(client, "shipments", "initech", shipment())).json())["message_id"]
    await client.app[DELIVERY].run_until_idle()
    return client, message_id


@pytest.mark.usefixtures("secret_env")
async def test_bearer_token_from_an_environment_variable(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, partner_server: FakePartner
) -> None:
    partner_server.authorization = f"Bearer {TOKEN_VALUE}"
    add_partner(partners_dir, partner_server.url, f'type = "bearer"\ntoken_env = "{ENV}"')
    client, message_id = await deliver_one(aiohttp_client, tmp_path, partners_dir, clock)
    assert await status_of(client, message_id) == "sent"
    assert partner_server.refused == 0 and sum(partner_server.received.values()) == 1


async def test_basic_auth_with_the_password_in_a_file_relative_to_the_partner_folder(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, partner_server: FakePartner
) -> None:
    partner_server.authorization = "Basic Z2F0ZXdheTpww6Rzc3dvcmQ="  # base64("gateway:pässword")
    folder = add_partner(
        partners_dir,
        partner_server.url,
        'type = "basic"\nusername = "gateway"\npassword_file = "secrets/initech.password"',
    )
    (folder / "secrets").mkdir()
    (folder / "secrets" / "initech.password").write_text("pässword\n", encoding="utf-8")
    client, message_id = await deliver_one(aiohttp_client, tmp_path, partners_dir, clock)
    assert await status_of(client, message_id) == "sent"
    assert partner_server.refused == 0


@pytest.mark.usefixtures("secret_env")
async def test_hmac_signature_verifies_and_a_wrong_secret_is_refused_without_leaking(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    partner_server: FakePartner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    partner_server.hmac_secret = TOKEN_VALUE
    add_partner(partners_dir, partner_server.url, f'type = "hmac"\nsecret_env = "{ENV}"')
    client, message_id = await deliver_one(aiohttp_client, tmp_path, partners_dir, clock)
    assert await status_of(client, message_id) == "sent" and partner_server.refused == 0
    [headers] = partner_server.headers
    assert headers["X-Gateway-Signature"].startswith("sha256=") and "Authorization" not in headers

    # The partner rotated its key and we did not: 401 is a refusal, dead-lettered.
    partner_server.hmac_secret = "the-partner-s-new-secret"
    caplog.set_level(logging.DEBUG)
    second = (await (await send(client, "shipments", "initech", shipment())).json())["message_id"]
    await client.app[DELIVERY].run_until_idle()
    assert await status_of(client, second) == "failed" and partner_server.refused == 1
    dead = await (await client.get("/api/v1/dead-letters", headers=TOKEN)).text()
    detail = await (await client.get(f"/api/v1/messages/{second}", headers=TOKEN)).text()
    assert "HTTP 401" in dead
    for text in (dead, detail, caplog.text):
        assert TOKEN_VALUE not in text

    # Our side catches up (the variable is read at each send): the replay goes through.
    os.environ[ENV] = "the-partner-s-new-secret"
    [item] = (await (await client.get("/api/v1/dead-letters", headers=TOKEN)).json())["items"]
    assert (await client.post(f"/api/v1/dead-letters/{item['id']}/replay", headers=TOKEN)).status == 202
    await client.app[DELIVERY].run_until_idle()
    assert await status_of(client, second) == "sent"


async def test_a_secret_missing_at_send_time_waits_and_names_the_variable(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    partner_server: FakePartner,
    secret_env: None,
) -> None:
    partner_server.authorization = f"Bearer {TOKEN_VALUE}"
    add_partner(partners_dir, partner_server.url, f'type = "bearer"\ntoken_env = "{ENV}"')
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    del os.environ[ENV]  # loaded with it; gone by the time we send
    message_id = (await (await send(client, "shipments", "initech", shipment())).json())["message_id"]
    await client.app[DELIVERY].run_until_idle()
    assert await status_of(client, message_id) == "queued" and not partner_server.headers
    detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
    assert ENV in str(detail)
    os.environ[ENV] = TOKEN_VALUE
    clock.advance(3600)
    await client.app[DELIVERY].run_until_idle()
    assert await status_of(client, message_id) == "sent"


def test_partners_check_names_the_missing_variable_and_file_and_refuses_a_literal_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    root = tmp_path / "partners"
    add_partner(root, "https://edi.initech.example/in", f'type = "bearer"\ntoken_env = "{ENV}"')
    [line] = check_partners(root)
    assert line.endswith(f"delivery.auth.token_env: the environment variable {ENV} is not set or empty")

    add_partner(root, "https://edi.initech.example/in", 'type = "hmac"\nsecret_file = "secrets/none"')
    [line] = check_partners(root)
    missing = (root / "initech" / "secrets" / "none").resolve()
    assert line.endswith(f"delivery.auth.secret_file: {missing}: file not found")

    add_partner(root, "https://edi.initech.example/in", 'type = "bearer"\ntoken_env = "GATEWAY_API__TOKEN"')
    [line] = check_partners(root)
    assert "delivery.auth.token_env: GATEWAY_* variables are the gateway's own settings" in line

    add_partner(root, "https://edi.initech.example/in", 'type = "bearer"\ntoken = "literally-the-token"')
    assert main(["partners", "check", str(root)]) == 1
    err = capsys.readouterr().err
    assert "delivery.auth.token: never write the secret in the profile" in err
    assert "literally-the-token" not in err

    monkeypatch.setenv(ENV, TOKEN_VALUE)
    add_partner(root, "https://edi.initech.example/in", f'type = "bearer"\ntoken_env = "{ENV}"')
    assert main(["partners", "check", str(root)]) == 0
    assert TOKEN_VALUE not in capsys.readouterr().out


async def test_erp_webhook_sends_its_token_and_a_wrong_one_is_refused(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    erp = FakeErp(secret=SECRET, token="erp-bearer-token-0123456789")
    await erp.start()
    try:
        settings = {"mode": "webhook", "url": erp.url, "secret": SECRET, "token": erp.token}
        caplog.set_level(logging.DEBUG)
        client = await make_client(aiohttp_client, tmp_path / "right", partners_dir, clock, erp=settings)
        message_id = await post_850(client, 501, po="PO-T")
        await client.app[PIPELINE].run_until_idle()
        detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
        assert detail["status"] == "acknowledged" and sum(erp.accepted.values()) == 1
        assert erp.headers[-1]["Authorization"] == f"Bearer {erp.token}"

        wrong = {**settings, "token": "not-the-erp-s-token"}
        client = await make_client(aiohttp_client, tmp_path / "wrong", partners_dir, clock, erp=wrong)
        message_id = await post_850(client, 502, po="PO-W")
        await client.app[PIPELINE].run_until_idle()
        detail = await (await client.get(f"/api/v1/messages/{message_id}", headers=TOKEN)).json()
        assert detail["status"] == "failed" and sum(erp.accepted.values()) == 1
        assert "HTTP 401" in str(detail["delivery_attempts"])
        assert erp.token not in caplog.text and "not-the-erp-s-token" not in caplog.text
    finally:
        await erp.stop()
