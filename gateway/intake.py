"""Durable acceptance: the single entry point every inbound transport calls.

``Intake.accept`` stores the body as a raw file (:mod:`gateway.rawstore`), then
commits, in one transaction, the message row, its ``received`` event and the first
pipeline job, and only then returns the message id. A transport may say "yes" to
its partner (HTTP 202, AS2 MDN, SFTP rename) only after ``accept`` returned; if it
raises, nothing was acknowledged and the partner must retry.

Group commit: one commit per request caps out near a few hundred accepts per
second, so concurrent accepts are committed together. A single committer task
takes every accept waiting at that moment (up to ``max_batch``), inserts all rows in
one transaction and resolves each caller's future. A small payload is a row of that
transaction too, kept for good with no file (gateway.raw_journal, decision 0025), so
a batch waits on one durable sync, the commit; large ones, and the payloads a caller
stores beside its message (``also_store``), are published (synced) before it. A
storage error fails exactly the accepts of that batch; a uniqueness clash (two
requests racing with one idempotency key) makes the batch retry one accept at a time
so only the loser sees the existing message.

In steady state the first job of a message is handed to this process's pipeline in
memory (gateway.handoff), with a small payload's bytes: written already claimed in
the same transaction, so no worker has to find it (or its payload) in the database.

This module never parses payloads and never decides what a message means; that is
the pipeline's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from gateway.db import lean, lean_pg
from gateway.db.engine import Database, StorageUnavailable, is_storage_error
from gateway.db.ids import new_id
from gateway.db.jobs import ClaimedJob
from gateway.db.models import (
    IDENTIFIER_CHARS,
    Base,
    Job,
    JournaledPayload,
    Message,
    MessageEvent,
    storable_identifier,
    utcnow,
)
from gateway.db.notify import NOTIFY_SQL
from gateway.handoff import Handed, Handoff
from gateway.logsafe import printable
from gateway.raw_journal import RawJournal, insert_journaled
from gateway.rawstore import RawRef, RawStore

log = logging.getLogger(__name__)

CHANNELS = frozenset({"rest", "as2", "sftp", "api"})
KINDS = frozenset({"x12", "canonical"})
FIRST_STEP = "translate"
_UNSTORABLE = f"over {IDENTIFIER_CHARS} characters, with a NUL or not UTF-8"


class UnstorableIdentifier(ValueError):
    """A transport id or idempotency key the messages table cannot hold on every
    database (gateway.db.models.storable_identifier): refused before it joins a
    batch, where PostgreSQL would fail every accept committed with it. Transports
    check their identifiers first; this is the guard behind them."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different body."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"idempotency key already used for message {message_id} with a different body")
        self.message_id = message_id


@dataclass(frozen=True, slots=True)
class AcceptResult:
    message_id: str
    created: bool  # False: the idempotency key matched an earlier message, nothing new stored
    raw: RawRef | None = None


# A row of another table committed with an accepted message: (model, column values).
ExtraRow = tuple[type[Base], dict[str, Any]]


@dataclass(slots=True)
class _Pending:
    message: dict[str, Any]
    raw: RawRef
    future: asyncio.Future[AcceptResult] = field(repr=False)
    also_store: tuple[RawRef, ...] = ()
    also: tuple[ExtraRow, ...] = ()


class Intake:
    def __init__(
        self,
        db: Database,
        rawstore: RawStore,
        *,
        max_batch: int = 512,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
        handoff: Handoff | None = None,
        journal: RawJournal | None = None,
    ) -> None:
        self.db = db
        self.rawstore = rawstore
        # Small payloads kept as rows of the batch's commit (module doc); None: all files.
        self.journal = journal
        self.max_batch = max_batch
        self.clock = clock
        self.on_enqueued = on_enqueued  # ready jobs were written (not handed over)
        self.handoff = handoff
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # commits done, for metrics and tests
        self.accepted = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-committer")

    async def stop(self) -> None:
        """Commit what is already queued, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def accept(
        self,
        *,
        partner_id: str | None,
        channel: str,
        transport_id: str | None,
        idempotency_key: str | Callable[[str], str] | None,
        body: AsyncIterable[bytes],
        limit: int,
        kind: str = "x12",
        look_up_key: bool = True,
        also_store: Sequence[RawRef] = (),
        also: Callable[[str], Sequence[ExtraRow]] | None = None,
    ) -> AcceptResult:
        """Store ``body`` durably and queue it for the pipeline; see the module doc.

        ``idempotency_key`` may be a function of the body's SHA-256 (hex), called once
        the body is staged: a streamed body's key can cover its content without a
        second pass over it (the SFTP poller).

        ``look_up_key=False`` skips the read that finds an earlier message with the
        same idempotency key before storing: the unique key still catches it at
        commit (that batch then settles one accept at a time). For callers whose
        repeats are rare and whose key covers the content (SFTP), it saves one
        database round trip per accept.

        ``also_store``: more payloads the caller staged (``RawStore.stage``; AS2 keeps
        the received bytes as evidence), made durable with this one's batch and
        discarded if it fails before that. ``also(message_id)``: more rows, as
        ``(model, values)`` pairs for the new message's id, inserted in the
        transaction that commits the message (AS2's MDN record and its outbox row),
        after the message's own rows, so both exist or neither; on SQLite they are
        part of the writer thread's batch like the message's. Neither is used when
        an earlier message is returned.

        Raises PayloadTooLarge, IdempotencyConflict, StorageUnavailable or
        UnstorableIdentifier.
        """
        if not storable_identifier(transport_id):
            await self.rawstore.discard(also_store)
            raise UnstorableIdentifier(f"transport id {_UNSTORABLE}")
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if self._task is None or self._task.done():
            raise StorageUnavailable("intake is not running")
        try:
            raw = await self.rawstore.stage(body, limit=limit)
        except BaseException:
            await self.rawstore.discard(also_store)
            raise
        if callable(idempotency_key):
            idempotency_key = idempotency_key(raw.sha256)
        if not storable_identifier(idempotency_key):
            await self.rawstore.discard([raw, *also_store])
            raise UnstorableIdentifier(f"idempotency key {_UNSTORABLE}")
        if idempotency_key is not None and partner_id is not None and look_up_key:
            try:
                earlier = await self._find(partner_id, channel, idempotency_key)
            except BaseException:
                await self.rawstore.discard([raw, *also_store])
                raise
            if earlier is not None:
                await self.rawstore.discard([raw, *also_store])
                return _replayed(earlier, raw)
        now, message_id = self.clock(), new_id()
        try:
            extra = tuple(also(message_id)) if also is not None else ()
        except BaseException:
            await self.rawstore.discard([raw, *also_store])
            raise
        row = {
            "id": message_id,
            "direction": "in",
            "partner_id": partner_id,
            "channel": channel,
            "transport_id": transport_id,
            "idempotency_key": idempotency_key,
            "kind": kind,
            "status": "received",
            "reason": None,
            "raw_sha256": raw.sha256,
            "raw_size": raw.size,
            "interchange_sender": None,
            "interchange_control": None,
            "received_at": now,
            "updated_at": now,
        }
        future: asyncio.Future[AcceptResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(row, raw, future, tuple(also_store), extra))
        # A caller that goes away cancels only its own future: the committer still commits
        # the message with its batch and skips a future already done.
        return await future

    async def _find(self, partner_id: str, channel: str, key: str) -> tuple[str, str] | None:
        try:
            async with self.db.read() as conn:
                found = await conn.execute(
                    select(Message.id, Message.raw_sha256).where(
                        Message.partner_id == partner_id,
                        Message.channel == channel,
                        Message.idempotency_key == key,
                    )
                )
                row = found.first()
        except Exception as exc:
            if is_storage_error(exc):
                raise StorageUnavailable(str(exc)) from exc
            raise
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------------ committer

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        # Running the raw store sync and the database commit of successive batches in
        # parallel was measured slower: both wait on the same file system journal.
        # A message's own small payload is a row; anything else is a file (module doc).
        files = [r for p in batch for r in (p.raw, *p.also_store) if not self._kept(p, r)]
        try:
            await self.rawstore.publish(files)
        except Exception as exc:
            self._fail(batch, exc)
            return
        try:
            handed = await self._insert(batch)
        except IntegrityError:
            # Someone raced us with an idempotency key: settle each accept on its own.
            for pending in batch:
                await self._commit_one(pending)
            return
        except Exception as exc:
            self._fail(batch, exc)
            return
        self.batches += 1
        self.accepted += len(batch)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result(AcceptResult(pending.message["id"], True, pending.raw))
        self._enqueued(handed, len(batch))

    def _kept(self, pending: _Pending, ref: RawRef) -> bool:
        """Whether ``ref`` is kept as a row of the batch (a message's own small payload)."""
        return self.journal is not None and ref is pending.raw and RawJournal.covers(ref)

    def _enqueued(self, handed: list[Handed], count: int) -> None:
        """After a commit: the claimed jobs to the pipeline, a wake-up for ready ones."""
        if handed and self.handoff is not None:
            self.handoff.put(handed)
        if len(handed) < count and self.on_enqueued is not None:
            self.on_enqueued()

    async def _commit_one(self, pending: _Pending) -> None:
        try:
            handed = await self._insert([pending])
        except IntegrityError as exc:
            row = pending.message
            earlier = None
            if row["idempotency_key"] is not None:
                with contextlib.suppress(Exception):
                    earlier = await self._find(row["partner_id"], row["channel"], row["idempotency_key"])
            if earlier is None:
                self._fail([pending], exc)
            elif not pending.future.done():
                try:
                    pending.future.set_result(_replayed(earlier, pending.raw))
                except IdempotencyConflict as conflict:
                    pending.future.set_exception(conflict)
            return
        except Exception as exc:
            self._fail([pending], exc)
            return
        self.accepted += 1
        if not pending.future.done():
            pending.future.set_result(AcceptResult(pending.message["id"], True, pending.raw))
        self._enqueued(handed, 1)

    async def _insert(self, batch: list[_Pending]) -> list[Handed]:
        """Write the batch's messages, events and first jobs in one transaction; the
        first jobs the hand-off has room for are written claimed by its worker and
        returned (to be put there once committed), each with its payload's bytes when
        they are in memory. Small payloads are rows of the same transaction."""
        messages = [p.message for p in batch]
        events = [
            {
                "message_id": m["id"],
                "at": m["received_at"],
                "state": "received",
                "detail": {
                    "channel": m["channel"],
                    "transport_id": m["transport_id"],
                    "size": m["raw_size"],
                    "sha256": m["raw_sha256"],
                },
            }
            for m in messages
        ]
        room = self.handoff.room() if self.handoff is not None else 0
        jobs = [_first_job(m, self.handoff if n < room else None) for n, m in enumerate(messages)]
        claimed = [j["message_id"] for j in jobs[:room]]
        # The caller's own rows (``also``: AS2 records its MDN with the message) go in
        # the same transaction. SQLite: one hop, plain executemany (gateway.db.writer).
        extra = _by_model(p.also for p in batch)
        journaled: list[dict[str, Any]] = []
        if self.journal is not None:
            journaled = self.journal.rows(p.raw for p in batch if self._kept(p, p.raw))
        if self.db.writer is not None:
            if journaled:
                extra.insert(0, (JournaledPayload, journaled))
            work = partial(_insert_lean, messages, events, jobs, extra, claimed)
            ids = await self.db.lean_write(work)
        else:
            ids = await self._insert_async(messages, events, jobs, extra, claimed, journaled)
        if not claimed:
            return []
        assert self.handoff is not None
        worker = self.handoff.worker_id
        # ``raw_data``: the bytes the pipeline plans from, None for a spilled payload
        # (its file is read); gateway.domain.inbound.InboundMessage.
        return [
            Handed(
                ClaimedJob(ids[p.message["id"]], p.message["id"], FIRST_STEP, 1, worker),
                SimpleNamespace(**p.message, raw_data=p.raw.data),
            )
            for p in batch[: len(claimed)]
        ]

    async def _insert_async(
        self,
        messages: list[dict[str, Any]],
        events: list[dict[str, Any]],
        jobs: list[dict[str, Any]],
        extra: list[tuple[type[Base], list[dict[str, Any]]]],
        claimed: list[str],
        journaled: list[dict[str, Any]],
    ) -> dict[str, int]:
        notify = not self.db.is_sqlite and len(claimed) < len(jobs)
        if self.db.dialect == "postgresql" and not extra:
            # One statement, its own transaction (gateway.db.lean_pg): committed, with its
            # wake-up, when it returns.
            return await lean_pg.accept_batch(
                self.db, journaled, messages, events, jobs, returning=bool(claimed), notify=notify
            )
        async with self.db.write() as conn:
            await insert_journaled(conn, journaled)
            await conn.execute(insert(Message), messages)
            await conn.execute(insert(MessageEvent), events)
            if claimed:
                found = await conn.execute(insert(Job).returning(Job.id, Job.message_id), jobs)
                ids = {message_id: job_id for job_id, message_id in found.all()}
            else:
                await conn.execute(insert(Job), jobs)
                ids = {}
            for model, rows in extra:
                await conn.execute(insert(model), rows)
            # Delivered at commit only: wakes `gateway worker` processes (gateway.db.notify).
            if notify:
                await conn.execute(text(NOTIFY_SQL))
        return ids

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        log.error("intake commit failed for %d message(s): %s", len(batch), printable(exc))
        error: BaseException = StorageUnavailable(str(exc)) if is_storage_error(exc) else exc
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)


def _first_job(message: dict[str, Any], handoff: Handoff | None) -> dict[str, Any]:
    """The translate job of ``message``: ready, or claimed for ``handoff``'s worker."""
    at = message["received_at"]
    return {
        "message_id": message["id"],
        "step": FIRST_STEP,
        "state": "ready" if handoff is None else "running",
        "attempts": 0 if handoff is None else 1,
        "locked_by": None if handoff is None else handoff.worker_id,
        "locked_until": None if handoff is None else handoff.lease_until(at),
        "next_attempt_at": at,
        "created_at": at,
        "updated_at": at,
    }


def _insert_lean(
    messages: list[dict[str, Any]],
    events: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    extra: list[tuple[type[Base], list[dict[str, Any]]]],
    claimed: list[str],
    conn: Any,
) -> dict[str, int]:
    """The batch in plain sqlite3; returns the ids of the ``claimed`` messages' jobs."""
    lean.insert(conn, Message, messages)
    lean.insert(conn, MessageEvent, events)
    lean.insert(conn, Job, jobs)
    for model, rows in extra:
        lean.insert(conn, model, rows)
    ids: dict[str, int] = {}
    for part in lean.chunks(claimed):
        query = (
            f"SELECT message_id, id FROM jobs WHERE message_id IN ({lean.placeholders(len(part))}) "
            "AND step = ? AND state = 'running'"
        )
        ids.update(conn.execute(query, (*part, FIRST_STEP)).fetchall())
    return ids


def _by_model(extras: Iterable[tuple[ExtraRow, ...]]) -> list[tuple[type[Base], list[dict[str, Any]]]]:
    """The batch's extra rows, one list per model in the order the models first come."""
    grouped: dict[type[Base], list[dict[str, Any]]] = {}
    for rows in extras:
        for model, values in rows:
            grouped.setdefault(model, []).append(values)
    return list(grouped.items())


def _replayed(earlier: tuple[str, str], raw: RawRef) -> AcceptResult:
    message_id, sha = earlier
    if sha != raw.sha256:
        raise IdempotencyConflict(message_id)
    return AcceptResult(message_id, False, raw)
