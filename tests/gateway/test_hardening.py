"""Audit fixes: JSON bodies (415 / streamed 413) on every JSON endpoint, one
field-error shape, partner reload errors visible (SIGHUP in a real process,
/readyz, /metrics), readiness of the raw store and the disk, config errors at
load, "listening on" only once bound, and the access log without secrets."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850, profile_toml
from sqlalchemy import func, select
from test_service_process import free_port, start, stop, wait_ready

from gateway.api.bodies import read_limited
from gateway.api.errors import ApiError
from gateway.app import DATABASE, SETTINGS, build_app
from gateway.db.models import Message, OutboxItem
from gateway.openapi import spec

TOKEN = {"Authorization": "Bearer internal-test-token"}
JSON_TOKEN = {**TOKEN, "Content-Type": "application/json"}
JSON_ROUTES = ["/api/v1/shipments", "/api/v1/invoices", "/api/v1/order-acks", "/api/v1/feed/ack"]


async def count(client: Any, model: Any) -> int:
    async with client.app[DATABASE].read() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


# --------------------------------------------------------------------------- 1. JSON bodies


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
async def test_json_endpoints_refuse_other_content_types(
    client: Any, route: str, content_type: str | None
) -> None:
    body = json.dumps({"partner_id": "acme", "document": {}, "ids": ["x"]}).encode()
    headers = dict(TOKEN)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = await client.post(route, data=body, headers=headers, skip_auto_headers=["Content-Type"])
    assert resp.status == 415, await resp.text()
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    assert await count(client, OutboxItem) == 0


async def test_json_with_charset_is_accepted(client: Any) -> None:
    headers = {**TOKEN, "Content-Type": "application/json; charset=utf-8"}
    resp = await client.post("/api/v1/feed/ack", data=b'{"ids": ["nope"]}', headers=headers)
    assert resp.status == 200 and (await resp.json())["unknown"] == ["nope"]


def _padded_json(total: int, chunk: int = 256 * 1024) -> Any:
    """A valid JSON object of about ``total`` bytes, streamed (chunked, no Content-Length)."""
    head = b'{"partner_id": "acme", "document": {"pad": "'
    tail = b'"}}'

    async def chunks() -> Any:
        yield head
        left = total - len(head) - len(tail)
        while left > 0:
            part = b"x" * min(chunk, left)
            left -= len(part)
            yield part
        yield tail

    return chunks


@pytest.mark.parametrize("route", ["/api/v1/shipments", "/api/v1/feed/ack"])
async def test_chunked_json_over_the_default_limit_is_413(client: Any, route: str) -> None:
    assert client.app[SETTINGS].limits.max_json_bytes == 8 * 1024 * 1024
    chunks = _padded_json(9 * 1024 * 1024)
    resp = await client.post(route, data=chunks(), headers=JSON_TOKEN)
    assert resp.status == 413, await resp.text()
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    assert await count(client, OutboxItem) == 0
    # Declared too large up front: refused without reading.
    declared = io.BytesIO(b"{" + b" " * (8 * 1024 * 1024) + b"}")
    resp = await client.post(route, data=declared, headers=JSON_TOKEN)
    assert resp.status == 413


async def test_partner_documents_chunked_over_limit_is_413(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(
        build_app(make_settings(tmp_path, partners_dir, limits={"max_json_bytes": 5000}))
    )
    chunks = _padded_json(50_000, chunk=1000)
    headers = {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"}
    resp = await client.post("/partners/acme/documents", data=chunks(), headers=headers)
    assert resp.status == 413
    assert await count(client, Message) == 0


async def test_limited_reader_never_reads_past_limit_plus_one() -> None:
    from unittest import mock

    from aiohttp import streams

    protocol = mock.Mock(_reading_paused=False)
    stream = streams.StreamReader(protocol, 2**20, loop=asyncio.get_running_loop())
    stream.feed_data(b"x" * 300_000)
    stream.feed_eof()
    request = make_mocked_request("POST", "/", headers={"Content-Type": "application/json"}, payload=stream)
    with pytest.raises(ApiError) as raised:
        await read_limited(request, 100_000)
    assert raised.value.status == 413
    assert len(await stream.read()) == 300_000 - 100_001  # the rest was never touched
    ok = streams.StreamReader(protocol, 2**20, loop=asyncio.get_running_loop())
    ok.feed_data(b"y" * 100_000)
    ok.feed_eof()
    request = make_mocked_request("POST", "/", payload=ok)
    assert await read_limited(request, 100_000) == b"y" * 100_000


# --------------------------------------------------------------------------- 2. one error shape


async def test_field_errors_have_one_shape_everywhere(client: Any) -> None:
    partner = await client.post(
        "/partners/acme/documents",
        data=json.dumps({"kind": "order", "document": {"nonsense": 1}}),
        headers={"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"},
    )
    internal = await client.post(
        "/api/v1/shipments", json={"partner_id": "nobody", "document": {}}, headers=TOKEN
    )
    for resp in (partner, internal):
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert set(error) == {"code", "message", "fields"}, error
        assert error["fields"] and all(set(f) == {"loc", "msg"} for f in error["fields"])
    assert {"loc": "partner_id", "msg": "no partner profile 'nobody'"} in (await internal.json())["error"][
        "fields"
    ]
    schemas = spec()["components"]["schemas"]
    fields = schemas["Error"]["properties"]["error"]["properties"]["fields"]
    assert fields["items"]["required"] == ["loc", "msg"]
    assert "ValidationError" not in schemas


# --------------------------------------------------------------------------- 3. reload errors visible


async def test_refused_reload_shows_in_readyz_and_metrics(client: Any, partners_dir: Path) -> None:
    profile = partners_dir / "acme" / "profile.toml"
    good = profile.read_text()
    profile.write_text(good.replace('ta1 = "on-error"', 'ta1 = "sometimes"'))
    assert (await client.post("/api/v1/partners/reload", headers=TOKEN)).status == 422
    ready = await client.get("/readyz")
    assert ready.status == 200  # the good profiles are still in use
    partners = (await ready.json())["partners"]
    assert partners["loaded"] == 2 and partners["reload_error"].startswith(
        "the last partner reload was refused"
    )
    assert "acme" not in partners["reload_error"]  # unauthenticated: no partner ids, no paths
    assert "\n" not in partners["reload_error"]
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert "\ngateway_partner_reload_failed 1\n" in metrics
    profile.write_text(good)
    assert (await client.post("/api/v1/partners/reload", headers=TOKEN)).status == 200
    assert (await (await client.get("/readyz")).json())["partners"] == {"loaded": 2, "reload_error": None}
    assert "\ngateway_partner_reload_failed 0\n" in await (await client.get("/metrics", headers=TOKEN)).text()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post_edi(port: int, key: str, control: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/partners/acme/edi",
        data=order_850("ACME", control),
        headers=auth(key),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_reload_error(port: int, *, present: bool) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        status, body = _get(port, "/readyz")
        ready = json.loads(body)
        if (ready["partners"]["reload_error"] is not None) == present or time.monotonic() > deadline:
            assert status == 200, ready
            return ready
        time.sleep(0.05)


@pytest.mark.slow
def test_sighup_with_a_broken_profile_keeps_the_old_one_and_reports(
    tmp_path: Path, partners_dir: Path
) -> None:
    port = free_port()
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir), "GATEWAY_API__TOKEN": "tok"}
    proc = start(tmp_path, port, workers=0, extra_env=env)
    profile = partners_dir / "acme" / "profile.toml"
    try:
        wait_ready(port, proc)
        assert _post_edi(port, ACME_KEY, 1) == 202
        profile.write_text(profile_toml("acme", "ACME", "new-acme-key", ta1="sometimes"))  # invalid ta1
        proc.send_signal(signal.SIGHUP)
        ready = _wait_reload_error(port, present=True)
        assert ready["partners"]["loaded"] == 2
        assert ready["partners"]["reload_error"].startswith("the last partner reload was refused")
        assert _post_edi(port, ACME_KEY, 2) == 202  # the old profile still serves
        assert _post_edi(port, "new-acme-key", 3) == 401
        _, metrics = _get(port, "/metrics", {"Authorization": "Bearer tok"})
        assert b"\ngateway_partner_reload_failed 1\n" in metrics

        profile.write_text(profile_toml("acme", "ACME", "new-acme-key"))  # fixed
        proc.send_signal(signal.SIGHUP)
        ready = _wait_reload_error(port, present=False)
        assert ready["partners"] == {"loaded": 2, "reload_error": None}
        assert _post_edi(port, "new-acme-key", 4) == 202
        assert _post_edi(port, ACME_KEY, 5) == 401
        _, metrics = _get(port, "/metrics", {"Authorization": "Bearer tok"})
        assert b"\ngateway_partner_reload_failed 0\n" in metrics
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert "Task exception was never retrieved" not in err and "Traceback" not in err, err
    [line] = [line for line in err.splitlines() if "SIGHUP: partner reload failed" in line]
    assert str(profile) in line and "ta1" in line


# --------------------------------------------------------------------------- 4. readiness of storage


async def test_readyz_fails_when_the_raw_store_is_not_writable(client: Any, tmp_path: Path) -> None:
    assert (await client.get("/readyz")).status == 200
    tmp_dir = tmp_path / "var" / "raw" / "tmp"
    tmp_dir.rmdir()
    tmp_dir.write_text("in the way")  # like a dead disk: no body can be stored
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["checks"]["storage"].startswith("raw store not writable")
        assert body["reason"].startswith("storage: raw store not writable")
        assert str(tmp_path) not in json.dumps(body)  # a public probe names no paths
    finally:
        tmp_dir.unlink()
        tmp_dir.mkdir()
    assert (await client.get("/readyz")).status == 200
    assert list(tmp_dir.iterdir()) == []  # the probe file is gone


async def test_readyz_fails_below_min_free_space(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    settings = make_settings(tmp_path, partners_dir, storage={"min_free_mb": 10**12})
    client = await aiohttp_client(build_app(settings))
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert "storage.min_free_mb = 1000000000000" in body["reason"] and body["checks"]["database"] == "ok"
    assert make_settings(tmp_path, partners_dir).storage.min_free_mb == 64


# --------------------------------------------------------------------------- 5. start-up


def test_webhook_without_url_is_a_config_error_before_listening(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, port, extra_env={"GATEWAY_ERP__MODE": "webhook"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "erp.url" in err and "internal error" not in err
    assert "listening on" not in out


def test_listening_is_printed_only_once_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(tmp_path, port)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "listening on" not in out, out
    proc = start(tmp_path, port)
    try:
        wait_ready(port, proc)
    finally:
        out, _ = stop(proc)
    assert f"listening on http://127.0.0.1:{port}" in out


# --------------------------------------------------------------------------- 6. access log


@pytest.mark.parametrize("enabled", [True, False])
def test_access_log_is_opt_in_and_never_shows_credentials(
    tmp_path: Path, partners_dir: Path, enabled: bool
) -> None:
    port = free_port()
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir), "GATEWAY_API__TOKEN": "very-secret-api-token"}
    if enabled:
        env["GATEWAY_SERVER__ACCESS_LOG"] = "true"
    proc = start(tmp_path, port, workers=0, extra_env=env, args=["--log-level", "INFO"])
    try:
        wait_ready(port, proc)
        assert _get(port, "/metrics", {"Authorization": "Bearer very-secret-api-token"})[0] == 200
        assert _post_edi(port, ACME_KEY, 7) == 202
    finally:
        _, err = stop(proc)
    access = [line for line in err.splitlines() if "aiohttp.access" in line]
    if not enabled:
        assert access == []
        return
    assert any('"GET /metrics HTTP/1.1" 200' in line for line in access), err
    assert any('"POST /partners/acme/edi HTTP/1.1" 202' in line for line in access), err
    assert "very-secret-api-token" not in err and ACME_KEY not in err


def test_access_log_setting_defaults_off() -> None:
    from gateway.config import load_settings
    from gateway.service_cli import ACCESS_LOG_FORMAT

    assert load_settings(None, environ={}).server.access_log is False
    assert "%{Authorization}i" not in ACCESS_LOG_FORMAT and ACCESS_LOG_FORMAT.count("%{") == 1


async def test_feed_ack_with_ids_no_document_can_have_is_answered_unknown(client: Any) -> None:
    """A lone surrogate once reached the database driver and answered 500."""
    body = '{"ids": ["\\ud800", "not/an id", "01M8SN504CY8RTZZ7RJVRQW2FY"]}'
    resp = await client.post(
        "/api/v1/feed/ack",
        data=body,
        headers={"Authorization": "Bearer internal-test-token", "Content-Type": "application/json"},
    )
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["delivered"] == []
    assert sorted(answer["unknown"]) == sorted(["\ud800", "not/an id", "01M8SN504CY8RTZZ7RJVRQW2FY"])


async def test_replaying_a_delivered_document_as_a_dead_letter_is_refused(client: Any) -> None:
    from conftest import ACME_KEY, auth
    from gwsamples import order_850

    from gateway.app import PIPELINE

    token = {"Authorization": "Bearer internal-test-token"}
    resp = await client.post("/partners/acme/edi", data=order_850("ACME", 140), headers=auth(ACME_KEY))
    assert resp.status == 202
    await client.app[PIPELINE].run_until_idle()
    [item] = (await (await client.get("/api/v1/feed", headers=token)).json())["items"]
    confirm = await client.post("/api/v1/feed/ack", json={"ids": [item["id"]]}, headers=token)
    assert (await confirm.json())["delivered"] == [item["id"]]
    resp = await client.post(f"/api/v1/dead-letters/{item['id']}/replay", headers=token)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "replay_refused"
