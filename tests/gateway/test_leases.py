"""Leases held by a live process never run out under it (issue 7, finding 3): the
instance heartbeat renews them while a step works. Before, with a 2 s lease and a
1.5 s ERP, 5 documents were posted 19 times: the same live process claimed its own
running jobs again once their lease passed. Also: a dead peer's leases are released
by the next heartbeat, not after the lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850
from sqlalchemy import insert, select, update

from gateway.app import DATABASE, GATEWAY, Overrides, build_app
from gateway.db.models import Instance, Job, utcnow
from gateway.erp import OrderedSink
from gateway.ports import DeliveryResult, DocumentRecord


class SlowErp(OrderedSink):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: Counter[str] = Counter()

    async def deliver(self, document: DocumentRecord) -> DeliveryResult:
        self.calls[document.idempotency_key] += 1
        await asyncio.sleep(self.seconds)
        return DeliveryResult(ok=True)


async def test_a_step_longer_than_its_lease_is_not_claimed_again(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    erp = SlowErp(2.5)
    settings = make_settings(
        tmp_path,
        partners_dir,
        None,
        pipeline={
            "workers": 4,
            "lease_seconds": 1.0,
            "heartbeat_seconds": 0.2,
            "translate_processes": 0,
            "batch_size": 1,
            "poll_seconds": 0.05,
        },
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides(sink=erp)))
    for n in range(5):
        resp = await client.post(
            "/partners/acme/edi", data=order_850("ACME", 500 + n), headers=auth(ACME_KEY)
        )
        assert resp.status == 202
    for _ in range(200):
        if sum(1 for _ in erp.calls) == 5 and not await _running(client):
            break
        await asyncio.sleep(0.1)
    assert len(erp.calls) == 5
    assert set(erp.calls.values()) == {1}, f"a document was handed to the ERP more than once: {erp.calls}"


async def _running(client: Any) -> int:
    async with client.app[DATABASE].read() as conn:
        return len((await conn.execute(select(Job.id).where(Job.state == "running"))).all())


async def test_a_dead_instances_jobs_are_released_by_the_next_heartbeat(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir, None)))
    db, gateway = client.app[DATABASE], client.app[GATEWAY]
    resp = await client.post("/partners/acme/edi", data=order_850("ACME", 900), headers=auth(ACME_KEY))
    assert resp.status == 202
    now = utcnow()
    async with db.write() as conn:  # a peer that took the job, then went silent 60 s ago
        await conn.execute(
            insert(Instance).values(
                id="peer:1:DEAD",
                hostname="peer",
                pid=1,
                role="worker",
                started_at=now - timedelta(hours=1),
                heartbeat_at=now - timedelta(seconds=60),
            )
        )
        await conn.execute(
            update(Job).values(
                state="running", locked_by="peer:1:DEAD", locked_until=now + timedelta(hours=1)
            )
        )
    counts = await gateway.instance.beat()
    assert counts["jobs_released"] == 1
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job.state, Job.locked_by))).all()
        peers = (await conn.execute(select(Instance.id))).scalars().all()
    assert [tuple(j) for j in jobs] == [("ready", None)]
    assert peers == [gateway.instance.id]
    assert await gateway.pipeline.run_until_idle() >= 1


async def test_the_heartbeat_renews_only_our_own_leases(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir, None)))
    db, gateway = client.app[DATABASE], client.app[GATEWAY]
    await client.post("/partners/acme/edi", data=order_850("ACME", 901), headers=auth(ACME_KEY))
    await client.post("/partners/acme/edi", data=order_850("ACME", 902), headers=auth(ACME_KEY))
    now = utcnow()
    async with db.write() as conn:
        ids = (await conn.execute(select(Job.id).order_by(Job.id))).scalars().all()
        await conn.execute(
            update(Job)
            .where(Job.id == ids[0])
            .values(state="running", locked_by=gateway.instance.id, locked_until=now + timedelta(seconds=1))
        )
        await conn.execute(
            insert(Instance).values(
                id="peer:2:LIVE",
                hostname="peer",
                pid=2,
                role="worker",
                started_at=now,
                heartbeat_at=now + timedelta(hours=1),
            )
        )
        await conn.execute(
            update(Job)
            .where(Job.id == ids[1])
            .values(state="running", locked_by="peer:2:LIVE", locked_until=now + timedelta(seconds=1))
        )
    await gateway.instance.beat()
    async with db.read() as conn:
        until = {r[0]: r[1] for r in (await conn.execute(select(Job.locked_by, Job.locked_until))).all()}
    assert until[gateway.instance.id] > now + timedelta(seconds=5)
    assert until["peer:2:LIVE"] <= now + timedelta(seconds=1)
