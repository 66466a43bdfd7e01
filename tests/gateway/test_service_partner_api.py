"""Partner REST inbound through the real app: durable 202, idempotency, auth
isolation, limits and the JSON error shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth, make_settings
from gwsamples import canonical_order, order_850
from sqlalchemy import func, select

from gateway.app import DATABASE, RAWSTORE, Overrides, build_app
from gateway.db.models import Job, JournaledPayload, Message, MessageEvent

TOKEN = {"Authorization": "Bearer internal-test-token"}


async def count(client: Any, model: Any) -> int:
    async with client.app[DATABASE].read() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_accept_is_durable_before_202(client: Any) -> None:
    body = order_850("ACME", 11)
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    message_id = (await resp.json())["message_id"]
    # By the time we hold the 202: row, received event, first job and raw file exist.
    async with client.app[DATABASE].read() as conn:
        message = (await conn.execute(select(Message).where(Message.id == message_id))).one()
        events = (
            (await conn.execute(select(MessageEvent.state).where(MessageEvent.message_id == message_id)))
            .scalars()
            .all()
        )
        steps = (await conn.execute(select(Job.step, Job.state).where(Job.message_id == message_id))).all()
    assert message.status == "received" and message.partner_id == "acme" and message.channel == "rest"
    assert message.raw_size == len(body)
    assert events == ["received"]
    assert [tuple(s) for s in steps] == [("translate", "ready")]
    # The small payload is a row of the same commit, kept for good, with no file (decision 0025).
    async with client.app[DATABASE].read() as conn:
        kept = (
            await conn.execute(
                select(JournaledPayload.data, JournaledPayload.kept).where(
                    JournaledPayload.sha256 == message.raw_sha256
                )
            )
        ).all()
    assert [(bytes(data), flag) for data, flag in kept] == [(body, True)]
    assert not client.app[RAWSTORE].path_for(message.raw_sha256).exists()
    raw = await client.get(f"/api/v1/messages/{message_id}/raw", headers=TOKEN)
    assert raw.status == 200 and await raw.read() == body


async def test_idempotency_key_returns_first_message(client: Any) -> None:
    body = order_850("ACME", 12)
    headers = {**auth(ACME_KEY), "Idempotency-Key": "batch-2024-03-15-1"}
    first = await client.post("/partners/acme/edi", data=body, headers=headers)
    again = await client.post("/partners/acme/edi", data=body, headers=headers)
    assert first.status == 202 and again.status == 200
    assert (await first.json())["message_id"] == (await again.json())["message_id"]
    assert await count(client, Message) == 1
    conflict = await client.post("/partners/acme/edi", data=order_850("ACME", 13), headers=headers)
    assert conflict.status == 409
    assert (await conflict.json())["error"]["code"] == "idempotency_key_reused"
    assert await count(client, Message) == 1
    # The same key from another partner is another partner's business.
    other = await client.post(
        "/partners/globex/edi",
        data=order_850("GLOBEX", 12),
        headers={**auth(GLOBEX_KEY), "Idempotency-Key": "batch-2024-03-15-1"},
    )
    assert other.status == 202


async def test_concurrent_same_idempotency_key_stores_once(client: Any) -> None:
    import asyncio

    body = order_850("ACME", 14)
    headers = {**auth(ACME_KEY), "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(client.post("/partners/acme/edi", data=body, headers=headers) for _ in range(8))
    )
    ids = {(await r.json())["message_id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status for r in responses).count(202) == 1
    assert await count(client, Message) == 1


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/partners/acme/edi", GLOBEX_KEY),  # another partner's key
        ("/partners/acme/edi", "guess"),  # a wrong key
        ("/partners/nosuch/edi", ACME_KEY),  # a partner that does not exist
        ("/partners/acme/edi", ""),  # no key
    ],
)
async def test_keys_only_open_their_own_partner(client: Any, path: str, key: str) -> None:
    headers = auth(key) if key else {"Content-Type": "application/edi-x12"}
    resp = await client.post(path, data=order_850("ACME", 15), headers=headers)
    assert resp.status == 401
    body = await resp.json()
    # Same answer whether or not the partner exists: nothing to enumerate.
    assert body == {
        "error": {
            "code": "unauthorized",
            "message": "missing or invalid partner credentials (Authorization: Bearer <partner key>)",
        }
    }
    assert await count(client, Message) == 0


async def test_bad_input_gets_json_errors_and_nothing_stored(client: Any) -> None:
    cases = [
        (b"", auth(ACME_KEY), 400, "empty_body"),
        (b"  \r\n", auth(ACME_KEY), 400, "empty_body"),
        (b"hello, this is not EDI", auth(ACME_KEY), 400, "not_x12"),
        (
            order_850("ACME", 16),
            {**auth(ACME_KEY), "Content-Type": "application/json"},
            415,
            "unsupported_media_type",
        ),
        (
            order_850("ACME", 16),
            {**auth(ACME_KEY), "Idempotency-Key": "bad key with spaces"},
            400,
            "bad_idempotency_key",
        ),
    ]
    for body, headers, status, code in cases:
        resp = await client.post("/partners/acme/edi", data=body, headers=headers)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"]["code"] == code
    missing = await client.get("/nothing/here")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    wrong_method = await client.get("/partners/acme/edi")
    assert wrong_method.status == 405
    assert await count(client, Message) == 0
    # ...and the service keeps serving.
    ok = await client.post("/partners/acme/edi", data=order_850("ACME", 16), headers=auth(ACME_KEY))
    assert ok.status == 202


async def test_size_limit(aiohttp_client: Any, tmp_path: Path, partners_dir: Path) -> None:
    settings = make_settings(tmp_path, partners_dir, limits={"max_edi_bytes": 2000, "max_json_bytes": 500})
    client = await aiohttp_client(build_app(settings))
    big = order_850("ACME", 17, sets=20)
    assert len(big) > 2000
    resp = await client.post("/partners/acme/edi", data=big, headers=auth(ACME_KEY))
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"

    # Streamed without Content-Length: the limit holds while reading.
    async def chunks() -> Any:
        for i in range(0, len(big), 300):
            yield big[i : i + 300]

    resp = await client.post("/partners/acme/edi", data=chunks(), headers=auth(ACME_KEY))
    assert resp.status == 413
    assert await count(client, Message) == 0
    raw = tmp_path / "var" / "raw"
    assert not any(p.is_file() for p in raw.rglob("*") if p != raw / "store-id")  # no payload kept
    small = await client.post("/partners/acme/edi", data=order_850("ACME", 17), headers=auth(ACME_KEY))
    assert small.status == 202


async def test_canonical_documents_endpoint(client: Any) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/json"}
    resp = await client.post("/partners/acme/documents", data=json.dumps(canonical_order()), headers=headers)
    assert resp.status == 202, await resp.text()

    bad = canonical_order()
    del bad["document"]["po_number"]
    resp = await client.post("/partners/acme/documents", data=json.dumps(bad), headers=headers)
    assert resp.status == 422
    error = (await resp.json())["error"]
    # The one field-error shape of the whole API (docs/api.md): fields [{loc, msg}].
    assert error["code"] == "invalid_document" and "details" not in error
    assert error["fields"] and all(set(f) == {"loc", "msg"} for f in error["fields"])
    assert "po_number" in json.dumps(error["fields"])

    resp = await client.post("/partners/acme/documents", data=b"{not json", headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_json"
    resp = await client.post(
        "/partners/acme/documents", data=json.dumps(canonical_order()), headers=auth(ACME_KEY)
    )
    assert resp.status == 415
    stolen = {**canonical_order(), "partner_id": "globex"}
    resp = await client.post("/partners/acme/documents", data=json.dumps(stolen), headers=headers)
    assert resp.status == 422
    assert await count(client, Message) == 1


async def test_health_and_readiness(client: Any) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["checks"] == {"database": "ok", "partners": "ok", "storage": "ok"}
    assert body["partners"] == {"loaded": 2, "reload_error": None} and "reason" not in body


async def test_raw_store_failure_is_503_for_large_bodies_and_nothing_acknowledged(
    client: Any, tmp_path: Path
) -> None:
    # A file where the temp directory should be: every raw write fails (like a dead disk).
    tmp_dir = tmp_path / "var" / "raw" / "tmp"
    tmp_dir.rmdir()
    tmp_dir.write_text("in the way")
    large = order_850("ACME", 18) + b"\n" * client.app[RAWSTORE].spill_bytes  # a file, not a row
    resp = await client.post("/partners/acme/edi", data=large, headers=auth(ACME_KEY))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "storage_unavailable"
    assert await count(client, Message) == 0
    # A small body is a database row: the raw store's disk is not on its way.
    resp = await client.post("/partners/acme/edi", data=order_850("ACME", 19), headers=auth(ACME_KEY))
    assert resp.status == 202
    tmp_dir.unlink()
    tmp_dir.mkdir()
    resp = await client.post("/partners/acme/edi", data=large, headers=auth(ACME_KEY))
    assert resp.status == 202


@pytest.fixture
def overrides() -> Overrides:
    return Overrides()
