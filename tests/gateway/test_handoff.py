"""In steady state the intake hands new messages to this process's pipeline in memory
(gateway.handoff): their translate jobs are written already claimed in the commit that
stores them, so no worker looks them up; past the hand-off's bound, or with no pipeline
running, they are ordinary ready jobs. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import test_service_pipeline
from conftest import make_settings
from gwsamples import order_850
from intake_rig import accept_rest, running_intake
from sqlalchemy import select
from test_service_pipeline import RecordingErp, post

from gateway.app import DATABASE, PIPELINE
from gateway.config import Settings
from gateway.db.models import Job, Message
from gateway.handoff import Handoff


@pytest.fixture
def settings(tmp_path: Path, partners_dir: Path, database_url: str | None) -> Settings:
    # Workers running, and a poll so slow that a job found in the database would wait 60 s.
    return make_settings(tmp_path, partners_dir, database_url, pipeline={"workers": 2, "poll_seconds": 60})


erp, overrides = test_service_pipeline.erp, test_service_pipeline.overrides  # its fixtures (RecordingErp)


async def test_accepted_messages_reach_the_erp_through_the_hand_off(client: Any, erp: RecordingErp) -> None:
    pipeline = client.app[PIPELINE]
    await asyncio.sleep(0.2)  # the workers' first look at the database (at start) is over
    ids = [await post(client, order_850("ACME", 700 + n, po=f"PO-H{n}")) for n in range(5)]
    for _ in range(600):  # the translate pool starts on first use: seconds on a loaded machine
        async with client.app[DATABASE].read() as conn:
            statuses = (await conn.execute(select(Message.status).where(Message.id.in_(ids)))).scalars().all()
        if statuses == ["acknowledged"] * 5:
            break
        await asyncio.sleep(0.05)
    assert sorted(d.message_id for d in erp.deliveries) == sorted(ids)
    assert all(d.first_attempt and d.received_at is not None for d in erp.deliveries)
    assert pipeline.handoff.handed == 5 and len(pipeline.handoff) == 0
    async with client.app[DATABASE].read() as conn:
        jobs = (
            await conn.execute(
                select(Job.step, Job.state, Job.attempts, Job.locked_by).where(Job.message_id.in_(ids))
            )
        ).all()
    # The rows are written as before, in the same transactions: the translate job was
    # claimed by this process at the intake's commit and run once.
    assert sorted(jobs) == sorted(
        [("translate", "done", 1, pipeline.worker_id)] * 5 + [("deliver", "done", 1, pipeline.worker_id)] * 5
    )


async def test_the_hand_off_is_bounded_and_closed_means_ready_jobs(
    tmp_path: Path, database_url: str | None
) -> None:
    woken: list[str] = []
    handoff = Handoff("me:1", lease_seconds=60, limit=3, on_handed=lambda: woken.append("handed"))
    handoff.open()
    async with running_intake(
        tmp_path, database_url, handoff=handoff, on_enqueued=lambda: woken.append("ready")
    ) as (db, intake):
        first = [(await accept_rest(intake, n)).message_id for n in range(5)]
        handoff.close()
        later = (await accept_rest(intake, 5)).message_id
        async with db.read() as conn:
            rows = {
                r.message_id: r
                for r in (
                    await conn.execute(
                        select(
                            Job.id, Job.message_id, Job.state, Job.attempts, Job.locked_by, Job.locked_until
                        )
                    )
                ).all()
            }
        # The first three went to the hand-off (its bound), claimed for its worker with a lease.
        assert [rows[m].state for m in first] == ["running"] * 3 + ["ready"] * 2
        assert [(rows[m].attempts, rows[m].locked_by) for m in first[:3]] == [(1, "me:1")] * 3
        assert all(rows[m].locked_until is not None for m in first[:3])
        assert (rows[later].state, rows[later].locked_by) == ("ready", None)
        # One wake-up per commit: the hand-off's for claimed jobs, the poll's for ready ones.
        assert woken == ["handed"] * 3 + ["ready"] * 3
        assert handoff.room() == 0
    assert handoff.handed == 3


async def test_a_handed_job_carries_the_stored_message(tmp_path: Path, database_url: str | None) -> None:
    handoff = Handoff("me:2", lease_seconds=60, limit=10, on_handed=lambda: None)
    handoff.open()
    async with running_intake(tmp_path, database_url, handoff=handoff) as (db, intake):
        results = await asyncio.gather(*(accept_rest(intake, n) for n in range(4)))
        handed = handoff.take(10)
        async with db.read() as conn:
            jobs = dict((await conn.execute(select(Job.message_id, Job.id))).all())
            stored = {m.id: m for m in (await conn.execute(select(Message))).all()}
    assert sorted(h.job.message_id for h in handed) == sorted(r.message_id for r in results)
    for h in handed:
        assert (h.job.id, h.job.step, h.job.attempts, h.job.worker) == (
            jobs[h.job.message_id],
            "translate",
            1,
            "me:2",
        )
        row = stored[h.job.message_id]
        for column in ("id", "partner_id", "kind", "status", "raw_sha256", "raw_size", "transport_id"):
            assert getattr(h.message, column) == getattr(row, column)


def test_the_hand_off_holds_a_bounded_number_of_payload_bytes_whatever_the_batch_size() -> None:
    # A small payload travels with its job: with a huge [pipeline] batch_size (limit) the
    # queue would otherwise hold limit x 64 KiB. Room counts each job at the largest
    # payload it could carry, so the bytes waiting never pass max_bytes.
    from types import SimpleNamespace

    from gateway.db.jobs import ClaimedJob
    from gateway.handoff import SLOT_BYTES, Handed

    handoff = Handoff(
        "me:3", lease_seconds=60, limit=10_000, on_handed=lambda: None, max_bytes=4 * SLOT_BYTES
    )
    handoff.open()

    def job(n: int, size: int | None) -> Handed:
        data = None if size is None else b"x" * size
        return Handed(ClaimedJob(n, f"m{n}", "translate", 1, "me:3"), SimpleNamespace(raw_data=data))

    assert handoff.room() == 4
    handoff.put([job(n, SLOT_BYTES) for n in range(handoff.room())])
    assert (handoff.bytes, handoff.room()) == (4 * SLOT_BYTES, 0)
    taken = handoff.take(3)
    assert len(taken) == 3 and (handoff.bytes, handoff.room()) == (SLOT_BYTES, 3)
    handoff.put([job(10, 100), job(11, None), job(12, SLOT_BYTES)])  # a spilled payload carries no bytes
    assert handoff.bytes == 2 * SLOT_BYTES + 100 and handoff.room() == 1
    assert handoff.bytes <= handoff.max_bytes
    handoff.close()
    assert (handoff.bytes, handoff.room()) == (0, 0)
