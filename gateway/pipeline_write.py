"""The pipeline's translate write: a translated batch's outcomes in one transaction.
A mixin of :class:`gateway.pipeline.Pipeline` (which provides the database, the
settings, :meth:`_write_plan` and the error handling), kept apart so the pipeline's
module stays small.

On SQLite the transaction runs in the writer thread (gateway.db.writer) on a sync
session: the same code, with no greenlet and no aiosqlite hop per statement, so it
must await nothing but its session. PostgreSQL runs it on the async engine."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import pipeline_rows as rows
from gateway.config import PipelineSettings
from gateway.db import jobs
from gateway.db.engine import Database
from gateway.domain.inbound import InboundPlan


class TranslateWrite:
    db: Database
    settings: PipelineSettings
    worker_id: str

    async def _on_error(self, job: jobs.ClaimedJob, exc: Exception) -> None:
        raise NotImplementedError

    async def _write_plan(
        self,
        session: AsyncSession,
        message: Any,
        plan: InboundPlan,
        now: datetime,
        deliver_jobs: list[str] | None = None,
    ) -> None:
        raise NotImplementedError

    async def _write_translated(
        self, ready: list[tuple[jobs.ClaimedJob, Any, InboundPlan]], now: datetime
    ) -> list[jobs.ClaimedJob]:
        """Write the batch in one transaction; returns the deliver jobs it handed to this worker."""
        if self.db.writer is not None:  # SQLite: the whole transaction in one hop
            return await self.db.lean_session(
                functools.partial(self._write_translations, ready=ready, now=now)
            )
        async with self.db.begin() as session:
            return await self._write_translations(session, ready, now)

    async def _write_translations(
        self, session: AsyncSession, ready: list[tuple[jobs.ClaimedJob, Any, InboundPlan]], now: datetime
    ) -> list[jobs.ClaimedJob]:
        """Write a translated batch in ``session``: its jobs finished, every plan, and
        the deliver jobs, inserted already claimed by this worker (returned). Awaits
        nothing but the session (on SQLite it runs in the writer thread)."""
        rows.buffer_events(session)
        rows.pool_control_numbers(session)
        keys = [
            key
            for _, _, plan in ready
            for key in map(rows.interchange_key, plan.interchanges)
            if key is not None
        ]
        writes = await rows.BatchWrites.begin(session, [message.id for _, message, _ in ready], keys)
        ours = await jobs.finish_many(session, [job for job, _, _ in ready], now=now)
        deliver_jobs: list[str] = []
        for job, message, plan in ready:
            if job.id not in ours:  # nothing of it written: its new owner writes
                await self._on_error(job, jobs.LostLease(f"job {job.id} is no longer ours"))
                continue
            await self._write_plan(session, message, plan, now, deliver_jobs)
        await rows.return_control_numbers(session)
        await writes.flush(session)
        await rows.flush_events(session)
        # This worker delivers them next, with no claim in between.
        handed = await jobs.enqueue_claimed(
            session,
            deliver_jobs,
            "deliver",
            worker=self.worker_id,
            now=now,
            lease=timedelta(seconds=self.settings.lease_seconds),
        )
        return handed
