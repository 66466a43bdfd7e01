"""Review of decision 0025 (small payloads kept as ``raw_journal`` rows), on SQLite and
PostgreSQL: a payload accepted many times is read once, not once per copy; and a
replay that saw the payload cannot be left without it by a prune running meanwhile."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

from conftest import ACME_KEY, auth

from gateway.app import BLOBS, DATABASE
from gateway.db.models import JournaledPayload

COPIES = 150


async def _post(client: Any, body: bytes) -> str:
    resp = await client.post("/partners/acme/edi", data=body, headers=auth(ACME_KEY))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def test_a_payload_accepted_many_times_is_read_once(client: Any) -> None:
    """The same bytes accepted again are a new message with a row of its own (one per
    accept): a reader by hash must load one copy, not all of them (150 x 60 KiB here;
    a partner resending one document could make it any number)."""
    body = b"ISA*" + b"7" * 60_000 + b"~"
    sha = hashlib.sha256(body).hexdigest()
    await _post(client, body)
    db, blobs = client.app[DATABASE], client.app[BLOBS]
    row = {"sha256": sha, "data": body, "store": None, "writer": None}
    async with db.write() as conn:  # the rows further accepts of the same bytes add
        await conn.execute(JournaledPayload.__table__.insert(), [row] * (COPIES - 1))

    for read in (blobs.read(sha), blobs.read_rows([sha]), blobs.locate(sha)):
        tracemalloc.start()
        try:
            found = await read
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert found in (body, {sha: body})
        assert peak < 20 * len(body), f"{peak:,} bytes traced to read one {len(body):,}-byte payload"
