"""The one leased runner's shared parts: retry backoff, this process's instance
and its heartbeat, and scheduled work.

Every kind of leased work (pipeline jobs in ``jobs``, partner sends in ``outbox``,
periodic tasks in ``schedules``) is held under this process's instance id:

- **Backoff** is one policy for all of them: exponential with jitter, never less
  than what the far side asked for (Retry-After), with a give-up rule by attempts
  and by age.
- **The heartbeat** (:class:`Instance`) renews, every ``heartbeat_seconds``, the
  lease of everything this instance holds, so a step that runs longer than its
  lease is never claimed again by anyone while its worker lives; and it releases
  at once every lease held by an instance whose heartbeat stopped (SIGKILL, a lost
  machine), so its work is picked up within seconds instead of after the lease.
- **Schedules** (:class:`Scheduler`): periodic work not tied to a message
  (retention, the overdue-ack check, SFTP polls per partner) is claimed by one
  instance at a time with the same leases.

On SQLite there is one process (the data-dir lock says so); the same code runs and
finds nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update

from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import Instance as InstanceRow
from gateway.db.models import Job, OutboxItem, Schedule
from gateway.domain.states import JobState, OutboxStatus
from gateway.ports import Clock

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- backoff


class TransientError(Exception):
    """A step failed for a reason that may pass; the job is retried with backoff
    (or after ``retry_after`` seconds when the failing party said when)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry timing for every leased kind of work."""

    max_attempts: int
    max_age: timedelta
    base_seconds: float
    max_seconds: float

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before try ``attempt + 1``: jitter over an exponential ceiling,
        never less than what the far side asked for."""
        ceiling = min(self.base_seconds * 2 ** max(0, attempt - 1), self.max_seconds)
        # Jitter spreads a recovering peer's load; keep at least half the ceiling so
        # retries never pile up right after a failure.
        jittered = ceiling * (0.5 + 0.5 * (rng or random).random())
        return float(max(jittered, retry_after or 0.0))

    def gives_up(self, attempt: int, first_at: datetime, now: datetime) -> bool:
        return attempt >= self.max_attempts or now - first_at >= self.max_age


# --------------------------------------------------------------------------- instance


def new_instance_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id()[-6:]}"


@dataclass(slots=True)
class Instance:
    """This process in the ``instances`` table, and the heartbeat that keeps its
    leases (jobs, outbox items, schedules) alive and frees those of dead peers."""

    db: Database
    clock: Clock
    role: str = "serve"
    heartbeat_seconds: float = 5.0
    lease_seconds: float = 30.0  # what a renewal extends every held lease to
    dead_after_seconds: float = 20.0  # a peer silent this long is dead
    id: str = field(default_factory=new_instance_id)
    _task: asyncio.Task[None] | None = None
    beats: int = 0

    def _row(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "role": self.role,
            "started_at": now,
            "heartbeat_at": now,
        }

    async def start(self) -> None:
        now = self.clock()
        async with self.db.write() as conn:
            await conn.execute(insert(InstanceRow).values(**self._row(now)))
        self._task = asyncio.create_task(self._beat_forever(), name=f"heartbeat-{self.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with self.db.write() as conn:
                await conn.execute(delete(InstanceRow).where(InstanceRow.id == self.id))
        except Exception as exc:  # the database may be gone; peers see us as dead soon
            log.warning("could not remove instance %s at stop: %s", self.id, exc)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat failed (retrying in %.0fs): %s", self.heartbeat_seconds, exc)

    async def beat(self) -> dict[str, int]:
        """One heartbeat: renew our row and leases, release the dead's. Returns counts."""
        now = self.clock()
        until = now + timedelta(seconds=self.lease_seconds)
        counts: dict[str, int] = {}
        async with self.db.write() as conn:
            alive = await conn.execute(
                update(InstanceRow).where(InstanceRow.id == self.id).values(heartbeat_at=now)
            )
            if alive.rowcount == 0:  # removed by a peer that thought us dead: come back
                await conn.execute(insert(InstanceRow).values(**self._row(now)))
            renewed = await conn.execute(
                update(Job)
                .where(Job.locked_by == self.id, Job.state == JobState.RUNNING, Job.locked_until < until)
                .values(locked_until=until)
            )
            counts["jobs_renewed"] = int(renewed.rowcount)
            sending = await conn.execute(
                update(OutboxItem)
                .where(OutboxItem.locked_by == self.id, OutboxItem.status == OutboxStatus.SENDING)
                .values(next_attempt_at=until)
            )
            counts["outbox_renewed"] = int(sending.rowcount)
            await conn.execute(
                update(Schedule).where(Schedule.locked_by == self.id).values(locked_until=until)
            )
            dead = (
                (
                    await conn.execute(
                        select(InstanceRow.id).where(
                            InstanceRow.heartbeat_at < now - timedelta(seconds=self.dead_after_seconds),
                            InstanceRow.id != self.id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            if dead:
                counts.update(await release_instances(conn, list(dead), now=now))
        self.beats += 1
        if counts.get("jobs_released") or counts.get("outbox_released"):
            log.warning(
                "released the leases of %d dead instance(s) %s: %d job(s), %d outbox item(s)",
                len(dead),
                ", ".join(dead),
                counts.get("jobs_released", 0),
                counts.get("outbox_released", 0),
            )
        return counts


async def release_instances(conn: object, ids: list[str], *, now: datetime) -> dict[str, int]:
    """Make everything held by instances ``ids`` claimable at once and forget them."""
    execute = conn.execute  # type: ignore[attr-defined]
    jobs = await execute(
        update(Job)
        .where(Job.locked_by.in_(ids), Job.state == JobState.RUNNING)
        .values(state=JobState.READY, locked_by=None, locked_until=None, updated_at=now)
    )
    outbox = await execute(
        update(OutboxItem)
        .where(OutboxItem.locked_by.in_(ids), OutboxItem.status == OutboxStatus.SENDING)
        .values(status=OutboxStatus.PENDING, locked_by=None, next_attempt_at=now)
    )
    await execute(
        update(Schedule).where(Schedule.locked_by.in_(ids)).values(locked_by=None, locked_until=None)
    )
    await execute(delete(InstanceRow).where(InstanceRow.id.in_(ids)))
    return {"jobs_released": int(jobs.rowcount), "outbox_released": int(outbox.rowcount)}


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class Task:
    """A periodic task: ``run()`` every ``interval`` seconds, by one instance at a time."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    first_delay: float = 0.0  # after a fresh schedule row is made


@dataclass(slots=True)
class Scheduler:
    """Runs due :class:`Task` s under leases in ``schedules``; every instance runs one,
    and each due task is taken by exactly one of them."""

    db: Database
    instance: Instance
    clock: Clock
    tick_seconds: float = 1.0
    tasks: dict[str, Task] = field(default_factory=dict)
    _loop: asyncio.Task[None] | None = None
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    def add(self, task: Task) -> None:
        self.tasks[task.name] = task

    def discard(self, name: str) -> None:
        self.tasks.pop(name, None)

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._forever(), name="scheduler")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            async with self.db.write() as conn:
                await conn.execute(
                    update(Schedule)
                    .where(Schedule.locked_by == self.instance.id)
                    .values(locked_by=None, locked_until=None)
                )

    async def _forever(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(self.tick_seconds)

    async def run_due(self) -> list[str]:
        """Claim and start every due task (in the background); the names started.
        One read finds what may be due; only those take a write transaction (the
        claim, which checks again), so an idle tick never queues on the write gate."""
        started = []
        waiting = await self._not_due()
        for task in list(self.tasks.values()):
            if task.name in waiting or any(t.get_name() == f"schedule:{task.name}" for t in self._running):
                continue
            if await self._claim(task):
                job = asyncio.create_task(self._run(task), name=f"schedule:{task.name}")
                self._running.add(job)
                job.add_done_callback(self._running.discard)
                started.append(task.name)
        return started

    async def _not_due(self) -> set[str]:
        """Names of the tasks whose schedule row says they are not due now (not yet
        time, or leased); a task without a row is due (its claim makes the row)."""
        now = self.clock()
        async with self.db.read() as conn:
            rows = (
                await conn.execute(select(Schedule.name, Schedule.next_run_at, Schedule.locked_until))
            ).all()
        return {
            name
            for name, next_run_at, locked_until in rows
            if next_run_at > now or (locked_until is not None and locked_until >= now)
        }

    async def _claim(self, task: Task) -> bool:
        now = self.clock()
        until = now + timedelta(seconds=self.instance.lease_seconds)
        async with self.db.write() as conn:
            found = (
                await conn.execute(select(Schedule.next_run_at).where(Schedule.name == task.name))
            ).first()
            if found is None:
                dialect = conn.dialect.name
                values = {"name": task.name, "next_run_at": now + timedelta(seconds=task.first_delay)}
                if dialect == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert as upsert
                else:
                    from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
                await conn.execute(upsert(Schedule).values(**values).on_conflict_do_nothing())
            claimed = await conn.execute(
                update(Schedule)
                .where(
                    Schedule.name == task.name,
                    Schedule.next_run_at <= now,
                    or_(Schedule.locked_until.is_(None), Schedule.locked_until < now),
                )
                .values(locked_by=self.instance.id, locked_until=until)
            )
            return bool(claimed.rowcount == 1)

    async def _run(self, task: Task) -> None:
        error: str | None = None
        try:
            await task.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled task %s failed", task.name)
        now = self.clock()
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    update(Schedule)
                    .where(Schedule.name == task.name, Schedule.locked_by == self.instance.id)
                    .values(
                        locked_by=None,
                        locked_until=None,
                        last_run_at=now,
                        last_error=error,
                        next_run_at=now + timedelta(seconds=task.interval),
                    )
                )
        except Exception as exc:
            log.warning("could not record the run of %s (its lease runs out): %s", task.name, exc)
