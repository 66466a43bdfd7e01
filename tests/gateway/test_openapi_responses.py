"""Every answer of the real service is one the served OpenAPI document declares.

Each scenario drives the real app (SQLite, workers off) through good and bad
requests: wrong key or token, unknown partner, wrong Content-Type, bodies over the
limits, bad JSON, invalid documents, reused Idempotency-Keys, unknown ids, bad query
parameters, the storage down, an unexpected error. For every answer the
:class:`Checker` asserts that the status is declared for the operation (the request
path matched against the spec's path templates) and, when the spec gives a JSON
schema for it, that the body validates (JSON Schema 2020-12, ``$ref`` resolved in
the spec itself through a ``referencing`` registry, date-times checked); headers
the response declares as required must be present.

:func:`test_every_declared_response_is_exercised` then checks the other way: every
(operation, status) the spec declares was produced by some scenario, except the few
listed in :data:`NOT_EXERCISED` with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, make_settings
from gwsamples import canonical_order, order_850, profile_toml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import delete, select, update
from test_outbound import invoice, order_ack, shipment

from gateway.app import DATABASE, OVERRIDES, PIPELINE, Overrides, build_app
from gateway.db.engine import Database, StorageUnavailable
from gateway.db.models import JournaledPayload, Message, OutboxItem
from gateway.intake import Intake

TOKEN = {"Authorization": "Bearer internal-test-token"}
JSON_TOKEN = {**TOKEN, "Content-Type": "application/json"}
ACME = {"Authorization": f"Bearer {ACME_KEY}"}
ACME_X12 = {**ACME, "Content-Type": "application/edi-x12"}
ACME_JSON = {**ACME, "Content-Type": "application/json"}
LIMIT = 64 * 1024  # limits.max_edi_bytes and limits.max_json_bytes of these tests
SPEC_URI = "urn:gateway:openapi"
OUTBOUND = {"shipments": shipment, "invoices": invoice, "order-acks": order_ack}

# (method, path template, status) declared but not produced here, and why.
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    ("get", "/healthz", "500"): "answers a constant; nothing there can fail",
    ("get", "/api/v1/openapi.json", "500"): "answers a constant; nothing there can fail",
    ("get", "/readyz", "500"): "every check catches its own failure and answers 503",
    # A trickled body needs a raw socket and a short deadline: test_adversarial
    # (test_a_trickled_body_is_408_and_the_connection_closed) drives the shared reader.
    **{
        ("post", path, "408"): "the shared body reader's deadline; see test_adversarial"
        for path in (
            "/partners/{partner_id}/edi",
            "/partners/{partner_id}/documents",
            "/api/v1/shipments",
            "/api/v1/invoices",
            "/api/v1/order-acks",
            "/api/v1/feed/ack",
            "/api/v1/messages/{id}/replay",
            "/api/v1/dead-letters/{id}/replay",
        )
    },
    **{
        ("post", "/as2", status): "AS2 needs S/MIME from a real peer: tests/gateway/test_as2_receive.py"
        for status in ("200", "400", "403", "404", "413", "500", "503")
    },
}

_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339: a date, a time and a zone (Python's ISO parser, plus the zone)."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError("no time part")
    if datetime.fromisoformat(value).tzinfo is None:
        raise ValueError("no time zone")
    return True


# --------------------------------------------------------------------------- the checker


class Checker:
    """Requests through the test client, each answer checked against ``spec``."""

    def __init__(self, client: Any, spec: dict[str, Any], covered: set[tuple[str, str, str]]) -> None:
        self.client = client
        self.spec = spec
        self.covered = covered
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource(contents=spec, specification=DRAFT202012)
        )
        # Literal segments before templated ones, so /feed/ack never reads as /feed/{x}.
        self.templates = sorted(
            (
                (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"), p)
                for p in spec["paths"]
            ),
            key=lambda pair: pair[1].count("{"),
        )

    def template(self, path: str) -> str | None:
        return next((tpl for pattern, tpl in self.templates if pattern.match(path)), None)

    def validate(self, pointer: str, instance: Any, what: str) -> None:
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry, format_checker=_FORMATS
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{what}: body does not match the spec: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in errors[:5]
        )

    async def __call__(self, method: str, url: str, expect: int, **kwargs: Any) -> tuple[Any, Any]:
        """Send; assert the scenario got ``expect`` and the spec declares the answer.
        Returns the response and its body (parsed when JSON, else bytes)."""
        method = method.lower()
        resp = await self.client.request(method.upper(), url, **kwargs)
        raw = await resp.read()
        what = f"{method.upper()} {url} -> {resp.status}"
        assert resp.status == expect, f"{what}, expected {expect}: {raw[:500]!r}"
        path = urlsplit(url).path
        template = self.template(path)
        media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body: Any = json.loads(raw) if media == "application/json" else raw
        operation = self.spec["paths"].get(template or "", {}).get(method)
        if operation is None:  # 404 / 405 from the router: no operation, still an Error body
            assert resp.status in (404, 405), f"{what}: neither an operation in the spec nor 404/405"
            assert media == "application/json", what
            self.validate("/components/schemas/Error", body, what)
            if resp.status == 405:
                allowed = {m.strip().lower() for m in resp.headers["Allow"].split(",")} - {"head"}
                assert template is not None and allowed == set(self.spec["paths"][template]), what
            return resp, body
        responses = operation["responses"]
        status = str(resp.status)
        assert status in responses, f"{what}: {method.upper()} {template} declares only {sorted(responses)}"
        declared = responses[status]
        for name, header in declared.get("headers", {}).items():
            if header.get("required"):
                assert name in resp.headers, f"{what}: declared header {name} missing"
        content = declared.get("content")
        if not content:
            assert not raw, f"{what}: the spec declares no body, got {raw[:200]!r}"
        else:
            assert media in content, f"{what}: Content-Type {media!r}, the spec declares {sorted(content)}"
            if "schema" in content[media] and media == "application/json":
                escaped = template.replace("~", "~0").replace("/", "~1")  # type: ignore[union-attr]
                self.validate(
                    f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema",
                    body,
                    what,
                )
        self.covered.add((method, template, status))  # type: ignore[arg-type]
        return resp, body


@dataclass
class Env:
    check: Checker
    client: Any
    root: Path
    partners: Path

    @property
    def app(self) -> Any:
        return self.client.app


async def start(aiohttp_client: Any, root: Path, covered: set[tuple[str, str, str]]) -> Env:
    partners = root / "partners"
    for partner_id, isa_id, key in (("acme", "ACME", ACME_KEY), ("globex", "GLOBEX", GLOBEX_KEY)):
        (partners / partner_id).mkdir(parents=True)
        (partners / partner_id / "profile.toml").write_text(profile_toml(partner_id, isa_id, key))
    settings = make_settings(
        root,
        partners,
        limits={"max_edi_bytes": LIMIT, "max_json_bytes": LIMIT},
        outbound={"workers": 0},
        storage={"prune_interval_minutes": 0},
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    spec_resp = await client.get("/api/v1/openapi.json")
    assert spec_resp.status == 200
    check = Checker(client, await spec_resp.json(), covered)
    await check("get", "/api/v1/openapi.json", 200)
    return Env(check=check, client=client, root=root, partners=partners)


def _oversized_chunks(head: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for _ in range(LIMIT // 4096 + 2):
            yield b" " * 4096

    return chunks


@asynccontextmanager
async def _raw_store_broken(env: Env) -> AsyncIterator[None]:
    """A file where the raw store's temp directory should be: every body write fails."""
    tmp_dir = env.root / "var" / "raw" / "tmp"
    tmp_dir.rmdir()
    tmp_dir.write_text("in the way")
    try:
        yield
    finally:
        tmp_dir.unlink()
        tmp_dir.mkdir()


@asynccontextmanager
async def _database_raises(exc: Exception) -> AsyncIterator[None]:
    """Every database transaction fails with ``exc`` (as an outage or a bug would)."""

    @asynccontextmanager
    async def failing(self: Database) -> AsyncIterator[Any]:
        raise exc
        yield  # pragma: no cover

    with pytest.MonkeyPatch.context() as patch:
        for name in ("read", "write", "begin"):
            patch.setattr(Database, name, failing)
        yield


async def _post_edi(env: Env, control: int, **kwargs: Any) -> str:
    _, body = await env.check(
        "post", "/partners/acme/edi", 202, data=order_850("ACME", control, **kwargs), headers=ACME_X12
    )
    return str(body["message_id"])


async def _send_shipment(env: Env) -> tuple[str, str]:
    """A shipment to acme: (message id, its mailbox item id)."""
    _, body = await env.check(
        "post", "/api/v1/shipments", 202, json={"partner_id": "acme", "document": shipment()}, headers=TOKEN
    )
    _, detail = await env.check("get", f"/api/v1/messages/{body['message_id']}", 200, headers=TOKEN)
    return body["message_id"], detail["outbox"][0]["id"]


# --------------------------------------------------------------------------- scenarios


async def partner_edi(env: Env) -> None:
    c = env.check
    url = "/partners/acme/edi"
    first = {**ACME_X12, "Idempotency-Key": "edi-1"}
    await c("post", url, 202, data=order_850("ACME", 1), headers=first)
    await c("post", url, 200, data=order_850("ACME", 1), headers=first)
    await c("post", url, 409, data=order_850("ACME", 2), headers=first)
    await c("post", url, 202, data=order_850("ACME", 3), headers={**ACME, "Content-Type": "text/plain"})
    await c(
        "post", url, 401, data=order_850("ACME", 4), headers={**ACME_X12, "Authorization": "Bearer wrong"}
    )
    await c("post", url, 401, data=order_850("ACME", 4), headers={"Content-Type": "application/edi-x12"})
    await c("post", "/partners/nobody/edi", 401, data=order_850("ACME", 4), headers=ACME_X12)
    await c("post", "/partners/globex/edi", 401, data=order_850("ACME", 4), headers=ACME_X12)
    await c("post", url, 415, data=order_850("ACME", 4), headers=ACME_JSON)
    await c("post", url, 400, data=b"", headers=ACME_X12)
    await c("post", url, 400, data=b"  \r\n", headers=ACME_X12)
    await c("post", url, 400, data=b"GS*PO*ACME~", headers=ACME_X12)
    await c("post", url, 400, data=order_850("ACME", 4), headers={**ACME_X12, "Idempotency-Key": "k" * 256})
    await c("post", url, 413, data=order_850("ACME", 4) + b" " * LIMIT, headers=ACME_X12)
    await c("post", url, 413, data=_oversized_chunks(order_850("ACME", 4))(), headers=ACME_X12)
    # A small body is a database row (decision 0025): the database down is the 503.
    async with _database_raises(StorageUnavailable("test: the database is down")):
        await c("post", url, 503, data=order_850("ACME", 5), headers={**ACME_X12, "Idempotency-Key": "edi-5"})
    await c("post", url, 202, data=order_850("ACME", 5), headers=ACME_X12)


async def partner_documents(env: Env) -> None:
    c = env.check
    url = "/partners/acme/documents"
    order = canonical_order()
    first = {**ACME_JSON, "Idempotency-Key": "doc-1"}
    await c("post", url, 202, json=order, headers=first)
    await c("post", url, 200, json=order, headers=first)
    await c("post", url, 409, json=canonical_order("PO-OTHER"), headers=first)
    await c(
        "post",
        url,
        202,
        data=json.dumps(canonical_order("PO-2")),
        headers={**ACME, "Content-Type": "application/json; charset=utf-8"},
    )
    await c("post", url, 401, json=order, headers={**ACME_JSON, "Authorization": "Bearer wrong"})
    await c("post", "/partners/nobody/documents", 401, json=order, headers=ACME_JSON)
    await c("post", url, 415, data=json.dumps(order), headers={**ACME, "Content-Type": "text/plain"})
    await c("post", url, 415, data=json.dumps(order), headers=ACME_X12)
    await c("post", url, 400, data=b"", headers=ACME_JSON)
    await c("post", url, 400, data=b"{not json", headers=ACME_JSON)
    await c("post", url, 400, json=order, headers={**ACME_JSON, "Idempotency-Key": "k" * 256})
    await c("post", url, 413, data=b"{" + b" " * LIMIT + b"}", headers=ACME_JSON)
    await c("post", url, 413, data=_oversized_chunks(b'{"kind": "order"')(), headers=ACME_JSON)
    _, bad = await c("post", url, 422, json={"kind": "order", "document": {"nonsense": 1}}, headers=ACME_JSON)
    assert bad["error"]["fields"]
    await c("post", url, 422, json=[order], headers=ACME_JSON)
    await c("post", url, 422, json={**order, "partner_id": "globex"}, headers=ACME_JSON)
    async with _database_raises(StorageUnavailable("test: the database is down")):
        await c(
            "post", url, 503, json=canonical_order("PO-3"), headers={**ACME_JSON, "Idempotency-Key": "doc-3"}
        )


async def outbound(env: Env) -> None:
    c = env.check
    for route, document in OUTBOUND.items():
        url = f"/api/v1/{route}"
        good = {"partner_id": "acme", "document": document()}
        keyed = {**TOKEN, "Idempotency-Key": f"{route}-1"}
        await c("post", url, 202, json=good, headers=keyed)
        await c("post", url, 200, json=good, headers=keyed)
        await c("post", url, 409, json=_with_number(good, "{}-CHANGED"), headers=keyed)
        await c("post", url, 401, json=good, headers={"Authorization": "Bearer wrong"})
        await c("post", url, 401, json=good)
        await c("post", url, 415, data=json.dumps(good), headers={**TOKEN, "Content-Type": "text/plain"})
        await c("post", url, 415, data=json.dumps(good), headers=TOKEN, skip_auto_headers=["Content-Type"])
        await c("post", url, 400, data=b"{oops", headers=JSON_TOKEN)
        await c("post", url, 400, json=good, headers={**TOKEN, "Idempotency-Key": "k" * 256})
        await c("post", url, 413, data=b"{" + b" " * LIMIT + b"}", headers=JSON_TOKEN)
        await c("post", url, 413, data=_oversized_chunks(b'{"partner_id": "acme"')(), headers=JSON_TOKEN)
        await c("post", url, 422, json={"partner_id": "nobody", "document": {}}, headers=TOKEN)
        await c("post", url, 422, json=[good], headers=TOKEN)
        await c("post", url, 422, json={**good, "extra": 1}, headers=TOKEN)
        _, refused = await c("post", url, 422, json=_with_number(good, "A*B~C"), headers=TOKEN)
        assert refused["error"]["code"] == "render_failed", refused
        async with _database_raises(StorageUnavailable("test: the database is down")):
            await c("post", url, 503, json={"partner_id": "acme", "document": document()}, headers=TOKEN)


def _with_number(request: dict[str, Any], pattern: str) -> dict[str, Any]:
    """``request`` with its document's business number replaced by ``pattern`` ({} is the old one)."""
    changed = json.loads(json.dumps(request))
    document = changed["document"]
    key = next(k for k in ("shipment_id", "invoice_number", "po_number") if k in document)
    document[key] = pattern.format(document[key])
    return changed


async def mailbox(env: Env) -> None:
    c = env.check
    _, item = await _send_shipment(env)
    _, listed = await c("get", "/partners/acme/outbox", 200, headers=ACME)
    assert [i["id"] for i in listed["items"]] == [item]
    await c("get", "/partners/acme/outbox?limit=1", 200, headers=ACME)
    await c("get", "/partners/acme/outbox?limit=0", 400, headers=ACME)
    await c("get", "/partners/acme/outbox?limit=many", 400, headers=ACME)
    await c("get", "/partners/acme/outbox", 401, headers={"Authorization": "Bearer wrong"})
    await c("get", "/partners/nobody/outbox", 401, headers=ACME)
    await c("get", f"/partners/acme/outbox/{item}", 200, headers=ACME)
    await c("get", f"/partners/acme/outbox/{item}", 401)
    await c("get", f"/partners/globex/outbox/{item}", 404, headers={"Authorization": f"Bearer {GLOBEX_KEY}"})
    await c("get", "/partners/acme/outbox/no-such-item", 404, headers=ACME)
    await c("delete", f"/partners/acme/outbox/{item}", 401, headers={"Authorization": "Bearer wrong"})
    await c(
        "delete", f"/partners/globex/outbox/{item}", 404, headers={"Authorization": f"Bearer {GLOBEX_KEY}"}
    )
    await c("delete", f"/partners/acme/outbox/{item}", 204, headers=ACME)
    await c("delete", f"/partners/acme/outbox/{item}", 204, headers=ACME)
    await c("get", f"/partners/acme/outbox/{item}", 404, headers=ACME)
    await c("delete", "/partners/acme/outbox/no-such-item", 404, headers=ACME)


async def feed(env: Env) -> None:
    c = env.check
    await _post_edi(env, 1, sets=2)
    await _post_edi(env, 2, po="PO-2")
    await env.app[PIPELINE].run_until_idle()
    _, page = await c("get", "/api/v1/feed?limit=2", 200, headers=TOKEN)
    assert len(page["items"]) == 2 and page["next"]
    _, rest = await c("get", f"/api/v1/feed?after={page['next']}", 200, headers=TOKEN)
    assert len(rest["items"]) == 1 and rest["next"] is None
    await c("get", "/api/v1/feed?limit=501", 400, headers=TOKEN)
    await c("get", "/api/v1/feed?limit=-1", 400, headers=TOKEN)
    await c("get", "/api/v1/feed", 401)
    await c("get", "/api/v1/feed", 401, headers={"Authorization": f"Bearer {ACME_KEY}"})
    ids = [i["id"] for i in page["items"]]
    _, done = await c("post", "/api/v1/feed/ack", 200, json={"ids": [*ids, "nope"]}, headers=TOKEN)
    assert done == {"delivered": ids, "unknown": ["nope"]}
    await c("post", "/api/v1/feed/ack", 200, json={"ids": ids}, headers=TOKEN)
    await c("post", "/api/v1/feed/ack", 401, json={"ids": ids})
    await c(
        "post",
        "/api/v1/feed/ack",
        415,
        data=json.dumps({"ids": ids}),
        headers={**TOKEN, "Content-Type": "text/plain"},
    )
    await c("post", "/api/v1/feed/ack", 400, data=b"[", headers=JSON_TOKEN)
    await c("post", "/api/v1/feed/ack", 400, json={"ids": []}, headers=TOKEN)
    await c("post", "/api/v1/feed/ack", 400, json={"ids": [1]}, headers=TOKEN)
    await c("post", "/api/v1/feed/ack", 400, json={"ids": ["x"] * 1001}, headers=TOKEN)
    await c("post", "/api/v1/feed/ack", 400, json=["x"], headers=TOKEN)
    await c("post", "/api/v1/feed/ack", 413, data=b'{"ids": [' + b" " * LIMIT + b"]}", headers=JSON_TOKEN)


async def dead_letters(env: Env) -> None:
    c = env.check
    _, item = await _send_shipment(env)
    _, empty = await c("get", "/api/v1/dead-letters", 200, headers=TOKEN)
    assert empty == {"items": [], "next": None}
    await c("post", f"/api/v1/dead-letters/{item}/replay", 409, headers=TOKEN)  # pending, not failed
    async with env.app[DATABASE].begin() as session:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item)
            .values(status="failed", last_error="test: gave up")
        )
    _, page = await c("get", "/api/v1/dead-letters?limit=1", 200, headers=TOKEN)
    assert [i["id"] for i in page["items"]] == [item] and page["items"][0]["type"] == "partner_delivery"
    await c("post", f"/api/v1/dead-letters/{item}/replay", 202, headers=TOKEN)
    message_id = await _post_edi(env, 7)
    await env.app[PIPELINE].run_until_idle()
    _, detail = await c("get", f"/api/v1/messages/{message_id}", 200, headers=TOKEN)
    document_id = detail["documents"][0]["id"]
    await c("post", f"/api/v1/dead-letters/{document_id}/replay", 202, headers=TOKEN)
    await c("post", "/api/v1/dead-letters/no-such-id/replay", 404, headers=TOKEN)
    await c("post", f"/api/v1/dead-letters/{item}/replay", 401)
    await c("post", f"/api/v1/dead-letters/{item}/replay", 400, json={"from": "acknowledge"}, headers=TOKEN)
    await c(
        "post",
        f"/api/v1/dead-letters/{item}/replay",
        415,
        data="{}",
        headers={**TOKEN, "Content-Type": "text/plain"},
    )
    await c(
        "post",
        f"/api/v1/dead-letters/{item}/replay",
        413,
        data=b"{" + b" " * LIMIT + b"}",
        headers=JSON_TOKEN,
    )
    await c("get", "/api/v1/dead-letters", 401)
    await c("get", "/api/v1/dead-letters?limit=x", 400, headers=TOKEN)
    await c(
        "get",
        "/api/v1/dead-letters?type=partner_delivery&kind=856&partner=acme&older_than_hours=1",
        200,
        headers=TOKEN,
    )
    await c("get", "/api/v1/dead-letters?older_than_hours=-2", 400, headers=TOKEN)


async def messages(env: Env) -> None:
    c = env.check
    inbound = await _post_edi(env, 1, po="PO-77")
    _, canonical = await c("post", "/partners/acme/documents", 202, json=canonical_order(), headers=ACME_JSON)
    out, _ = await _send_shipment(env)
    await env.app[PIPELINE].run_until_idle()
    _, page = await c("get", "/api/v1/messages?limit=2", 200, headers=TOKEN)
    assert len(page["items"]) == 2 and page["next"]
    await c("get", f"/api/v1/messages?cursor={page['next']}", 200, headers=TOKEN)
    query = "partner=acme&direction=in&kind=order&status=translated&q=PO-77-1"
    _, found = await c("get", f"/api/v1/messages?{query}", 200, headers=TOKEN)
    assert [m["id"] for m in found["items"]] == [inbound]
    await c(
        "get",
        "/api/v1/messages?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B02:00",
        200,
        headers=TOKEN,
    )
    await c("get", "/api/v1/messages?kind=x12&q=000000001", 200, headers=TOKEN)
    await c("get", "/api/v1/messages?direction=sideways", 400, headers=TOKEN)
    await c("get", "/api/v1/messages?limit=0", 400, headers=TOKEN)
    await c("get", "/api/v1/messages?since=yesterday", 400, headers=TOKEN)
    await c("get", "/api/v1/messages?until=2024-03-15T00:00:00", 400, headers=TOKEN)
    await c("get", "/api/v1/messages", 401)
    for message_id in (inbound, canonical["message_id"], out):
        await c("get", f"/api/v1/messages/{message_id}", 200, headers=TOKEN)
        await c("get", f"/api/v1/messages/{message_id}/raw", 200, headers=TOKEN)
    await c(
        "get",
        f"/api/v1/messages/{inbound}?documents_limit=0&events_limit=1&attempts_cursor=0",
        200,
        headers=TOKEN,
    )
    await c("get", f"/api/v1/messages/{inbound}?documents_limit=501", 400, headers=TOKEN)
    await c("get", f"/api/v1/messages/{inbound}?events_cursor=abc", 400, headers=TOKEN)
    await c("get", f"/api/v1/messages/{inbound}", 401)
    await c("get", f"/api/v1/messages/{inbound}/raw", 401, headers={"Authorization": "Basic eDp5"})
    await c("get", "/api/v1/messages/no-such-message", 404, headers=TOKEN)
    await c("get", "/api/v1/messages/no-such-message/raw", 404, headers=TOKEN)
    await c("post", f"/api/v1/messages/{inbound}/replay", 202, headers=TOKEN)
    await env.app[PIPELINE].run_until_idle()
    await c("post", f"/api/v1/messages/{inbound}/replay", 202, json={"from": "translate"}, headers=TOKEN)
    await c("post", f"/api/v1/messages/{inbound}/replay", 400, json={"from": "parse"}, headers=TOKEN)
    await c(
        "post",
        f"/api/v1/messages/{inbound}/replay",
        415,
        data="{}",
        headers={**TOKEN, "Content-Type": "text/plain"},
    )
    await c(
        "post", f"/api/v1/messages/{inbound}/replay", 413, data=b"{" + b" " * LIMIT + b"}", headers=JSON_TOKEN
    )
    await c("post", f"/api/v1/messages/{inbound}/replay", 401)
    await c("post", "/api/v1/messages/no-such-message/replay", 404, headers=TOKEN)
    await c("post", f"/api/v1/messages/{out}/replay", 409, headers=TOKEN)  # outbound: nothing to run again
    await env.app[PIPELINE].run_until_idle()
    async with env.app[DATABASE].read() as conn:
        sha = (await conn.execute(select(Message.raw_sha256).where(Message.id == inbound))).scalar_one()
    async with env.app[DATABASE].write() as conn:  # as retention would (a small payload is a row)
        await conn.execute(delete(JournaledPayload).where(JournaledPayload.sha256 == sha))
    await c("get", f"/api/v1/messages/{inbound}/raw", 410, headers=TOKEN)
    await c("post", f"/api/v1/messages/{inbound}/replay", 409, headers=TOKEN)


async def reload_and_probes(env: Env) -> None:
    c = env.check
    await c("get", "/healthz", 200)
    await c("get", "/readyz", 200)
    await c("get", "/metrics", 200, headers=TOKEN)
    await c("get", "/metrics", 401)
    await c("get", "/metrics", 401, headers={"Authorization": "Bearer internal-test-token-but-longer"})
    await c("post", "/api/v1/partners/reload", 200, headers=TOKEN)
    await c("post", "/api/v1/partners/reload", 401)
    profile = env.partners / "acme" / "profile.toml"
    good = profile.read_text()
    profile.write_text(good.replace('ta1 = "on-error"', 'ta1 = "sometimes"'))
    _, refused = await c("post", "/api/v1/partners/reload", 422, headers=TOKEN)
    assert refused["error"]["details"]
    profile.write_text(good)
    await c("post", "/api/v1/partners/reload", 200, headers=TOKEN)
    async with _raw_store_broken(env):
        _, ready = await c("get", "/readyz", 503)
    assert ready["reason"].startswith("storage:")


async def storage_down(env: Env) -> None:
    """The database unreachable: 503 everywhere it is needed, and the probe says so."""
    c = env.check
    message_id = await _post_edi(env, 1)
    _, item = await _send_shipment(env)
    async with _database_raises(StorageUnavailable("test: the database is down")):
        await _every_database_route(c, message_id, item, 503)
        _, ready = await c("get", "/readyz", 503)
        assert ready["checks"]["database"] == "unavailable"
        await c("get", "/healthz", 200)
    await c("get", "/readyz", 200)


async def internal_error(env: Env) -> None:
    """A bug (not a storage error) anywhere: 500 with an Error body that names nothing."""
    c = env.check
    message_id = await _post_edi(env, 1)
    _, item = await _send_shipment(env)
    async with _database_raises(RuntimeError("test: a bug, /secret/path")):
        bodies = await _every_database_route(c, message_id, item, 500)
        for route in OUTBOUND:
            _, body = await c(
                "post",
                f"/api/v1/{route}",
                500,
                json={"partner_id": "acme", "document": OUTBOUND[route]()},
                headers=TOKEN,
            )
            bodies.append(body)
    assert all(
        b == {"error": {"code": "internal_error", "message": bodies[0]["error"]["message"]}} for b in bodies
    )
    assert "secret" not in json.dumps(bodies)

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("test: a bug in the intake")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Intake, "accept", boom)
        await c("post", "/partners/acme/edi", 500, data=order_850("ACME", 2), headers=ACME_X12)
        await c("post", "/partners/acme/documents", 500, json=canonical_order(), headers=ACME_JSON)

    def broken_loader(settings: Any) -> Any:
        raise RuntimeError("test: a bug in the loader")

    overrides = env.app[OVERRIDES]
    overrides.load_partners = broken_loader
    try:
        await c("post", "/api/v1/partners/reload", 500, headers=TOKEN)
    finally:
        overrides.load_partners = None


async def _every_database_route(c: Checker, message_id: str, item: str, status: int) -> list[Any]:
    bodies = []
    for method, url, kwargs in (
        ("get", "/partners/acme/outbox", {"headers": ACME}),
        ("get", f"/partners/acme/outbox/{item}", {"headers": ACME}),
        ("delete", f"/partners/acme/outbox/{item}", {"headers": ACME}),
        ("get", "/api/v1/feed", {"headers": TOKEN}),
        ("post", "/api/v1/feed/ack", {"json": {"ids": ["x"]}, "headers": TOKEN}),
        ("get", "/api/v1/dead-letters", {"headers": TOKEN}),
        ("post", f"/api/v1/dead-letters/{item}/replay", {"headers": TOKEN}),
        ("get", "/api/v1/messages", {"headers": TOKEN}),
        ("get", f"/api/v1/messages/{message_id}", {"headers": TOKEN}),
        ("get", f"/api/v1/messages/{message_id}/raw", {"headers": TOKEN}),
        ("post", f"/api/v1/messages/{message_id}/replay", {"headers": TOKEN}),
        ("get", "/metrics", {"headers": TOKEN}),
        ("get", "/api/v1/orders", {"headers": TOKEN}),
        ("get", "/api/v1/orders/acme/PO-77-1", {"headers": TOKEN}),
        ("get", "/api/v1/exceptions", {"headers": TOKEN}),
    ):
        resp, body = await c(method, url, status, **kwargs)
        if status == 503:
            assert body["error"]["code"] == "storage_unavailable" and resp.headers["Retry-After"]
        bodies.append(body)
    return bodies


async def orders(env: Env) -> None:
    """The order lifecycle views (gateway.api.orders)."""
    c = env.check
    await _post_edi(env, 1, po="PO-77")
    out, _ = await _send_shipment(env)
    await env.app[PIPELINE].run_until_idle()
    _, view = await c("get", "/api/v1/orders/acme/PO-77-1", 200, headers=TOKEN)
    assert view["state"] == "received" and view["documents"][0]["kind"] == "order"
    _, page = await c("get", "/api/v1/orders?limit=1", 200, headers=TOKEN)
    assert len(page["items"]) == 1 and page["next"]
    await c("get", f"/api/v1/orders?cursor={page['next']}&partner_id=acme&state=received", 200, headers=TOKEN)
    await c("get", "/api/v1/orders?since=2000-01-01T00:00:00Z", 200, headers=TOKEN)
    _, listed = await c("get", "/api/v1/exceptions?open=false&partner_id=acme", 200, headers=TOKEN)
    assert listed["items"], "the shipment names an order that was never received"
    await c("get", "/api/v1/exceptions?kind=shipped_not_ordered&limit=1", 200, headers=TOKEN)
    for query in ("state=lost", "limit=0", "since=yesterday"):
        await c("get", f"/api/v1/orders?{query}", 400, headers=TOKEN)
    for query in ("kind=late", "open=maybe", "limit=501"):
        await c("get", f"/api/v1/exceptions?{query}", 400, headers=TOKEN)
    await c("get", "/api/v1/orders", 401)
    await c("get", "/api/v1/orders/acme/PO-77-1", 401)
    await c("get", "/api/v1/exceptions", 401)
    await c("get", "/api/v1/orders/acme/NO-SUCH-PO", 404, headers=TOKEN)
    await c("get", "/api/v1/orders/globex/PO-77-1", 404, headers=TOKEN)
    assert out


async def not_routed(env: Env) -> None:
    """No operation answers: 404 and 405 (with Allow) are Error bodies too."""
    c = env.check
    await c("get", "/partners/acme/edi", 405, headers=ACME)
    await c("put", "/api/v1/messages/x", 405, headers=TOKEN)
    await c("delete", "/api/v1/feed", 405, headers=TOKEN)
    await c("post", "/healthz", 405)
    await c("get", "/partners/acme/nothing", 404, headers=ACME)
    await c("get", "/api/v2/messages", 404, headers=TOKEN)


SCENARIOS: dict[str, Callable[[Env], Awaitable[None]]] = {
    f.__name__: f
    for f in (
        partner_edi,
        partner_documents,
        outbound,
        mailbox,
        feed,
        dead_letters,
        messages,
        reload_and_probes,
        storage_down,
        internal_error,
        not_routed,
        orders,
    )
}
COVERED: set[tuple[str, str, str]] = set()
RAN: set[str] = set()


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_answers_match_the_spec(aiohttp_client: Any, tmp_path: Path, name: str) -> None:
    covered: set[tuple[str, str, str]] = set()
    env = await start(aiohttp_client, tmp_path, covered)
    await SCENARIOS[name](env)
    COVERED.update(covered)
    RAN.add(name)


async def test_every_declared_response_is_exercised(aiohttp_client: Any, tmp_path: Path) -> None:
    """Runs the scenarios this session has not run yet (e.g. under -k), then: every
    declared (operation, status) was answered by the service, except NOT_EXERCISED."""
    for name, scenario in SCENARIOS.items():
        if name not in RAN:
            covered: set[tuple[str, str, str]] = set()
            await scenario(await start(aiohttp_client, tmp_path / name, covered))
            COVERED.update(covered)
            RAN.add(name)
    from gateway.openapi import spec

    declared = {
        (method, path, status)
        for path, ops in spec()["paths"].items()
        for method, op in ops.items()
        for status in op["responses"]
    }
    missing = declared - COVERED - set(NOT_EXERCISED)
    assert not missing, f"declared but never answered in these tests: {sorted(missing)}"
    assert not (set(NOT_EXERCISED) & COVERED), "exercised after all: drop from NOT_EXERCISED"
    assert set(NOT_EXERCISED) <= declared, "NOT_EXERCISED names responses the spec no longer declares"


def test_every_error_is_the_shared_error_schema() -> None:
    """4xx/5xx answers all reference Error (only /readyz's 503 is the readiness body)."""
    from gateway.openapi import spec

    document = spec()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert "500" in op["responses"], f"{method} {path}"
            for status, response in op["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                assert response["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                }, f"{method} {path} {status}"


async def test_a_unicode_digit_in_limit_is_400_and_in_q_just_text(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """str.isdigit() is true for '²', which int() refuses: it once answered 500."""
    env = await start(aiohttp_client, tmp_path, set())
    for url in (
        "/api/v1/messages?limit=%C2%B2",
        "/api/v1/feed?limit=%C2%B2",
        "/api/v1/dead-letters?limit=%C2%B2",
    ):
        await env.check("get", url, 400, headers=TOKEN)
    await env.check("get", "/api/v1/messages?q=%C2%B2", 200, headers=TOKEN)
    await env.check("get", "/partners/acme/outbox?limit=%C2%B2", 400, headers=ACME)
