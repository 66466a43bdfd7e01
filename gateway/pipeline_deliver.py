"""The pipeline's deliver step: the documents of translated messages handed to the
:class:`~gateway.ports.ErpSink` and every outcome recorded (see gateway.pipeline for
the state machine). A mixin of :class:`gateway.pipeline.Pipeline`, which provides the
database, sink, clock and the retry and error handling it calls."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import pipeline_rows as rows
from gateway.db import jobs, lean_steps, pg_steps
from gateway.db.engine import Database
from gateway.db.models import Document, Message, MessageEvent, OutboxItem
from gateway.db.one_of import one_of
from gateway.domain.delivery import DEAD_LETTERED, delivery_ending
from gateway.domain.states import INBOUND, IllegalTransition, InboundStatus
from gateway.erp import correlation_of
from gateway.pipeline_write import NewDocuments
from gateway.ports import DeliveryResult, DocumentRecord, ErpSink

log = logging.getLogger("gateway.pipeline")


class DeliverStep:
    db: Database
    sink: ErpSink
    clock: Any

    async def _on_error(self, job: jobs.ClaimedJob, exc: Exception) -> None:
        raise NotImplementedError

    async def _retry_in(
        self, session: AsyncSession, job: jobs.ClaimedJob, text: str, retry_after: float | None, now: datetime
    ) -> None:
        raise NotImplementedError

    async def _deliver(self, job: jobs.ClaimedJob) -> None:
        await self._deliver_batch([job])

    async def _deliver_batch(
        self, batch: list[jobs.ClaimedJob], new: dict[str, NewDocuments] | None = None
    ) -> None:
        """Hand the waiting documents of several messages to the sink (messages side by
        side, each message's documents in order) and record every outcome in one
        transaction: document statuses, delivery attempts, and per message either the
        retry, the failure, or ``delivered`` and ``acknowledged`` together (the acks
        are released in the same commit, so no separate acknowledge job). Documents
        dead-lettered since the message's last ``received`` or ``translated`` (a
        replay from translate or from deliver) are skipped.
        ``new``: per message, documents the translate step has just stored and that are
        all it has (no dead letters, no history): not read back."""
        message_ids = [j.message_id for j in batch]
        first = new is not None and all(m in new for m in message_ids)
        if new is not None and first:
            stored: list[Any] = [
                _as_stored(row) for m in message_ids for row in sorted(new[m].rows, key=lambda r: r["seq"])
            ]
            marks: list[Any] = []
        else:
            # SQLite: both reads in one hop to the writer thread (gateway.db.writer)
            stored, marks = await self.db.lean_read(partial(_read_batch, message_ids))
        dead: dict[str, set[str]] = {j.message_id: set() for j in batch}
        for message_id, state, detail in marks:
            if state in ("received", "translated"):  # a replay (from translate or deliver)
                dead[message_id].clear()
            elif detail and detail.get("document_id"):
                dead[message_id].add(detail["document_id"])
        known: dict[str, list[Any]] = {j.message_id: [] for j in batch}
        per_message: dict[str, list[DocumentRecord]] = {j.message_id: [] for j in batch}
        for doc in stored:
            known[doc.message_id].append(doc)
            if doc.status == "delivered" or doc.id in dead[doc.message_id]:
                continue
            per_message[doc.message_id].append(
                DocumentRecord(
                    id=doc.id,
                    message_id=doc.message_id,
                    seq=doc.seq,
                    partner_id=doc.partner_id,
                    kind=doc.kind,
                    business_number=doc.business_number,
                    idempotency_key=doc.idempotency_key,
                    canonical=doc.canonical,
                    set_control=doc.set_control,
                    group_control=doc.group_control,
                    interchange_control=doc.interchange_control,
                    first_attempt=first,
                    received_at=new[doc.message_id].received_at if new is not None and first else None,
                )
            )
        records = [per_message[j.message_id] for j in batch]
        results: list[list[DeliveryResult]] = await self.sink.deliver_batch(records)

        from gateway.db.models_delivery import DeliveryAttempt

        now = self.clock()
        lean = self.db.writer is not None or self.db.dialect == "postgresql"
        if lean and await self._record_lean(batch, records, results, dead, now):
            return
        async with self.db.begin() as session:
            attempts = [r.attempt for done in results for r in done if r.attempt is not None]
            if attempts:
                await session.execute(insert(DeliveryAttempt), attempts)
            complete: list[tuple[jobs.ClaimedJob, list[DocumentRecord]]] = []
            for job, docs, done in zip(batch, records, results, strict=True):
                if (
                    not dead[job.message_id]
                    and all(r.ok and not r.parked for r in done)
                    and len(done) == len(docs)
                ):
                    complete.append((job, docs))  # the common case: written together below
                    continue
                try:
                    await self._record_delivery(
                        session, job, docs, done, now, known[job.message_id], dead[job.message_id]
                    )
                except jobs.LostLease as exc:
                    await self._on_error(job, exc)  # its new owner hands the documents over again
            await self._record_complete(session, complete, now)

    async def _record_lean(
        self,
        batch: list[jobs.ClaimedJob],
        records: list[list[DocumentRecord]],
        results: list[list[DeliveryResult]],
        dead: dict[str, set[str]],
        now: datetime,
    ) -> bool:
        """The common cases (every document of every message taken by the ERP, or
        parked for its feed) recorded in one transaction of a few statements: one hop
        to the writer thread on SQLite (gateway.db.lean_steps), the raw asyncpg
        connection on PostgreSQL (gateway.db.pg_steps); False, with nothing written,
        when the batch needs the full bookkeeping below."""
        complete: list[tuple[jobs.ClaimedJob, list[str]]] = []
        parked: list[tuple[jobs.ClaimedJob, list[str]]] = []
        for job, docs, done in zip(batch, records, results, strict=True):
            if dead[job.message_id] or len(done) != len(docs) or not all(r.ok for r in done):
                return False
            if all(r.parked for r in done) and done:
                parked.append((job, [d.id for d in docs]))
            elif not any(r.parked for r in done):
                complete.append((job, [d.id for d in docs]))
            else:
                return False
        attempts = [r.attempt for done in results for r in done if r.attempt is not None]
        if self.db.writer is None:
            written = await pg_steps.record_delivered(
                self.db, attempts=attempts, complete=complete, now=now, parked=parked
            )
        else:
            written = await self.db.lean_write(
                partial(
                    lean_steps.record_delivered, attempts=attempts, complete=complete, now=now, parked=parked
                )
            )
        for job in batch:
            if job.id not in written.ours:
                await self._on_error(job, jobs.LostLease(f"job {job.id} is no longer ours"))
        return True

    async def _record_complete(
        self,
        session: AsyncSession,
        complete: list[tuple[jobs.ClaimedJob, list[DocumentRecord]]],
        now: datetime,
    ) -> None:
        """Messages whose every document the ERP took: finish their jobs, mark the
        documents delivered, release the held acks, and record ``delivered`` then
        ``acknowledged`` for each, a handful of statements for the whole batch."""
        if not complete:
            return
        ours = await jobs.finish_many(session, [job for job, _ in complete], now=now)
        for job, _ in complete:
            if job.id not in ours:
                await self._on_error(job, jobs.LostLease(f"job {job.id} is no longer ours"))
        complete = [(job, docs) for job, docs in complete if job.id in ours]
        if not complete:
            return
        message_ids = [job.message_id for job, _ in complete]
        doc_ids = [d.id for _, docs in complete for d in docs]
        if doc_ids:
            await session.execute(
                update(Document)
                .where(one_of(session, Document.id, doc_ids))
                .values(status="delivered", delivered_at=now, attempts=Document.attempts + 1, last_error=None)
            )
        released_rows = await session.execute(
            update(OutboxItem)
            .where(one_of(session, OutboxItem.message_id, message_ids), OutboxItem.status == "held")
            .values(status="pending")
            .returning(OutboxItem.message_id)
        )
        released: dict[str, int] = {}
        for message_id in released_rows.scalars():
            if message_id is not None:
                released[message_id] = released.get(message_id, 0) + 1
        moved = await session.execute(
            update(Message)
            .where(
                one_of(session, Message.id, message_ids),
                Message.status.in_(INBOUND.sources(InboundStatus.ACKNOWLEDGED)),
            )
            .values(status=InboundStatus.ACKNOWLEDGED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != len(message_ids):  # type: ignore[attr-defined]
            raise IllegalTransition(INBOUND.name, None, InboundStatus.ACKNOWLEDGED, ", ".join(message_ids))
        events: list[dict[str, Any]] = []
        for job, docs in complete:
            events.append(
                {
                    "message_id": job.message_id,
                    "at": now,
                    "state": "delivered",
                    "detail": {"documents": len(docs)},
                }
            )
            events.append(
                {
                    "message_id": job.message_id,
                    "at": now,
                    "state": "acknowledged",
                    "detail": {"acks_released": released.get(job.message_id, 0)},
                }
            )
        await session.execute(insert(MessageEvent), events)

    async def _record_delivery(
        self,
        session: AsyncSession,
        job: jobs.ClaimedJob,
        documents: list[DocumentRecord],
        results: list[DeliveryResult],
        now: datetime,
        known: list[Any],
        dead_before: set[str],
    ) -> None:
        """Write one message's delivery outcome into ``session``. ``results`` answer
        ``documents`` in order; ``known`` is every stored document of the message,
        ``dead_before`` those dead-lettered by earlier tries since the last replay.

        A document refused for good (not ok, not transient) is dead-lettered on its
        own: it stays ``pending`` with the ERP's answer in ``last_error`` (replayable)
        and a ``dead_lettered`` event, and the next documents were still handed
        over. The results end early at a transient failure (the job retries from
        that document: order kept) or at a document the sink gave up on (the message
        stops there; the later ones are not sent). Once nothing is left to try the
        message ends ``partly_delivered`` (some documents delivered) or ``failed``,
        and its held acks are released (they answer the X12 syntax). The job's own
        row is written first, so a lost lease (LostLease) leaves nothing else written."""
        pairs = list(zip(documents, results, strict=False))
        last = results[-1] if results else None
        retry: str | None = None
        if last is not None and not last.ok and last.transient:
            doc = documents[len(results) - 1]
            retry = f"document {doc.seq} ({doc.kind} {doc.business_number or ''}): {last.detail}"
        elif len(results) < len(documents) and (last is None or last.ok):
            doc = documents[len(results)]
            retry = f"document {doc.seq} ({doc.kind} {doc.business_number or ''}): no outcome from the sink"
        handed = [(d, r) for d, r in pairs if r.ok]
        parked_count = sum(1 for _, r in handed if r.parked)
        ending: tuple[str, str | None, dict[str, Any]] | None = None
        if retry is not None:
            after = last.retry_after if last is not None and not last.ok else None
            await self._retry_in(session, job, f"TransientError: {retry}", after, now)
        else:
            ending = None if parked_count else delivery_ending(known, pairs, dead_before)
            failed = ending is not None and ending[0] == "failed"
            await jobs.finish(
                session,
                job,
                now=now,
                state="failed" if failed else "done",
                error=ending[1] if ending else None,
            )
        for doc, result in pairs:
            if result.ok:
                continue
            await session.execute(
                update(Document)
                .where(Document.id == doc.id)
                .values(attempts=Document.attempts + 1, last_error=result.detail)
            )
            if not result.transient:
                detail = {"document_id": doc.id, "seq": doc.seq, "business_number": doc.business_number}
                rows.add_event(
                    session, job.message_id, now, DEAD_LETTERED, {**detail, "error": result.detail}
                )
                answer = result.detail if len(result.detail) <= 300 else result.detail[:300] + "..."
                log.warning(
                    "ERP refused document %s (%s %s) of message %s from partner %s, dead-lettered: %s",
                    doc.id,
                    doc.kind,
                    doc.business_number or "-",
                    job.message_id,
                    doc.partner_id,
                    answer,
                    extra={
                        "message_id": job.message_id,
                        "document_id": doc.id,
                        "partner_id": doc.partner_id,
                        "correlation_id": correlation_of(doc),
                    },
                )
        for parked in (False, True):
            ids = [d.id for d, r in handed if r.parked == parked]
            if ids:
                await session.execute(
                    update(Document)
                    .where(Document.id.in_(ids))
                    .values(
                        status="available" if parked else "delivered",
                        delivered_at=None if parked else now,
                        attempts=Document.attempts + 1,
                        last_error=None,
                    )
                )
        if retry is not None:
            return
        if parked_count or ending is None:
            # The ERP confirms through the feed; gateway.erp moves the message on then.
            rows.add_event(session, job.message_id, now, "available_in_feed", {"documents": parked_count})
            return
        status, reason, detail = ending
        if status != "delivered":
            released = await rows.release_acks(session, job.message_id)
            await rows.set_status(
                session, job.message_id, status, now, reason, {**detail, "acks_released": released}
            )
            return
        await rows.set_status(
            session, job.message_id, "delivered", now, None, {"documents": len(documents)}, keep_reason=True
        )
        released = await rows.release_acks(session, job.message_id)
        await rows.set_status(
            session, job.message_id, "acknowledged", now, None, {"acks_released": released}, keep_reason=True
        )


def _as_stored(row: dict[str, Any]) -> SimpleNamespace:
    """A document row just inserted, with the attributes of one read back."""
    return SimpleNamespace(**{"last_error": None, "delivered_at": None, **row})


async def _read_batch(message_ids: list[str], conn: Any) -> tuple[list[Any], list[Any]]:
    """A deliver batch's stored documents, and the events that mark dead letters."""
    stored = (
        await conn.execute(
            select(Document)
            .where(Document.message_id.in_(message_ids))
            .order_by(Document.message_id, Document.seq)
        )
    ).all()
    marks = (
        await conn.execute(
            select(MessageEvent.message_id, MessageEvent.state, MessageEvent.detail)
            .where(
                MessageEvent.message_id.in_(message_ids),
                MessageEvent.state.in_(("received", "translated", DEAD_LETTERED)),
            )
            .order_by(MessageEvent.id)
        )
    ).all()
    return stored, marks
