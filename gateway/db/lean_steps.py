"""The pipeline's hot writes on the lean SQLite path (gateway.db.writer): claiming a
batch of jobs, and recording a delivered batch (jobs finished, documents delivered,
held acks released, messages moved to ``acknowledged``, their events; or, in feed
mode, documents parked ``available`` for the ERP's feed) each as one transaction run
in the writer thread, one hop from the event loop.

Same rules as the SQLAlchemy versions (gateway.db.jobs.claim_many,
gateway.pipeline_deliver): a job is finished only while its lease is ours, and the
status write is guarded by the transition table (``WHERE status IN`` the states
gateway.domain.states allows to move to ``acknowledged``); a message found
elsewhere raises IllegalTransition and the whole transaction is rolled back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from gateway.db import jobs, lean
from gateway.db.engine import Database
from gateway.db.jobs import ClaimedJob
from gateway.db.models import MessageEvent
from gateway.db.models_delivery import DeliveryAttempt
from gateway.db.writer import json_text, ts
from gateway.domain.states import INBOUND, IllegalTransition, InboundStatus

_CANDIDATES = """
SELECT id, message_id FROM jobs AS j
WHERE ((state = 'ready' AND next_attempt_at <= ?) OR (state = 'running' AND locked_until < ?))
  AND NOT EXISTS (
    SELECT 1 FROM jobs AS other
    WHERE other.message_id = j.message_id AND other.id != j.id
      AND other.state = 'running' AND other.locked_until >= ?)
ORDER BY next_attempt_at, id
LIMIT ?
"""


async def claim(
    db: Database, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedJob]:
    """Claim a batch of due jobs in one transaction: one hop to the writer thread on
    SQLite files, gateway.db.jobs.claim_many through the engine otherwise."""
    if db.writer is not None:
        return await db.lean_write(partial(claim_many, worker=worker, now=now, lease=lease, limit=limit))
    async with db.write() as conn:
        return await jobs.claim_many(conn, worker=worker, now=now, lease=lease, limit=limit)


def claim_many(
    conn: sqlite3.Connection, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedJob]:
    """gateway.db.jobs.claim_many in plain sqlite3: up to ``limit`` due jobs, oldest
    first, at most one per message, leased to ``worker``."""
    at = ts(now)
    seen: set[str] = set()
    ids: list[int] = []
    for job_id, message_id in conn.execute(_CANDIDATES, (at, at, at, limit)):
        if message_id not in seen:
            seen.add(message_id)
            ids.append(job_id)
    if not ids:
        return []
    claimed = conn.execute(
        f"UPDATE jobs SET state = 'running', locked_by = ?, locked_until = ?, attempts = attempts + 1, "
        f"updated_at = ? WHERE id IN ({lean.placeholders(len(ids))}) "
        "RETURNING id, message_id, step, attempts",
        (worker, ts(now + lease), at, *ids),
    ).fetchall()
    order = {job_id: n for n, job_id in enumerate(ids)}
    return [
        ClaimedJob(id=job_id, message_id=message_id, step=step, attempts=attempts, worker=worker)
        for job_id, message_id, step, attempts in sorted(claimed, key=lambda r: order[r[0]])
    ]


@dataclass(slots=True)
class Delivered:
    """What :func:`record_delivered` wrote: the jobs that were still ours, and per
    message the number of acks it released."""

    ours: set[int] = field(default_factory=set)
    released: dict[str, int] = field(default_factory=dict)


def record_delivered(
    conn: sqlite3.Connection,
    *,
    attempts: Sequence[dict[str, Any]],
    complete: Sequence[tuple[ClaimedJob, Sequence[str]]],
    now: datetime,
    parked: Sequence[tuple[ClaimedJob, Sequence[str]]] = (),
) -> Delivered:
    """Messages whose every document the ERP took (``complete``: job, document ids):
    the delivery attempts inserted, the jobs still ours finished, their documents
    ``delivered``, their held acks ``pending``, the messages ``acknowledged`` with a
    ``delivered`` and an ``acknowledged`` event each (as
    gateway.pipeline_deliver.DeliverStep._record_complete does). ``parked``: messages
    whose every document the feed sink parked: jobs finished, documents ``available``,
    one ``available_in_feed`` event each, the message left as it is until the ERP
    confirms (as DeliverStep._record_delivery does for them)."""
    at = ts(now)
    lean.insert(conn, DeliveryAttempt, list(attempts))
    done = Delivered()
    if not complete and not parked:
        return done
    worker = (complete or parked)[0][0].worker
    job_ids = [job.id for job, _ in (*complete, *parked)]
    for part in lean.chunks(job_ids):
        done.ours.update(
            row[0]
            for row in conn.execute(
                "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL, updated_at = ? "
                f"WHERE id IN ({lean.placeholders(len(part))}) AND locked_by = ? AND state = 'running' "
                "RETURNING id",
                (at, *part, worker),
            )
        )
    _record_parked(conn, [(job, docs) for job, docs in parked if job.id in done.ours], at)
    complete = [(job, docs) for job, docs in complete if job.id in done.ours]
    if not complete:
        return done
    doc_ids = [d for _, docs in complete for d in docs]
    for part in lean.chunks(doc_ids):
        conn.execute(
            "UPDATE documents SET status = 'delivered', delivered_at = ?, attempts = attempts + 1, "
            f"last_error = NULL WHERE id IN ({lean.placeholders(len(part))})",
            (at, *part),
        )
    message_ids = [job.message_id for job, _ in complete]
    sources = sorted(INBOUND.sources(InboundStatus.ACKNOWLEDGED))
    moved = 0
    for part in lean.chunks(message_ids):
        for (message_id,) in conn.execute(
            "UPDATE outbox SET status = 'pending' "
            f"WHERE message_id IN ({lean.placeholders(len(part))}) AND status = 'held' RETURNING message_id",
            tuple(part),
        ).fetchall():
            done.released[message_id] = done.released.get(message_id, 0) + 1
        moved += conn.execute(
            "UPDATE messages SET status = ?, updated_at = ? "
            f"WHERE id IN ({lean.placeholders(len(part))}) AND status IN ({lean.placeholders(len(sources))})",
            (str(InboundStatus.ACKNOWLEDGED), at, *part, *map(str, sources)),
        ).rowcount
    if moved != len(message_ids):
        raise IllegalTransition(INBOUND.name, None, InboundStatus.ACKNOWLEDGED, ", ".join(message_ids))
    events: list[tuple[str, str | None, str, str]] = []
    for job, docs in complete:
        events.append((job.message_id, at, "delivered", json_text({"documents": len(docs)})))
        released = done.released.get(job.message_id, 0)
        events.append((job.message_id, at, "acknowledged", json_text({"acks_released": released})))
    conn.executemany(
        f"INSERT INTO {lean.table_of(MessageEvent).name} (message_id, at, state, detail) VALUES (?, ?, ?, ?)",
        events,
    )
    return done


def _record_parked(
    conn: sqlite3.Connection, parked: Sequence[tuple[ClaimedJob, Sequence[str]]], at: str | None
) -> None:
    """Feed mode: the documents ``available`` (the ERP's confirmation delivers them),
    one ``available_in_feed`` event per message."""
    doc_ids = [d for _, docs in parked for d in docs]
    for part in lean.chunks(doc_ids):
        conn.execute(
            "UPDATE documents SET status = 'available', delivered_at = NULL, attempts = attempts + 1, "
            f"last_error = NULL WHERE id IN ({lean.placeholders(len(part))})",
            (*part,),
        )
    conn.executemany(
        f"INSERT INTO {lean.table_of(MessageEvent).name} (message_id, at, state, detail) VALUES (?, ?, ?, ?)",
        [
            (job.message_id, at, "available_in_feed", json_text({"documents": len(docs)}))
            for job, docs in parked
        ],
    )
