"""Small payloads kept in the database (decision 0025) through the BlobStore port
(gateway.blobs), on SQLite and PostgreSQL: the adapter finds a row or a file, the
pipeline plans messages it claimed from the table from their rows, downloads and
replay see rows, and retention deletes rows no live message needs."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850
from sqlalchemy import delete, func, select, update
from test_retention import add_message, count, storage

from gateway import retention
from gateway.app import BLOBS, DATABASE, PARTNERS, PIPELINE, RAWSTORE, build_app
from gateway.db.models import Job, JournaledPayload, Message, utcnow

TOKEN = {"Authorization": "Bearer internal-test-token"}


async def _post(client: Any, body: bytes) -> str:
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def test_the_adapter_reads_rows_then_files(client: Any) -> None:
    blobs, store = client.app[BLOBS], client.app[RAWSTORE]
    small = order_850("ACME", 1)
    await _post(client, small)
    small_sha = hashlib.sha256(small).hexdigest()
    large = await store.write_bytes(b"ISA*" + b"9" * (store.spill_bytes + 10), limit=1 << 20)
    missing = "0" * 64

    assert await blobs.locate(small_sha) == small and not store.exists(small_sha)
    assert await blobs.locate(large.sha256) == large.path  # streamed from the file by downloads
    assert await blobs.locate(missing) is None
    assert await blobs.read(small_sha) == small
    assert await blobs.read(large.sha256) == large.path.read_bytes()
    assert await blobs.read(missing) is None
    assert [await blobs.exists(s) for s in (small_sha, large.sha256, missing)] == [True, True, False]
    # one look-up for a batch: rows only (files are opened where they are planned)
    assert await blobs.read_rows([small_sha, large.sha256, missing, small_sha]) == {small_sha: small}


async def test_jobs_claimed_from_the_table_are_planned_from_their_rows(client: Any) -> None:
    """No hand-off here (workers = 0): the pipeline claims the translate jobs and reads
    the payloads in one SELECT; a message whose row is gone fails its job, not the batch."""
    ids = [await _post(client, order_850("ACME", 20 + n)) for n in range(3)]
    async with client.app[DATABASE].write() as conn:
        sha = (await conn.execute(select(Message.raw_sha256).where(Message.id == ids[2]))).scalar_one()
        await conn.execute(delete(JournaledPayload).where(JournaledPayload.sha256 == sha))
    await client.app[PIPELINE].run_until_idle()
    async with client.app[DATABASE].read() as conn:
        status = dict((await conn.execute(select(Message.id, Message.status))).all())
    assert status[ids[0]] == status[ids[1]] == "translated", status
    assert status[ids[2]] == "received", status  # retried (the payload is gone), as for a lost file


async def test_download_and_replay_of_a_payload_kept_as_a_row(client: Any) -> None:
    body = order_850("ACME", 30)
    message_id = await _post(client, body)
    await client.app[PIPELINE].run_until_idle()
    resp = await client.get(f"/api/v1/messages/{message_id}/raw", headers=TOKEN)
    assert resp.status == 200 and await resp.read() == body
    assert resp.headers["Content-Type"] == "application/edi-x12"
    replay = await client.post(f"/api/v1/messages/{message_id}/replay", headers=TOKEN)
    assert replay.status == 202, await replay.text()
    await client.app[PIPELINE].run_until_idle()
    async with client.app[DATABASE].write() as conn:  # as retention does
        await conn.execute(delete(JournaledPayload))
    assert (await client.get(f"/api/v1/messages/{message_id}/raw", headers=TOKEN)).status == 410
    assert (await client.post(f"/api/v1/messages/{message_id}/replay", headers=TOKEN)).status == 409


async def _row_message(client: Any, body: bytes, *, status: str, age_days: float) -> str:
    """A message whose small payload is a kept row, as the intake writes it, settled
    (no job left) and last changed ``age_days`` ago."""
    message_id = await _post(client, body)
    old = utcnow() - timedelta(days=age_days)
    async with client.app[DATABASE].write() as conn:
        await conn.execute(delete(Job).where(Job.message_id == message_id))
        await conn.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=status, received_at=old, updated_at=old)
        )
    return message_id


async def _rows(db: Any) -> dict[str, int]:
    async with db.read() as conn:
        found = await conn.execute(
            select(JournaledPayload.sha256, func.count()).group_by(JournaledPayload.sha256)
        )
        return {sha: int(n) for sha, n in found.all()}


async def test_retention_deletes_the_rows_no_live_message_needs(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    settings = make_settings(tmp_path, partners_dir, database_url, **storage(raw_retention_days=30))
    client = await aiohttp_client(build_app(settings))
    db, store = client.app[DATABASE], client.app[RAWSTORE]
    bodies = {
        name: order_850("ACME", 40 + n) for n, name in enumerate(["acked", "received", "recent", "shared"])
    }
    ids = {
        "acked": await _row_message(client, bodies["acked"], status="acknowledged", age_days=40),
        "received": await _row_message(client, bodies["received"], status="received", age_days=40),
        "recent": await _row_message(client, bodies["recent"], status="acknowledged", age_days=10),
        "shared_old": await _row_message(client, bodies["shared"], status="acknowledged", age_days=40),
    }
    # the same bytes again, a new message with a row of its own: both rows stay
    ids["shared_new"] = await _post(client, bodies["shared"])
    orphan = b"ISA*its-messages-were-pruned~"
    async with db.write() as conn:
        await conn.execute(
            JournaledPayload.__table__.insert(),
            [{"sha256": hashlib.sha256(orphan).hexdigest(), "data": orphan}],
        )
    # a payload that is a file is the file pass's business, as before
    filed = await add_message(db, store, b"ISA*a-file", status="acknowledged", age_days=40)
    sha = {name: hashlib.sha256(body).hexdigest() for name, body in bodies.items()}
    before = await _rows(db)
    assert before[sha["shared"]] == 2

    preview = await retention.prune(db, store, settings, partners=client.app[PARTNERS](), dry_run=True)
    assert (preview.raw_rows, preview.raw_row_bytes) == (2, len(bodies["acked"]) + len(orphan))
    assert await _rows(db) == before and preview.raw_files == 1

    report = await retention.prune(db, store, settings, partners=client.app[PARTNERS]())
    assert (report.raw_rows, report.raw_row_bytes) == (2, len(bodies["acked"]) + len(orphan))
    assert "2 raw row(s)" in report.summary()
    left = await _rows(db)
    assert set(left) == {sha["received"], sha["recent"], sha["shared"]} and left[sha["shared"]] == 2
    assert (await client.get(f"/api/v1/messages/{ids['acked']}/raw", headers=TOKEN)).status == 410
    resp = await client.get(f"/api/v1/messages/{ids['shared_old']}/raw", headers=TOKEN)
    assert resp.status == 200 and await resp.read() == bodies["shared"]
    assert not store.exists(await _sha(db, filed))
    assert await count(db, Message) == len(ids) + 1
    assert (await retention.prune(db, store, settings, partners=client.app[PARTNERS]())).raw_rows == 0


async def _sha(db: Any, message_id: str) -> str:
    async with db.read() as conn:
        return str(
            (await conn.execute(select(Message.raw_sha256).where(Message.id == message_id))).scalar_one()
        )
