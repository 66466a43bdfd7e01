"""The work queue: claiming, finishing, retrying and cancelling pipeline jobs.

A job is one step of one message (``translate``, ``deliver``, ``acknowledge``...).
Claiming sets ``state='running'`` with a lease (``locked_by``, ``locked_until``) and
counts the attempt; :func:`claim_many` claims a whole batch in one statement pair. On PostgreSQL the candidate row is picked with
``FOR UPDATE SKIP LOCKED`` so several gateway processes share one queue without
ever running a job twice; SQLite has one writer at a time anyway (``BEGIN
IMMEDIATE``), and the service runs a single process on it.

A job whose lease ran out (its process died) becomes claimable again. Never two
jobs of one message run at once: a message with a live running job is skipped.
Finishing checks the lease is still ours, so a process that lost its lease cannot
overwrite the work of the one that took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from gateway.db import lean, pg_raw, pg_translate
from gateway.db.models import Job
from gateway.db.one_of import one_of
from gateway.db.writer import lean_connection, ts


class LostLease(Exception):
    """The job's lease expired and another worker may own it now."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    message_id: str
    step: str
    attempts: int  # including this one
    worker: str


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    other = aliased(Job)
    busy = exists().where(
        other.message_id == Job.message_id,
        other.id != Job.id,
        other.state == "running",
        other.locked_until >= now,
    )
    due = or_(
        and_(Job.state == "ready", Job.next_attempt_at <= now),
        and_(Job.state == "running", Job.locked_until < now),
    )
    return and_(due, ~busy)


async def claim(conn: AsyncConnection, *, worker: str, now: datetime, lease: timedelta) -> ClaimedJob | None:
    """Claim the oldest due job, in the caller's transaction (commit it promptly)."""
    claimed = await claim_many(conn, worker=worker, now=now, lease=lease, limit=1)
    return claimed[0] if claimed else None


async def claim_many(
    conn: AsyncConnection, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs, oldest first and at most one per message, in
    the caller's transaction (commit it promptly): one commit for a whole batch.

    On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED``, so a
    second process claiming at the same moment skips them instead of waiting or
    taking them too."""
    candidates = (
        select(Job.id, Job.message_id)
        .where(_claimable(now))
        .order_by(Job.next_attempt_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    seen: set[str] = set()
    ids: list[int] = []
    for job_id, message_id in (await conn.execute(candidates)).all():
        # Two due jobs of one message (not expected, but cheap to rule out): the
        # later one waits for the next claim, so a message never runs twice at once.
        if message_id not in seen:
            seen.add(message_id)
            ids.append(job_id)
    if not ids:
        return []
    rows = (
        await conn.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(
                state="running",
                locked_by=worker,
                locked_until=now + lease,
                attempts=Job.attempts + 1,
                updated_at=now,
            )
            .returning(Job.id, Job.message_id, Job.step, Job.attempts)
        )
    ).all()
    order = {job_id: n for n, job_id in enumerate(ids)}
    return [
        ClaimedJob(id=row.id, message_id=row.message_id, step=row.step, attempts=row.attempts, worker=worker)
        for row in sorted(rows, key=lambda r: order[r.id])
    ]


async def finish(
    session: AsyncSession, job: ClaimedJob, *, now: datetime, state: str = "done", error: str | None = None
) -> None:
    """Mark ``job`` finished inside the step's own transaction; raises LostLease."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == job.worker, Job.state == "running")
        # locked_by stays: which instance ran the step (traceability, gateway worker tests)
        .values(state=state, locked_until=None, last_error=error, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LostLease(f"job {job.id} is no longer ours")


async def finish_many(session: AsyncSession, claimed: list[ClaimedJob], *, now: datetime) -> set[int]:
    """Mark ``claimed`` done in one statement; returns the ids still ours (the
    others lost their lease: write nothing for them)."""
    if not claimed:
        return set()
    worker = claimed[0].worker
    raw = lean_connection(session)
    if raw is not None:  # SQLite's writer thread: plain sqlite3, no ORM (gateway.db.writer)
        ours: set[int] = set()
        for part in lean.chunks([j.id for j in claimed]):
            sql = (
                "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL, updated_at = ? "
                f"WHERE id IN ({lean.placeholders(len(part))}) AND locked_by = ? AND state = 'running' "
                "RETURNING id"
            )
            ours.update(row[0] for row in raw.execute(sql, (ts(now), *part, worker)))
        return ours
    pg = await pg_raw.driver(session)
    if pg is not None:  # PostgreSQL: the same guarded UPDATE on asyncpg (gateway.db.pg_translate)
        return await pg_translate.finish_jobs(pg, [j.id for j in claimed], worker, now)
    result = await session.execute(
        update(Job)
        .where(
            one_of(session, Job.id, [j.id for j in claimed]), Job.locked_by == worker, Job.state == "running"
        )
        .values(state="done", locked_until=None, last_error=None, updated_at=now)
        .returning(Job.id)
    )
    return set(result.scalars().all())


async def retry_later(
    session: AsyncSession, job: ClaimedJob, *, now: datetime, at: datetime, error: str
) -> None:
    """Put ``job`` back for another attempt at ``at``; raises LostLease like :func:`finish`."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == job.worker, Job.state == "running")
        .values(
            state="ready",
            locked_by=None,
            locked_until=None,
            next_attempt_at=at,
            last_error=error,
            updated_at=now,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LostLease(f"job {job.id} is no longer ours")


async def enqueue(session: AsyncSession, message_id: str, step: str, *, now: datetime) -> None:
    await session.execute(
        insert(Job).values(
            message_id=message_id,
            step=step,
            state="ready",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )


async def enqueue_claimed(
    session: AsyncSession, message_ids: list[str], step: str, *, worker: str, now: datetime, lease: timedelta
) -> list[ClaimedJob]:
    """Insert the next step of several messages already claimed by ``worker``, in
    one statement: the worker that wrote the previous step runs them straight after
    its commit, with no claim transaction and no wake-up in between. If it dies
    first, the lease runs out and they are claimable like any other."""
    if not message_ids:
        return []
    values = [
        {
            "message_id": message_id,
            "step": step,
            "state": "running",
            "attempts": 1,
            "locked_by": worker,
            "locked_until": now + lease,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for message_id in message_ids
    ]
    raw = lean_connection(session)
    if raw is not None:  # SQLite's writer thread: plain sqlite3 (gateway.db.writer)
        lean.insert(raw, Job, values)
        by_message: dict[str, int] = {}
        for part in lean.chunks(message_ids):
            sql = (
                f"SELECT message_id, id FROM jobs WHERE message_id IN ({lean.placeholders(len(part))}) "
                "AND step = ? AND state = 'running' AND locked_by = ? AND created_at = ?"
            )
            by_message.update(raw.execute(sql, (*part, step, worker, ts(now))).fetchall())
        return [
            ClaimedJob(id=by_message[m], message_id=m, step=step, attempts=1, worker=worker)
            for m in message_ids
        ]
    pg = await pg_raw.driver(session)
    if pg is not None:  # PostgreSQL: one INSERT ... SELECT over an array on asyncpg
        ids = await pg_translate.enqueue_claimed(pg, message_ids, step, worker, now, lease)
        return [
            ClaimedJob(id=ids[m], message_id=m, step=step, attempts=1, worker=worker) for m in message_ids
        ]
    if session.get_bind().dialect.name == "sqlite":
        # INSERT ... RETURNING in parameter order runs one statement per row on SQLite:
        # insert them all in one executemany, then read the ids back in one query
        # (only this transaction can have written running jobs of these messages now).
        await session.execute(insert(Job), values)
        found = (
            await session.execute(
                select(Job.id, Job.message_id).where(
                    Job.message_id.in_(message_ids),
                    Job.step == step,
                    Job.state == "running",
                    Job.locked_by == worker,
                    Job.created_at == now,
                )
            )
        ).all()
        by_message = {r.message_id: r.id for r in found}
        return [
            ClaimedJob(id=by_message[m], message_id=m, step=step, attempts=1, worker=worker)
            for m in message_ids
        ]
    rows = (
        await session.execute(
            insert(Job).returning(Job.id, Job.message_id, sort_by_parameter_order=True), values
        )
    ).all()
    return [ClaimedJob(id=r.id, message_id=r.message_id, step=step, attempts=1, worker=worker) for r in rows]


async def enqueue_many(session: AsyncSession, message_ids: list[str], step: str, *, now: datetime) -> None:
    """:func:`enqueue` for several messages in one statement."""
    if message_ids:
        await session.execute(
            insert(Job),
            [
                {
                    "message_id": message_id,
                    "step": step,
                    "state": "ready",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for message_id in message_ids
            ],
        )


async def running_job(session: AsyncSession, message_id: str, *, now: datetime) -> int | None:
    """The id of a job of ``message_id`` running under a live lease, if any."""
    return (
        await session.execute(
            select(Job.id).where(
                Job.message_id == message_id, Job.state == "running", Job.locked_until >= now
            )
        )
    ).scalar_one_or_none()


async def cancel_pending(session: AsyncSession, message_id: str, *, now: datetime) -> int:
    """Cancel every job of ``message_id`` not yet done (ready, or running with a dead lease)."""
    result = await session.execute(
        update(Job)
        .where(Job.message_id == message_id, Job.state.in_(("ready", "running")))
        .values(state="cancelled", locked_by=None, locked_until=None, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def release_all_running(conn: AsyncConnection, *, now: datetime) -> int:
    """Make every running job claimable again. Only for single-process databases
    (SQLite) at start-up: whatever was running died with the previous process."""
    result = await conn.execute(
        update(Job)
        .where(Job.state == "running")
        .values(state="ready", locked_by=None, locked_until=None, updated_at=now)
    )
    return int(result.rowcount)


async def release_mine(
    conn: AsyncConnection, *, worker: str, now: datetime, ids: list[int] | None = None
) -> int:
    """Give back jobs ``worker`` still holds (all, or ``ids``): at a graceful stop, or
    when recording a retry failed, so they need not wait for their lease to run out."""
    where = [Job.state == "running", Job.locked_by == worker]
    if ids is not None:
        where.append(Job.id.in_(ids))
    result = await conn.execute(
        update(Job).where(*where).values(state="ready", locked_by=None, locked_until=None, updated_at=now)
    )
    return int(result.rowcount)
