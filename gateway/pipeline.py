"""The inbound pipeline: the state machine every accepted message walks, and the
workers that drive it from the ``jobs`` queue.

States of an inbound message (``messages.status``), each transition recorded as a
timestamped row in ``message_events``::

    received -> parsed -> translated -> delivered -> acknowledged
         \\-> failed        (not X12, every set rejected, an error, retries exhausted)
         \\-> quarantined   (no partner profile for the ISA sender, or a sender that is
                            not the authenticated partner's): kept, never forwarded, no 997
         \\-> duplicate     (same sender + ISA13 inside the duplicate window): not
                            forwarded again; a TA1 025 if the profile sends TA1s

Steps (one job each): ``translate`` reads the raw file, stores one ``documents`` row
per translated set, registers the interchange for duplicate detection and renders
the TA1/997/999 into the outbox as *held*; ``deliver`` hands each document to the
:class:`ErpSink` and, once every document is with the ERP, releases the held
acknowledgments to the partner in the same commit (events ``delivered`` then
``acknowledged``: a 997 goes out once the documents are safe in the ERP). The
``acknowledge`` step remains for feed mode, where the ERP's confirmation comes
later (gateway.erp). Acks of a message that ends failed or duplicate are released
at once, and so are those of a partner whose profile says ``x12.ack_after =
"translation"``: they are ``pending`` in the translate step's own commit, and the
later releases find nothing held. A document the ERP refuses for good (4xx) is
dead-lettered and the next ones are still delivered; the message ends
``partly_delivered`` and its acks go out once every document has its outcome (a
997 speaks for syntax, which was fine).

Batches: a worker claims up to ``batch_size`` due jobs in one transaction (at most
one per message), translates the batch's messages side by side and writes all their
outcomes in one transaction (falling back to one transaction per message if that
fails), and delivers a batch's messages side by side (each message's documents in
order) recording every outcome in one transaction. On SQLite, where each commit is
an fsync, that is a few commits per batch instead of six per message.

Each step is retried with exponential backoff on transient failures (storage,
a sink saying "try later"); other errors fail the message with the reason, and an
operator can :meth:`Pipeline.replay` it (gateway.pipeline_replay): from translate,
the raw bytes are read again, documents keep their idempotency keys (message id +
position) and delivered ones are never re-delivered, and acks already issued are not
issued twice; from deliver, the stored documents go to the ERP again; from
acknowledge, the acks built are sent again.

Translation is CPU-bound and never runs on the event loop: in worker processes
(gateway.translate_pool, ``translate_processes``) or, with 0 processes, in a thread.
This module never speaks HTTP: ERP forwarding plugs in through :class:`ErpSink`,
partner delivery reads the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import orders
from gateway import pipeline_rows as rows
from gateway.config import IdentitySettings, PipelineSettings
from gateway.db import jobs, lean_steps
from gateway.db.engine import Database, data_error, is_storage_error
from gateway.db.ids import new_id
from gateway.db.models import Message, utcnow
from gateway.domain.inbound import InboundMessage, InboundPlan
from gateway.domain.outcomes import mark_duplicates, with_note, with_outcomes
from gateway.domain.states import INBOUND, IllegalTransition
from gateway.handoff import Handoff
from gateway.pipeline_deliver import DeliverStep
from gateway.pipeline_replay import ReplayStep
from gateway.pipeline_write import TranslateWrite
from gateway.ports import BlobStore, ErpSink
from gateway.progress import ProgressBoard
from gateway.runner import Backoff, TransientError

if TYPE_CHECKING:
    from gateway.translate_pool import TranslatePool
    from translators.engine import PartnerLookup

log = logging.getLogger(__name__)

FINAL_STATES = INBOUND.final
ACK_KINDS = rows.ACK_KINDS


class StepFailed(Exception):
    """A step failed for good; the message becomes ``failed`` with this reason."""


# --------------------------------------------------------------------------- pipeline


# What the translate step decided (gateway.domain.inbound), written in one transaction.
_Plan = InboundPlan


class Pipeline(DeliverStep, TranslateWrite, ReplayStep):
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        partners: Callable[[], PartnerLookup],
        sink: ErpSink,
        settings: PipelineSettings | None = None,
        identity: IdentitySettings | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        translate_pool: TranslatePool | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs  # the raw payloads: database rows and files (gateway.blobs)
        self.partners = partners
        self.sink = sink
        self.settings = settings or PipelineSettings()
        self.identity = identity or IdentitySettings()
        self.clock = clock
        # None: plans are computed in a thread of this process (see gateway.translate_pool).
        self.translate_pool = translate_pool
        self.progress = ProgressBoard(db)  # sets translated / total while a plan is made
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self._wake = asyncio.Event()
        # Set when ready jobs may be waiting in the database (wake(), a full claim, a
        # poll due): workers woken only by a hand-off do not query the database.
        self._due = True
        self._next_poll = 0.0  # monotonic time of this process's next look for due retries
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stranded: set[int] = set()  # jobs whose retry could not be written
        # SQLite has one writer: claims from this process queue here instead of on the file lock.
        self._claim_lock = asyncio.Lock()
        self._translating = asyncio.Lock()  # handed-over batches: one translation at a time
        self.processed = 0
        # Jobs claimed (and their outcomes committed) together: on SQLite each commit
        # is an fsync, so one claim and one write per batch instead of per job.
        self.batch_size = self.settings.batch_size
        self.backoff = Backoff(
            self.settings.max_attempts,
            timedelta(days=3650),  # steps give up by attempts; a sink with its own delay by its own rule
            self.settings.retry_base_seconds,
            self.settings.retry_max_seconds,
        )
        # New messages from this process's intake, handed over in memory (gateway.handoff).
        self.handoff = Handoff(
            self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            limit=self.batch_size * max(1, self.settings.workers),
            on_handed=self._wake.set,
        )

    # ------------------------------------------------------------------ running

    def wake(self) -> None:
        """Ready jobs were written: let the workers look in the database."""
        self._due = True
        self._wake.set()

    async def start(self) -> None:
        if self.db.is_sqlite:
            async with self.db.write() as conn:
                released = await jobs.release_all_running(conn, now=self.clock())
            if released:
                log.info("resumed %d job(s) interrupted by the previous run", released)
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"pipeline-worker-{i}")
            for i in range(self.settings.workers)
        ]
        if self._tasks:
            self.handoff.open()

    async def stop(self) -> None:
        self._stopping = True
        self.handoff.close()  # what is left there is released below with the rest
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        had_workers = bool(self._tasks)
        self._tasks = []
        if had_workers:
            # Hand back what was in flight so another process (PostgreSQL) or the next
            # start takes it at once instead of after the lease; the work of a cancelled
            # step was rolled back, and the ERP dedupes a document handed over twice.
            try:
                async with self.db.write() as conn:
                    released = await jobs.release_mine(conn, worker=self.worker_id, now=self.clock())
                if released:
                    log.info("released %d job(s) in flight at stop", released)
            except Exception as exc:
                log.warning("could not release jobs at stop (their lease runs out): %s", exc)

    async def _worker(self) -> None:
        while not self._stopping:
            # Clear before looking: a wake() (intake commit) that lands while we claim
            # is then seen by the wait below instead of being lost until the poll.
            self._wake.clear()
            try:
                did = await self.run_one() if self.handoff or self._look_in_database() else False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pipeline worker error")
                did = False
            if not did:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    def _look_in_database(self) -> bool:
        """Whether this worker should claim from the database now: ready jobs were
        announced (wake), or this process's poll for due retries is due. One look per
        poll interval for the process, not one per worker."""
        now = time.monotonic()
        if not self._due and now < self._next_poll:
            return False
        self._due = False
        self._next_poll = now + self.settings.poll_seconds
        return True

    async def run_until_idle(self, limit: int = 10_000) -> int:
        """Run due jobs in the caller's task until none is due (tests, one-shot CLI)."""
        done = 0
        while done < limit and await self.run_one():
            done += 1
        return done

    async def run_one(self) -> bool:
        """Claim a batch of due jobs (at most one per message) and run it; False when
        none was due. A translate batch delivers what it translated straight after
        its commit (the deliver jobs are inserted already claimed); other steps run
        once per claimed job."""
        if self._stranded:
            await self._release_stranded()
        if self.handoff:  # steady state: the intake's jobs, already ours (gateway.handoff)
            return await self._run_handed()
        lease = timedelta(seconds=self.settings.lease_seconds)
        async with self._claim_lock:
            claimed = await lean_steps.claim(
                self.db, worker=self.worker_id, now=self.clock(), lease=lease, limit=self.batch_size
            )
        if not claimed:
            return False
        self.wake()  # more may be due: the next worker looks while this one works
        await self._run_batch(claimed)
        self.processed += len(claimed)
        # More may be due (a full batch, or work begot work): let the workers look again.
        self.wake()
        return True

    async def _run_handed(self) -> bool:
        """Translate what the intake handed over, then deliver it. One worker at a time
        translates (plans and writes): the others' messages wait in the hand-off and
        make the next batch bigger instead of a second transaction beside this one
        (SQLite has one writer; on PostgreSQL both would queue on the partner's
        control-number row). Deliveries, which wait on the ERP, run side by side."""
        async with self._translating:
            handed = self.handoff.take(self.batch_size)
            if not handed:
                return False
            deliver = await self._translate_batch(
                [h.job for h in handed], {h.job.message_id: h.message for h in handed}
            )
        if deliver is not None:
            await deliver
        self.processed += len(handed)
        return True

    async def _run_batch(
        self, claimed: list[jobs.ClaimedJob], messages: dict[str, Any] | None = None
    ) -> None:
        """Run the steps of a claimed batch: translations together, deliveries together
        (each group writes its outcomes in one transaction), anything else one by one.
        ``messages``: rows already at hand (handed over by the intake), not read again."""
        translate = [j for j in claimed if j.step == "translate"]
        deliver = [j for j in claimed if j.step == "deliver"]
        others = [j for j in claimed if j.step not in ("translate", "deliver")]
        work = [self._run_job(j) for j in others]
        if translate:
            work.append(self._translate_and_deliver(translate, messages or {}))
        if deliver:
            work.append(self._guarded(deliver, self._deliver_batch(deliver)))
        await asyncio.gather(*work)

    async def _guarded(self, batch: list[jobs.ClaimedJob], work: Any) -> None:
        """Await a batch step; an error that escapes it is each job's error."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for job in batch:
                await self._on_error(job, exc)

    async def _run_job(self, job: jobs.ClaimedJob) -> None:
        step = {"translate": self._translate, "deliver": self._deliver, "acknowledge": self._acknowledge}.get(
            job.step
        )
        try:
            if step is None:
                raise StepFailed(f"unknown pipeline step {job.step!r}")
            await step(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._on_error(job, exc)

    async def _on_error(self, job: jobs.ClaimedJob, exc: Exception) -> None:
        """What a step's error means for its job: lost lease, failure or retry."""
        if isinstance(exc, jobs.LostLease):
            log.warning("job %s of message %s lost its lease; left to its new owner", job.id, job.message_id)
        elif isinstance(exc, StepFailed):
            await self._fail(job, str(exc))
        elif (refused := data_error(exc)) is not None:
            # The same value is refused every time: retrying only delays the failure.
            # A partner's value or our bug, the message is failed (replayable once
            # fixed), never dropped: logged as an error, the reason without values.
            log.error(
                "step %s of message %s: the database refused a value: %s", job.step, job.message_id, refused
            )
            await self._fail(
                job, f"{job.step} failed: the database refused a value of this message ({refused})"
            )
        elif isinstance(exc, TransientError) or is_storage_error(exc):
            await self._retry(job, exc)
        else:
            log.error("step %s of message %s failed", job.step, job.message_id, exc_info=exc)
            await self._fail(job, f"{job.step} failed: {type(exc).__name__}: {exc}")

    async def _retry(self, job: jobs.ClaimedJob, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        try:
            async with self.db.begin() as session:
                await self._retry_in(session, job, text, getattr(exc, "retry_after", None), self.clock())
        except jobs.LostLease:
            pass
        except Exception:
            # The database may be the thing that is down: remember the job and give it
            # back as soon as a write works again, not only when its lease runs out.
            self._stranded.add(job.id)

    async def _release_stranded(self) -> None:
        ids = sorted(self._stranded)
        try:
            async with self.db.write() as conn:
                await jobs.release_mine(conn, worker=self.worker_id, now=self.clock(), ids=ids)
        except Exception:
            return
        self._stranded.difference_update(ids)
        log.info("released %d job(s) whose retry could not be recorded", len(ids))

    async def _retry_in(
        self, session: AsyncSession, job: jobs.ClaimedJob, text: str, retry_after: float | None, now: datetime
    ) -> None:
        """Record a transient failure in ``session``: a retry with backoff, or the
        message's failure once ``max_attempts`` is reached (unless the failing party
        gave its own delay). Raises LostLease before writing anything."""
        if retry_after is None and job.attempts >= self.settings.max_attempts:
            await self._fail_in(
                session, job, f"{job.step} gave up after {job.attempts} attempts: {text}", now
            )
            return
        # The sink's own delay when it gave one, else the one backoff with jitter.
        delay = retry_after if retry_after is not None else self.backoff.delay(job.attempts)
        await jobs.retry_later(session, job, now=now, at=now + timedelta(seconds=delay), error=text)
        rows.add_event(
            session,
            job.message_id,
            now,
            "retry",
            {"step": job.step, "attempt": job.attempts, "error": text, "delay_seconds": delay},
        )
        log.warning(
            "message %s step %s attempt %d: %s (retry in %.0fs)",
            job.message_id,
            job.step,
            job.attempts,
            text,
            delay,
            extra={"message_id": job.message_id, "job_id": job.id},
        )

    async def _fail(self, job: jobs.ClaimedJob, reason: str) -> None:
        """Fail the job and its message. Never raises (a batch's other jobs still get
        their turn): a message that may no longer move to failed is left as it is and
        only the job ends (:meth:`_abandon`)."""
        try:
            async with self.db.begin() as session:
                await self._fail_in(session, job, reason, self.clock())
        except IllegalTransition as exc:
            await self._abandon(job, f"{reason} ({exc})")
        except Exception as exc:
            self._unrecorded(job, exc)

    async def _abandon(self, job: jobs.ClaimedJob, reason: str) -> None:
        """End ``job`` as failed, leaving its message's status alone (someone else moved it)."""
        log.error("job %s of message %s: %s; the message is left as it is", job.id, job.message_id, reason)
        try:
            async with self.db.begin() as session:
                await jobs.finish(session, job, now=self.clock(), state="failed", error=reason)
        except Exception as exc:
            self._unrecorded(job, exc)

    def _unrecorded(self, job: jobs.ClaimedJob, exc: Exception) -> None:
        """A job's end could not be written: with the database down it is given back as
        soon as a write works again (as a retry that could not be recorded); anything
        else is logged and the job stays held (never run again in a loop)."""
        if isinstance(exc, jobs.LostLease):
            return
        if is_storage_error(exc):
            self._stranded.add(job.id)
        else:
            log.error(
                "could not record the end of job %s of message %s", job.id, job.message_id, exc_info=exc
            )

    async def _fail_in(self, session: AsyncSession, job: jobs.ClaimedJob, reason: str, now: datetime) -> None:
        await jobs.finish(session, job, now=now, state="failed", error=reason)
        await rows.set_status(session, job.message_id, "failed", now, reason, {"step": job.step})
        await rows.release_acks(session, job.message_id)

    # ------------------------------------------------------------------ step: translate

    async def _translate(self, job: jobs.ClaimedJob) -> None:
        async with self.db.read() as conn:
            message = (await conn.execute(select(Message).where(Message.id == job.message_id))).one()
        plan = await self._plan((await self._with_payloads([message]))[0])
        now = self.clock()
        async with self.db.begin() as session:
            await jobs.finish(session, job, now=now)
            await self._write_plan(session, message, plan, now)

    async def _plan(self, message: Any) -> _Plan:
        """Translate one message (CPU work, never on the event loop) into a plan:
        the domain's planning, in a worker process or in a thread."""
        return await self.progress.plan(message, self.partners(), self.translate_pool, self.blobs.open_file)

    async def _with_payloads(self, messages: list[Any]) -> list[InboundMessage]:
        """What planning takes of ``messages``, with the bytes of those whose payload is
        a database row: the hand-off's carry theirs, the others' are read in one SELECT
        (gateway.blobs); a payload that is a file is opened where it is planned."""
        wanted = [m.raw_sha256 for m in messages if getattr(m, "raw_data", None) is None]
        rows = await self.blobs.read_rows(wanted) if wanted else {}
        return [InboundMessage.of(m, rows.get(m.raw_sha256)) for m in messages]

    async def _translate_and_deliver(self, batch: list[jobs.ClaimedJob], known: dict[str, Any]) -> None:
        deliver = await self._translate_batch(batch, known)
        if deliver is not None:
            await deliver

    async def _translate_batch(
        self, batch: list[jobs.ClaimedJob], known: dict[str, Any]
    ) -> Coroutine[Any, Any, None] | None:
        """Translate several messages and write every plan in one transaction. If
        that transaction fails (a constraint race, a bad plan), each plan is written
        on its own so one message cannot hold the others back. ``known``: message
        rows at hand; the others are read. Returns the delivery of what it handed to
        this worker, for the caller to await."""
        missing = [j.message_id for j in batch if j.message_id not in known]
        try:
            found = await self.db.lean_read(functools.partial(_read_messages, missing)) if missing else []
            messages = {**{m.id: m for m in found}, **known}
            found_messages = await self._with_payloads(
                [messages[j.message_id] for j in batch if j.message_id in messages]
            )
        except Exception as exc:
            for job in batch:
                await self._on_error(job, exc)
            return None
        if self.translate_pool is not None:  # one pool call per process for the batch
            planned = await self.progress.plan_many(found_messages, self.partners(), self.translate_pool)
        else:
            planned = await asyncio.gather(*(self._plan(m) for m in found_messages), return_exceptions=True)
        ready: list[tuple[jobs.ClaimedJob, Any, _Plan]] = []
        outcomes = iter(planned)
        for job in batch:
            if job.message_id not in messages:
                await self._on_error(job, StepFailed(f"message {job.message_id} is gone"))
                continue
            outcome = next(outcomes)
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                await self._on_error(job, outcome)
            else:
                ready.append((job, messages[job.message_id], outcome))
        if not ready:
            return None
        now = self.clock()
        try:
            written = await self._write_translated(ready, now)
        except Exception as exc:
            # one message's rows can fail the batch (e.g. a unique key another process
            # wrote first): the others must not wait for it. A warning, with the error's
            # type only (a driver's message may quote partner data), because a batch
            # path that always fails would otherwise hide behind the slower one.
            log.warning(
                "writing %d translations together failed (%s); writing them one by one",
                len(ready),
                type(exc).__name__,
            )
            for job, message, plan in ready:
                try:
                    async with self.db.begin() as session:
                        await jobs.finish(session, job, now=now)
                        await self._write_plan(session, message, plan, now)
                except IllegalTransition as exc:
                    # Moved since it was read, its job still ours (what tripped the
                    # batch's guard): its mover's now. The job ends, the message stays.
                    await self._abandon(job, f"translate abandoned: {exc}")
                except Exception as exc:
                    await self._on_error(job, exc)
            self.wake()  # their deliver jobs are ready ones
            return None
        if not written.deliver:
            return None
        return self._guarded(written.deliver, self._deliver_batch(written.deliver, written.documents))

    async def _write_plan(
        self,
        session: AsyncSession,
        message: Any,
        plan: _Plan,
        now: datetime,
        deliver_jobs: list[str] | None = None,
    ) -> None:
        """Write what the translate step decided. With ``deliver_jobs`` the message ids
        needing a deliver job are appended there (the caller inserts them together)."""
        values: dict[str, Any] = {}
        orders.use_policies(session, self.partners)  # thresholds of the orders its documents touch
        if plan.first_sender is not None:
            values = {"interchange_sender": plan.first_sender, "interchange_control": plan.first_control}
        for state, detail in plan.events:
            rows.add_event(session, message.id, now, state, detail)
        if plan.acks:
            from gateway.reconcile import reconcile_report

            await rows.flush_events(session)  # reconcile may add to this timeline: keep the order
            for partner_id, report in plan.acks:
                await reconcile_report(session, partner_id, report, now=now, source_message_id=message.id)
        if plan.status in ("failed", "quarantined") and not plan.documents:
            unanswered = None
            if plan.status == "failed":
                unanswered = await self._issue_acks(
                    session, message, plan.interchanges, [], now, release=True
                )
            reason = with_note(with_outcomes(plan.results, plan.reason, None)[0], unanswered)
            await rows.set_status(
                session, message.id, plan.status, now, reason, plan.detail, old=message.status, **values
            )
            return

        duplicates = await self._register_interchanges(session, message, plan, now)
        dup_interchanges = [d for d, _ in duplicates]
        fresh = [i for i in plan.interchanges if not any(i is d for d in dup_interchanges)]
        if plan.interchanges and not fresh:
            unanswered = await self._issue_acks(session, message, [], dup_interchanges, now, release=True)
            reason = "duplicate of message " + ", ".join(sorted({first for _, first in duplicates}))
            await rows.set_status(
                session,
                message.id,
                "duplicate",
                now,
                with_note(reason, unanswered),
                None,
                old=message.status,
                **values,
            )
            return
        dup_indexes = {i.outcome.header.index for i in dup_interchanges}
        # Copies: a plan may be written twice (batch transaction failed, then alone).
        # Fresh ids here, in write order: plans are made side by side (threads, a process
        # pool), and the feed lists documents by id, i.e. in the order messages came.
        documents = [
            {**{k: v for k, v in d.items() if k != "_isa_index"}, "id": new_id(), "created_at": now}
            for d in plan.documents
            if d.get("_isa_index") not in dup_indexes
        ]
        await rows.store_documents(session, documents)
        unanswered = await self._issue_acks(
            session, message, fresh, dup_interchanges, now, release=plan.status == "failed"
        )
        results = mark_duplicates(plan.results, {d.outcome.header.index: first for d, first in duplicates})
        reason, outcomes = with_outcomes(results, plan.reason, plan.detail)  # kept through acknowledged
        await rows.set_status(
            session,
            message.id,
            plan.status,
            now,
            with_note(reason, unanswered),
            outcomes,
            old=message.status,
            **values,
        )
        if plan.status != "failed":
            if deliver_jobs is not None:
                deliver_jobs.append(message.id)
            else:
                await jobs.enqueue(session, message.id, "deliver", now=now)

    # ------------------------------------------------------------------ step: acknowledge

    async def _acknowledge(self, job: jobs.ClaimedJob) -> None:
        now = self.clock()
        async with self.db.begin() as session:
            await jobs.finish(session, job, now=now)
            released = await rows.release_acks(session, job.message_id)
            await rows.set_status(
                session,
                job.message_id,
                "acknowledged",
                now,
                None,
                {"acks_released": released},
                keep_reason=True,
            )


async def _read_messages(ids: list[str], conn: Any) -> list[Any]:
    return list((await conn.execute(select(Message).where(Message.id.in_(ids)))).all())
