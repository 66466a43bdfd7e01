"""The pipeline's translate write: a translated batch's outcomes in one transaction
(documents, the interchanges seen for duplicate detection, the acknowledgments it
issues). A mixin of :class:`gateway.pipeline.Pipeline` (which provides the database, the
settings, :meth:`_write_plan` and the error handling), kept apart so the pipeline's
module stays small.

On SQLite the transaction runs in the writer thread (gateway.db.writer) on a sync
session: the same code, with no greenlet and no aiosqlite hop per statement, so it
must await nothing but its session. PostgreSQL runs it on the async engine."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import pipeline_rows as rows
from gateway.config import IdentitySettings, PipelineSettings
from gateway.db import jobs
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import OutboxItem
from gateway.domain.acks import DEFAULT_MAX_TA1, assemble_acks, batch_acks
from gateway.domain.inbound import InboundPlan

if TYPE_CHECKING:
    from translators.engine import PartnerLookup, TranslatedInterchange

ACK_KINDS = rows.ACK_KINDS


@dataclass(frozen=True, slots=True)
class NewDocuments:
    """The documents a translate write inserted for a message that had none."""

    received_at: datetime | None  # the message's
    rows: list[dict[str, Any]]  # as inserted, in seq order


@dataclass(frozen=True, slots=True)
class Translated:
    """What a translate write handed to its worker: the deliver jobs it inserted
    claimed, and per message of those the documents it inserted, when they are
    all the message has (see :class:`NewDocuments`)."""

    deliver: list[jobs.ClaimedJob]
    documents: dict[str, NewDocuments] = field(default_factory=dict)


class TranslateWrite:
    db: Database
    settings: PipelineSettings
    identity: IdentitySettings
    partners: Callable[[], PartnerLookup]
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
    ) -> Translated:
        """Write the batch in one transaction; returns the deliver jobs it handed to this worker."""
        if self.db.writer is not None:  # SQLite: the whole transaction in one hop
            return await self.db.lean_session(
                functools.partial(self._write_translations, ready=ready, now=now)
            )
        async with self.db.begin() as session:
            return await self._write_translations(session, ready, now)

    async def _write_translations(
        self, session: AsyncSession, ready: list[tuple[jobs.ClaimedJob, Any, InboundPlan]], now: datetime
    ) -> Translated:
        """Write a translated batch in ``session``: its jobs finished, every plan, and
        the deliver jobs, inserted already claimed by this worker (returned, with the
        documents of messages that had none stored before, as inserted here). Awaits
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
        # Messages with no document stored before (all but replays): their documents are
        # exactly the ones inserted now, so the deliver step need not read them back.
        fresh: dict[str, NewDocuments] = {
            message.id: NewDocuments(message.received_at, [])
            for _, message, _ in ready
            if message.id not in writes.have_documents
        }
        for document in writes.documents:
            if document["message_id"] in fresh:
                fresh[document["message_id"]].rows.append(document)
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
        return Translated(
            handed, {j.message_id: fresh[j.message_id] for j in handed if j.message_id in fresh}
        )

    async def _register_interchanges(
        self, session: AsyncSession, message: Any, plan: InboundPlan, now: datetime
    ) -> list[tuple[TranslatedInterchange, str]]:
        """Record each interchange; return those already seen inside the window,
        each with the id of the message that brought it first."""
        duplicates: list[tuple[TranslatedInterchange, str]] = []
        for interchange in plan.interchanges:
            profile = interchange.profile
            if profile is None:
                continue
            header = interchange.outcome.header
            sender = f"{header.sender_qualifier.strip()}/{header.sender_id.strip()}"
            control = header.control_number.strip()
            key = {"partner_id": profile.id, "sender": sender, "control_number": control}
            batch: rows.BatchWrites | None = session.info.get(rows.BATCH)
            if batch is not None:
                seen = batch.seen.get((profile.id, sender, control))
            else:
                seen = await rows.seen_or_insert(session, key, message.id, now)
            days = profile.x12.duplicate_window_days
            window = timedelta(days=self.settings.duplicate_window_days if days is None else days)
            if seen is None and batch is not None:
                batch.seen[(profile.id, sender, control)] = rows.NewSeen(
                    **key, first_message_id=message.id, seen_at=now
                )
            elif seen is None or seen.first_message_id == message.id:
                continue
            elif profile.x12.reject_duplicates and now - seen.seen_at <= window:
                duplicates.append((interchange, seen.first_message_id))
                rows.add_event(
                    session,
                    message.id,
                    now,
                    "duplicate_interchange",
                    {"sender": sender, "control_number": control, "first_message_id": seen.first_message_id},
                )
            else:
                # Outside the window (or duplicates allowed): this message is now the reference.
                seen.first_message_id, seen.seen_at = message.id, now
        return duplicates

    async def _issue_acks(
        self,
        session: AsyncSession,
        message: Any,
        interchanges: list[TranslatedInterchange],
        duplicates: list[TranslatedInterchange],
        now: datetime,
        *,
        release: bool,
    ) -> str | None:
        """Render the TA1/997/999 due for the message's interchanges into the outbox,
        once per message: a replay finds them already issued and adds none. One
        acknowledgment interchange per partner address (gateway.domain.acks), not one
        per inbound interchange; TA1s past ``max_ta1_per_ack`` are left out and the
        returned note (for the message's reason) says how many. Each is *held*
        (released when the documents are with the ERP) unless ``release`` (failed,
        duplicate) or its partner's profile says ``ack_after = "translation"``: then
        it is ``pending`` in this very transaction, the translate step's commit."""
        batch: rows.BatchWrites | None = session.info.get(rows.BATCH)
        if batch is not None:
            already = message.id in batch.acks_issued
        else:
            already = (
                await session.execute(
                    select(OutboxItem.id)
                    .where(OutboxItem.message_id == message.id, OutboxItem.kind.in_(ACK_KINDS))
                    .limit(1)
                )
            ).first() is not None
        if already:
            # A replay: nothing new. Acks still held from a run under ack_after = "erp"
            # go now if the partner has since moved to "translation".
            early = {
                i.profile.id for i in interchanges if i.profile and i.profile.x12.ack_after == "translation"
            }
            if early and not release:
                await session.execute(
                    update(OutboxItem)
                    .where(
                        OutboxItem.message_id == message.id,
                        OutboxItem.partner_id.in_(early),
                        OutboxItem.status == "held",
                    )
                    .values(status="pending")
                    .execution_options(synchronize_session=False)
                )
            return None
        max_ta1 = getattr(self.settings, "max_ta1_per_ack", DEFAULT_MAX_TA1)
        unanswered = 0
        for answer in batch_acks(interchanges, duplicates):
            profile = answer.profile
            [isa13] = await rows.allocate_pooled(session, profile.id, "interchange")
            group_numbers = await rows.allocate_pooled(session, profile.id, "group", answer.group_numbers)
            assembled = assemble_acks(
                answer.due,
                ta1=profile.x12.ta1,
                sender=answer.sender or (self.identity.interchange_qualifier, self.identity.interchange_id),
                receiver=answer.receiver,
                group_sender=answer.sender[1] if answer.sender else self.identity.group_id,
                group_receiver=profile.x12.group_id,
                interchange_control=isa13,
                group_control=group_numbers[0],
                now=now,
                max_ta1=max_ta1,
            )
            unanswered += assembled.unanswered
            ack = assembled.ack
            if ack is None:
                continue
            held = not release and profile.x12.ack_after == "erp"
            kinds = sorted({a.kind for a in ack.acks})
            item = {
                "id": new_id(),
                "partner_id": profile.id,
                "message_id": message.id,
                # 999 > 997 > TA1: the most specific kind (not the last by spelling: "TA1" > "999")
                "kind": max(kinds, key=ACK_KINDS.index) if kinds else "TA1",
                "channel": self._channel_of(profile.id),
                "payload": ack.text,
                "interchange_control": isa13,
                "status": "held" if held else "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            if batch is not None:
                batch.outbox.append(item)
            else:
                session.add(OutboxItem(**item))
            detail: dict[str, Any] = {
                "partner_id": profile.id,
                "interchange_control": ack.interchange_control,
                "acks": [
                    {"kind": a.kind, "acknowledges": a.acknowledges, "code": a.code}
                    for a in ack.acks[:_ACKS_IN_EVENT]
                ],
                "held": held,
            }
            if len(ack.acks) > _ACKS_IN_EVENT:
                detail["acks_total"] = len(ack.acks)
            rows.add_event(session, message.id, now, "ack_issued", detail)
        if not unanswered:
            return None
        note = (
            f"{unanswered} further interchange(s) were not acknowledged individually "
            f"(at most {max_ta1} TA1 per acknowledgment)"
        )
        rows.add_event(
            session, message.id, now, "acks_capped", {"unanswered": unanswered, "max_ta1": max_ta1}
        )
        return note

    def _channel_of(self, partner_id: str) -> str:
        """The partner's delivery channel now (recorded on the outbox row; the sender
        reads the profile again when it sends)."""
        directory = self.partners()
        transport = directory.transport(partner_id) if hasattr(directory, "transport") else None
        return transport.delivery.channel if transport is not None else "mailbox"


_ACKS_IN_EVENT = 100  # acks listed on an ack_issued event; more are only counted (acks_total)
