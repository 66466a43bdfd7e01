"""How far a message's translation is: sets translated / sets in the payload.

Translation runs in a thread or in a worker process (gateway.translate_pool) and
hears of every set (gateway.domain.inbound.Progress). :class:`ProgressBoard`
keeps the latest count per message being planned: a thread reports straight into
it, a worker process through the pool's queue (:meth:`TranslatePool.progress_updates`).
While the pipeline waits for a plan (:meth:`ProgressBoard.plan`, or
:meth:`ProgressBoard.plan_many` for a batch in one pool call), it writes the count to
the translate job's row (``jobs.progress_done`` / ``progress_total``, migration
0008) every ``interval`` seconds when it changed, so ``GET /api/v1/messages/{id}``
on any instance sharing the database shows it.

Progress is never a status: it is written beside the job, outside the transition
table, and a failed progress write is logged and ignored (the translation goes on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from sqlalchemy import update

from gateway.db.models import Job
from gateway.domain.inbound import InboundMessage, InboundPlan, Progress
from gateway.translate_pool import plan_stored

if TYPE_CHECKING:
    from gateway.db.engine import Database
    from gateway.translate_pool import TranslatePool

log = logging.getLogger(__name__)
T = TypeVar("T")
Count = tuple[int, int | None]


class ProgressBoard:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self.db = db
        self.interval = interval
        self.current: dict[str, Count] = {}
        self._watching: set[str] = set()

    def reporter(self, message_id: str) -> Progress:
        """A Progress for ``message_id`` planned in a thread of this process."""

        def report(done: int, total: int | None) -> None:
            self.current[message_id] = (done, total)

        return report

    async def plan(
        self,
        message: Any,
        partners: Any,
        pool: TranslatePool | None,
        opener: Callable[[str], BinaryIO],
    ) -> InboundPlan:
        """``message``'s plan, in ``pool`` or (None) in a thread, its progress written
        to its translate job meanwhile."""
        if pool is not None:
            return await self._watch(message.id, pool.plan(message, partners), pool)
        planning = asyncio.to_thread(
            plan_stored, InboundMessage.of(message), partners, opener, self.reporter(message.id)
        )
        return await self._watch(message.id, planning, None)

    async def plan_many(self, messages: list[Any], partners: Any, pool: TranslatePool) -> list[Any]:
        """Plans for a batch of messages in one ``pool`` call (TranslatePool.plan_many),
        the progress of each written to its translate job meanwhile."""
        return await self._watch([m.id for m in messages], pool.plan_many(messages, partners), pool)

    async def _watch(
        self, message_ids: str | list[str], planning: Awaitable[T], pool: TranslatePool | None
    ) -> T:
        ids = [message_ids] if isinstance(message_ids, str) else message_ids
        task = asyncio.ensure_future(planning)
        self._watching.update(ids)
        written: dict[str, Count] = {}
        try:
            while True:
                finished, _ = await asyncio.wait({task}, timeout=self.interval)
                if finished:
                    return task.result()
                if pool is not None:
                    for update_id, done, total in pool.progress_updates():
                        if update_id in self._watching:  # late news of a finished plan is dropped
                            self.current[update_id] = (done, total)
                for message_id in ids:
                    count = self.current.get(message_id)
                    if count is not None and count != written.get(message_id):
                        await self._write(message_id, count)
                        written[message_id] = count
        finally:
            self._watching.difference_update(ids)
            for message_id in ids:
                self.current.pop(message_id, None)
            if not task.done():
                task.cancel()

    async def _write(self, message_id: str, count: Count) -> None:
        try:
            async with self.db.begin() as session:
                await session.execute(
                    update(Job)
                    .where(Job.message_id == message_id, Job.step == "translate", Job.state == "running")
                    .values(progress_done=count[0], progress_total=count[1])
                    .execution_options(synchronize_session=False)
                )
        except Exception as exc:  # progress is a courtesy: never fail a translation over it
            log.debug("progress of message %s not written: %s", message_id, exc)
