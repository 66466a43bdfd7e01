"""The pipeline's delivered-batch record on PostgreSQL, run on the raw asyncpg
connection: jobs finished, documents ``delivered`` (or, in feed mode, parked
``available``), held acks released, messages ``acknowledged``, their events, in one
transaction of a pooled connection.

Through SQLAlchemy each statement cost ~0.27 ms of event-loop CPU (compilation,
cache keys, per-row parameter processing) against ~0.04 ms through asyncpg itself,
and feed mode's parked batch went message by message through the ORM (a job update,
a document update and an event per message). Here the batch is the same statements
in the same order as the SQLite twin, gateway.db.lean_steps.record_delivered (which
says what each one writes), with lists as ``= ANY($n)`` arrays and the rows of an
insert as one ``executemany``.

asyncpg's errors come out as SQLAlchemy's classes (gateway.db.pg_raw). The
transaction is asyncpg's own on a connection in autocommit mode (as
gateway.db.lean_pg's intake batch), committed when the block ends and rolled back on
any error, IllegalTransition included. Never used on SQLite. The translate write's
statements take the session's own connection instead (gateway.db.pg_raw.driver,
gateway.db.pg_translate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.db.engine import Database
from gateway.db.jobs import ClaimedJob
from gateway.db.lean_steps import Delivered
from gateway.db.models_delivery import DeliveryAttempt
from gateway.db.pg_raw import as_sqlalchemy, insert
from gateway.db.writer import json_text
from gateway.domain.states import INBOUND, IllegalTransition, InboundStatus

_EVENT = "INSERT INTO message_events (message_id, at, state, detail) VALUES ($1, $2, $3, $4)"
_SOURCES = sorted(str(s) for s in INBOUND.sources(InboundStatus.ACKNOWLEDGED))


async def record_delivered(
    db: Database,
    *,
    attempts: Sequence[dict[str, Any]],
    complete: Sequence[tuple[ClaimedJob, Sequence[str]]],
    now: datetime,
    parked: Sequence[tuple[ClaimedJob, Sequence[str]]] = (),
) -> Delivered:
    """gateway.db.lean_steps.record_delivered on PostgreSQL (module doc), committed
    when this returns."""
    async with db.engine.connect() as conn, as_sqlalchemy("record delivered"):
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        pg: Any = (await conn.get_raw_connection()).driver_connection
        async with pg.transaction():
            return await _record(pg, attempts, complete, now, parked)


async def _record(
    pg: Any,
    attempts: Sequence[dict[str, Any]],
    complete: Sequence[tuple[ClaimedJob, Sequence[str]]],
    now: datetime,
    parked: Sequence[tuple[ClaimedJob, Sequence[str]]],
) -> Delivered:
    await insert(pg, DeliveryAttempt, attempts)
    done = Delivered()
    if not complete and not parked:
        return done
    worker = (complete or parked)[0][0].worker
    rows = await pg.fetch(
        "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL, updated_at = $1 "
        "WHERE id = ANY($2) AND locked_by = $3 AND state = 'running' RETURNING id",
        now,
        [job.id for job, _ in (*complete, *parked)],
        worker,
    )
    done.ours.update(row[0] for row in rows)
    parked = [(job, docs) for job, docs in parked if job.id in done.ours]
    if parked:
        await pg.execute(
            "UPDATE documents SET status = 'available', delivered_at = NULL, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ANY($1)",
            [d for _, docs in parked for d in docs],
        )
        await pg.executemany(
            _EVENT,
            [
                (job.message_id, now, "available_in_feed", json_text({"documents": len(docs)}))
                for job, docs in parked
            ],
        )
    complete = [(job, docs) for job, docs in complete if job.id in done.ours]
    if not complete:
        return done
    await pg.execute(
        "UPDATE documents SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, "
        "last_error = NULL WHERE id = ANY($2)",
        now,
        [d for _, docs in complete for d in docs],
    )
    message_ids = [job.message_id for job, _ in complete]
    for row in await pg.fetch(
        "UPDATE outbox SET status = 'pending' WHERE message_id = ANY($1) AND status = 'held' "
        "RETURNING message_id",
        message_ids,
    ):
        done.released[row[0]] = done.released.get(row[0], 0) + 1
    status = await pg.execute(
        "UPDATE messages SET status = $1, updated_at = $2 WHERE id = ANY($3) AND status = ANY($4)",
        str(InboundStatus.ACKNOWLEDGED),
        now,
        message_ids,
        _SOURCES,
    )
    if int(status.rsplit(" ", 1)[-1]) != len(message_ids):
        raise IllegalTransition(INBOUND.name, None, InboundStatus.ACKNOWLEDGED, ", ".join(message_ids))
    events: list[tuple[str, datetime, str, str]] = []
    for job, docs in complete:
        events.append((job.message_id, now, "delivered", json_text({"documents": len(docs)})))
        released = done.released.get(job.message_id, 0)
        events.append((job.message_id, now, "acknowledged", json_text({"acks_released": released})))
    await pg.executemany(_EVENT, events)
    return done
