"""The adversarial findings of issue 7 that live in the HTTP/intake layer, each driven
through the real app on loopback (docs/threat-model.md names attack and defence).

Every one of these once answered 500, 503, a 202 the pipeline then failed, or held
the server; each must now be a clear 4xx in the one JSON error shape."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request
from conftest import ACME_KEY, auth, make_settings
from gwsamples import canonical_order, order_850
from sqlalchemy import func, select

from gateway.api.bodies import CHUNK, BodyReader
from gateway.api.errors import ApiError
from gateway.api.partner_inbound import MAX_LEADING_WHITESPACE, _first_bytes
from gateway.app import DATABASE, PIPELINE, build_app
from gateway.db.models import Document, Message
from gateway.logsafe import EscapeArgs, SafeAccessLogger, printable

TOKEN = {"Authorization": "Bearer internal-test-token"}
JSON_ACME = {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"


async def count(client: Any, model: Any) -> int:
    async with client.app[DATABASE].read() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


def assert_error(status: int, body: Any, code: str | None = None) -> None:
    """The project's error shape: {"error": {"code", "message", ...}}."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code, body
    assert "Traceback" not in json.dumps(body)


async def raw_http(
    client: Any, head: bytes, body: bytes = b"", *, wait: float = 10.0
) -> tuple[int, dict[str, Any], bytes]:
    """Send bytes no HTTP client library would (non-UTF-8 headers, trickled bodies);
    answer (status, JSON body or {}, raw head)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = {}
    return status, parsed, header


def request_head(method: str, path: str, headers: dict[str, bytes | str], *, length: int | None = 0) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: localhost", b"Connection: close"]
    for name, value in headers.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --------------------------------------------------------------------------- 1. leading white space


def _stream(data: bytes, chunk: int) -> streams.StreamReader:
    from unittest import mock

    stream = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    for start in range(0, len(data), chunk):
        stream.feed_data(data[start : start + chunk])
    stream.feed_eof()
    return stream


async def test_leading_whitespace_is_bounded_and_read_once() -> None:
    """128 MiB of newlines were once read into memory in quadratic time and answered
    400 after two minutes: now at most MAX_LEADING_WHITESPACE (+ one chunk) is read."""
    total = 8 * 1024 * 1024
    stream = _stream(b"\n" * total, 1024)
    request = make_mocked_request("POST", "/", payload=stream)
    started = time.monotonic()
    with pytest.raises(ApiError) as raised:
        await _first_bytes(request, BodyReader(request), 64 * 1024 * 1024)
    assert (raised.value.status, raised.value.code) == (400, "not_x12")
    assert time.monotonic() - started < 2
    left = len(await stream.read())
    assert total - left <= MAX_LEADING_WHITESPACE + CHUNK  # the rest was never touched


async def test_leading_whitespace_counts_toward_the_limit() -> None:
    stream = _stream(b"\r\n" * 20_000, 100)
    request = make_mocked_request("POST", "/", payload=stream)
    with pytest.raises(ApiError) as raised:
        await _first_bytes(request, BodyReader(request), 10_000)
    assert raised.value.status == 413


async def test_leading_whitespace_in_tiny_chunks_then_isa_is_still_accepted() -> None:
    body = b"\xef\xbb\xbf" + b"\n" * 5000 + order_850("ACME", 1)
    request = make_mocked_request("POST", "/", payload=_stream(body, 1))
    first = await _first_bytes(request, BodyReader(request), 64 * 1024 * 1024)
    assert body.startswith(first) and b"ISA" in first


async def test_whitespace_bodies_through_the_app(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir)))

    async def newlines(n: int) -> Any:
        for _ in range(n):
            yield b"\n" * 8192

    started = time.monotonic()
    resp = await client.post("/partners/acme/edi", data=newlines(16), headers=auth(ACME_KEY))
    assert resp.status == 400
    assert_error(resp.status, await resp.json(), "not_x12")
    assert time.monotonic() - started < 5
    resp = await client.post("/partners/acme/edi", data=b"\r\n \t" * 100, headers=auth(ACME_KEY))
    assert resp.status == 400
    assert_error(resp.status, await resp.json(), "empty_body")
    assert (await client.get("/healthz")).status == 200
    assert await count(client, Message) == 0

    small = await aiohttp_client(
        build_app(make_settings(tmp_path / "small", partners_dir, limits={"max_edi_bytes": 20_000}))
    )
    resp = await small.post("/partners/acme/edi", data=newlines(4), headers=auth(ACME_KEY))
    assert resp.status == 413
    assert_error(resp.status, await resp.json(), "payload_too_large")
    resp = await small.post(
        "/partners/acme/edi", data=b"\n" * 1000 + order_850("ACME", 2), headers=auth(ACME_KEY)
    )
    assert resp.status == 202


# --------------------------------------------------------------------------- 4. canonical JSON decided at intake


def _order_bytes(**changes: Any) -> bytes:
    return json.dumps({**canonical_order(), **changes}).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xef\xbb\xbf" + _order_bytes(), id="utf8-bom"),
        pytest.param(json.dumps(canonical_order()).encode("utf-16"), id="utf16"),
        pytest.param(json.dumps(canonical_order()).encode("utf-32"), id="utf32"),
        pytest.param(_order_bytes().replace(b'"PO-JSON-1"', b'"PO-\\ud800"'), id="lone-surrogate"),
        pytest.param(_order_bytes().replace(b'"PO-JSON-1"', b'"PO-\\udc00x"'), id="lone-low-surrogate"),
        pytest.param(b"[" * 100_000, id="deep-nesting"),
        pytest.param(_order_bytes().replace(b"PO-JSON-1", b"PO-\xff"), id="not-utf8"),
    ],
)
async def test_json_the_pipeline_would_fail_is_refused_at_intake(client: Any, body: bytes) -> None:
    resp = await client.post("/partners/acme/documents", data=body, headers=JSON_ACME)
    assert resp.status == 400, await resp.text()
    assert_error(resp.status, await resp.json(), "bad_json")
    assert await count(client, Message) == 0


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"kind": [], "document": {}}, id="unhashable-kind"),
        pytest.param({"kind": {"a": 1}, "document": {}}, id="object-kind"),
        pytest.param({"kind": "invoice", "document": {}}, id="empty-invoice"),
        pytest.param({"kind": "shipment", "document": {}}, id="empty-shipment"),
        pytest.param({"kind": "order_ack", "document": {"po_number": "PO-1"}}, id="ack-without-type"),
        pytest.param(
            {"kind": "order", "document": {"po_number": "", "po_date": "2024-03-12"}}, id="blank-po"
        ),
        pytest.param(
            {"kind": "order", "document": {"po_number": "  ", "po_date": "2024-03-12"}}, id="spaces-po"
        ),
        pytest.param([], id="array"),
    ],
)
async def test_documents_without_their_kinds_required_fields_are_422(client: Any, document: Any) -> None:
    resp = await client.post("/partners/acme/documents", data=json.dumps(document), headers=JSON_ACME)
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert_error(resp.status, body, "invalid_document")
    assert body["error"]["fields"] and all(set(f) == {"loc", "msg"} for f in body["error"]["fields"])
    assert await count(client, Message) == 0


async def test_empty_invoice_names_its_missing_fields(client: Any) -> None:
    resp = await client.post(
        "/partners/acme/documents", json={"kind": "invoice", "document": {}}, headers=JSON_ACME
    )
    locs = {f["loc"] for f in (await resp.json())["error"]["fields"]}
    assert locs == {"document.invoice_number", "document.invoice_date"}


async def test_field_errors_name_the_documents_own_fields(client: Any) -> None:
    order = canonical_order()
    order["document"]["lines"][0]["quantity"] = "lots"
    del order["document"]["po_number"]
    resp = await client.post("/partners/acme/documents", json=order, headers=JSON_ACME)
    assert resp.status == 422
    locs = {f["loc"] for f in (await resp.json())["error"]["fields"]}
    assert locs == {"document.po_number", "document.lines.0.quantity"}


def _envelope(sender: str, receiver: str = "OURCOMPANY") -> dict[str, Any]:
    return {
        "sender_qualifier": "ZZ",
        "sender_id": sender,
        "receiver_qualifier": "ZZ",
        "receiver_id": receiver,
        "interchange_control": "000000001",
        "group_control": "1",
        "set_control": "0001",
        "version": "004010",
        "transaction_set": "850",
        "test": False,
    }


@pytest.mark.parametrize(
    ("envelope", "loc"),
    [
        (_envelope("NORTHWIND3PL"), "envelope.sender_id"),
        (_envelope("GLOBEX"), "envelope.sender_id"),  # another partner of ours
        (_envelope("ACME", receiver="SOMEONEELSE"), "envelope.receiver_id"),
    ],
)
async def test_a_partner_cannot_post_in_anothers_name(
    client: Any, envelope: dict[str, Any], loc: str
) -> None:
    resp = await client.post(
        "/partners/acme/documents", data=_order_bytes(envelope=envelope), headers=JSON_ACME
    )
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert_error(resp.status, body, "envelope_mismatch")
    assert [f["loc"] for f in body["error"]["fields"]] == [loc]
    assert await count(client, Message) == 0


async def test_what_intake_accepts_the_pipeline_translates(client: Any) -> None:
    for body in (_order_bytes(), _order_bytes(envelope=_envelope("ACME"), partner_id="acme")):
        resp = await client.post("/partners/acme/documents", data=body, headers=JSON_ACME)
        assert resp.status == 202, await resp.text()
    await client.app[PIPELINE].run_until_idle()
    async with client.app[DATABASE].read() as conn:
        statuses = (await conn.execute(select(Message.status))).scalars().all()
        senders = [
            (d.get("envelope") or {}).get("sender_id")
            for d in (await conn.execute(select(Document.canonical))).scalars().all()
        ]
    assert statuses and "failed" not in statuses, statuses
    assert sorted(senders, key=str) == sorted([None, "ACME"], key=str)


# --------------------------------------------------------------------------- 7. 500s and abuse


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/partners/acme/edi"),
        ("POST", "/partners/acme/documents"),
        ("POST", "/partners/nobody/edi"),
        ("GET", "/api/v1/messages"),
        ("GET", "/api/v1/feed"),
        ("POST", "/api/v1/shipments"),
        ("GET", "/metrics"),
    ],
)
async def test_non_utf8_authorization_is_401_on_every_route(client: Any, method: str, path: str) -> None:
    head = request_head(
        method, path, {"Authorization": b"Bearer \xff\xfe-key", "Content-Type": "application/json"}
    )
    status, body, _ = await raw_http(client, head)
    assert status == 401
    assert_error(status, body, "unauthorized")


async def test_deeply_nested_json_on_the_internal_api_is_400(client: Any) -> None:
    resp = await client.post(
        "/api/v1/shipments", data=b"[" * 100_000, headers={**TOKEN, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert_error(resp.status, await resp.json(), "bad_json")


async def test_huge_numeric_search_term_is_not_a_500(client: Any) -> None:
    resp = await client.get("/api/v1/messages", params={"q": "9" * 5000}, headers=TOKEN)
    assert resp.status == 400
    assert_error(resp.status, await resp.json(), "bad_request")
    # within the bound, a long run of digits is just a search that finds nothing
    resp = await client.get("/api/v1/messages", params={"q": "0" * 100 + "9" * 150}, headers=TOKEN)
    assert resp.status == 200 and (await resp.json())["items"] == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/messages", {"partner": "acme\x00"}),
        ("/api/v1/messages", {"status": "x" * 300}),
        ("/api/v1/messages", {"cursor": "\x00"}),
        ("/api/v1/feed", {"after": "a\x00b"}),
        ("/api/v1/dead-letters", {"after": "\x00"}),
    ],
)
async def test_query_values_the_database_would_refuse_are_400(
    client: Any, path: str, params: dict[str, str]
) -> None:
    resp = await client.get(path, params=params, headers=TOKEN)
    assert resp.status == 400, await resp.text()
    assert_error(resp.status, await resp.json(), "bad_request")


@pytest.mark.parametrize("path", ["/api/v1/messages/a%00b", "/api/v1/messages/" + "x" * 300 + "/raw"])
async def test_ids_the_database_would_refuse_are_404(client: Any, path: str) -> None:
    resp = await client.get(path, headers=TOKEN)
    assert resp.status == 404
    assert_error(resp.status, await resp.json(), "not_found")
    resp = await client.post("/api/v1/dead-letters/a%00b/replay", headers=TOKEN)
    assert resp.status == 404
    for method in ("GET", "DELETE"):
        resp = await client.request(method, "/partners/acme/outbox/a%00b", headers=auth(ACME_KEY))
        assert resp.status == 404
        assert_error(resp.status, await resp.json(), "not_found")


async def test_long_request_ids_never_reach_the_database(client: Any) -> None:
    """On PostgreSQL an X-Request-Id over 255 characters once answered 503 (and the
    ERP retried for ever): a request id that does not fit is replaced or dropped."""
    long_id = "r" * 300
    resp = await client.post(
        "/partners/acme/edi", data=order_850("ACME", 31), headers={**auth(ACME_KEY), "X-Request-Id": long_id}
    )
    assert resp.status == 202, await resp.text()
    assert resp.headers["X-Request-Id"].startswith("req-")
    shipment = json.loads((FIXTURES / "856_si_blank_parents.json").read_text())
    resp = await client.post(
        "/api/v1/shipments",
        json={"partner_id": "acme", "document": shipment},
        headers={**TOKEN, "X-Request-Id": long_id},
    )
    assert resp.status == 202, await resp.text()
    resp = await client.post(
        "/partners/acme/documents", data=_order_bytes(), headers={**JSON_ACME, "X-Request-Id": "has spaces é"}
    )
    assert resp.status == 202, await resp.text()
    async with client.app[DATABASE].read() as conn:
        ids = (await conn.execute(select(Message.transport_id))).scalars().all()
    assert all(i is None or len(i) <= 100 for i in ids), ids


async def test_idempotency_keys_that_do_not_fit_are_400(client: Any) -> None:
    shipment = json.loads((FIXTURES / "856_si_blank_parents.json").read_text())
    for headers, path, data in (
        (auth(ACME_KEY), "/partners/acme/edi", order_850("ACME", 32)),
        (JSON_ACME, "/partners/acme/documents", _order_bytes()),
        (
            {**TOKEN, "Content-Type": "application/json"},
            "/api/v1/shipments",
            json.dumps({"partner_id": "acme", "document": shipment}).encode(),
        ),
    ):
        resp = await client.post(path, data=data, headers={**headers, "Idempotency-Key": "k" * 256})
        assert resp.status == 400
        assert_error(resp.status, await resp.json(), "bad_idempotency_key")


def test_printable_escapes_what_could_forge_a_log_line() -> None:
    assert printable("/partners/x\nFAKE 200\r\x1b[31m\u2028\udcff\\") == (
        "/partners/x\\x0aFAKE 200\\x0d\\x1b[31m\\u2028\\udcff\\\\"
    )
    assert printable("é ok") == "é ok"
    assert printable("x" * 5000).endswith("...") and len(printable("x" * 5000)) == 1003


def test_access_log_lines_cannot_be_forged(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    access = SafeAccessLogger(logger, '%a "%r" %s "%{User-Agent}i"')
    request = make_mocked_request(
        "GET", "/partners/acme%0a2026-01-01 INFO gateway: all good/edi", headers={"User-Agent": "x\r\nFORGED"}
    )
    response = web.Response(status=404)
    with caplog.at_level(logging.INFO, logger="test.access"):
        access.log(request, response, 0.01)
    # only this logger's records: a stray asyncio error from an earlier test's garbage
    # (collected here) lands in caplog too
    [record] = [r for r in caplog.records if r.name == "test.access"]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line
    # aiohttp writes the request line percent-encoded; any header is escaped here
    assert "x\\x0d\\x0aFORGED" in line


def test_the_service_uses_the_safe_access_logger_and_escapes_every_log_argument() -> None:
    import inspect

    from gateway import service_cli
    from gateway.logsetup import configure_logging

    source = inspect.getsource(service_cli.run_serve)
    assert "access_log_class=SafeAccessLogger" in source and "configure_logging(" in source
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        for fmt in ("text", "json"):
            configure_logging("INFO", fmt)
            assert root.handlers and all(
                any(isinstance(f, EscapeArgs) for f in h.filters) for h in root.handlers
            ), fmt
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)


def test_log_arguments_are_escaped_but_format_and_tracebacks_kept() -> None:
    try:
        raise ValueError("bad ISA sender ACME\n2026-01-01 INFO gateway: forged")
    except ValueError as exc:
        error = exc
    record = logging.LogRecord(
        "gateway.pipeline",
        logging.ERROR,
        __file__,
        1,
        "step %s of %s failed: %s\n  detail %d",
        ("translate", "msg\r\nX", error, 7),
        None,
    )
    assert EscapeArgs().filter(record)
    assert record.getMessage() == (
        "step translate of msg\\x0d\\x0aX failed: bad ISA sender ACME\\x0a2026-01-01 INFO gateway: forged\n  detail 7"
    )


async def test_errors_log_partner_paths_escaped(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The generic safety net: any exception is a 500 in the JSON error shape, naming
    nothing internal, and its log line escapes the (percent-decoded) path."""
    app = build_app(make_settings(tmp_path, partners_dir))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals /var/lib/gateway password=hunter2")

    app.router.add_get("/boom/{rest}", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="gateway.api.errors"):
        resp = await client.get("/boom/x%0a2026-01-01 INFO forged line")
    assert resp.status == 500
    body = await resp.json()
    assert_error(resp.status, body, "internal_error")
    assert "hunter2" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)
    [record] = [r for r in caplog.records if r.name == "gateway.api.errors"]
    assert "\n" not in record.getMessage() and "x\\x0a2026" in record.getMessage()


@pytest.fixture
def slow_settings(tmp_path: Path, partners_dir: Path) -> Any:
    return make_settings(
        tmp_path, partners_dir, limits={"body_timeout_seconds": 0.5, "min_body_bytes_per_second": 1_000_000}
    )


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (
            "/partners/acme/edi",
            {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/edi-x12"},
        ),
        ("/partners/acme/documents", JSON_ACME),
        ("/api/v1/shipments", {**TOKEN, "Content-Type": "application/json"}),
    ],
)
async def test_a_trickled_body_is_408_and_the_connection_closed(
    aiohttp_client: Any, slow_settings: Any, path: str, headers: dict[str, str]
) -> None:
    """2,000 bodies at one byte a minute once held their connections for as long as
    the client liked: the body must arrive within the deadline."""
    client = await aiohttp_client(build_app(slow_settings))
    head = request_head("POST", path, headers, length=1000)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    started = time.monotonic()
    try:
        writer.write(head + b"I")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)  # read() returns at EOF: the server closed
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    header, _, payload = raw.partition(b"\r\n\r\n")
    assert header.split(b" ")[1] == b"408", raw
    assert_error(408, json.loads(payload), "body_timeout")
    assert 0.4 < elapsed < 5
    assert await count(client, Message) == 0


async def test_a_fast_large_body_is_not_cut_by_the_deadline(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    settings = make_settings(
        tmp_path, partners_dir, limits={"body_timeout_seconds": 0.2, "min_body_bytes_per_second": 100_000}
    )
    client = await aiohttp_client(build_app(settings))
    body = order_850("ACME", 40, sets=500)

    async def paced() -> Any:
        step = 8_000  # 8 kB every 0.05 s: 160 kB/s, above the minimum rate
        for start in range(0, len(body), step):
            yield body[start : start + step]
            await asyncio.sleep(0.05)

    started = time.monotonic()
    resp = await client.post("/partners/acme/edi", data=paced(), headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    assert time.monotonic() - started > 0.3  # longer than the allowance without the rate credit


def test_sigterm_does_not_wait_for_bodies_still_arriving(tmp_path: Path, partners_dir: Path) -> None:
    """SIGTERM once waited for every request in flight (aiohttp's graceful stop, 60 s):
    a few slow uploads kept the service from stopping for half a minute and more.
    Bodies still arriving are cut at once with 503 (nothing stored, retry)."""
    import signal
    import socket

    from test_service_process import free_port, start, wait_ready

    port = free_port()
    proc = start(tmp_path, port, extra_env={"GATEWAY_PARTNERS_DIR": str(partners_dir)})
    socks = []
    try:
        wait_ready(port, proc)
        head = request_head("POST", "/partners/acme/edi", auth(ACME_KEY), length=100_000)
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(head + b"ISA*00*")
            socks.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        elapsed = time.monotonic() - started
        answers = []
        for sock in socks:
            sock.settimeout(5)
            answers.append(sock.recv(65536))
    finally:
        for sock in socks:
            sock.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert elapsed < 8, elapsed
    for answer in answers:
        header, _, payload = answer.partition(b"\r\n\r\n")
        assert header.split(b" ")[1] == b"503", answer
        assert_error(503, json.loads(payload), "shutting_down")
