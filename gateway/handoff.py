"""In-memory hand-off of accepted messages from the intake to the pipeline workers of
the same process.

In steady state a message goes intake -> translate -> deliver without its jobs being
looked up in the database: the intake writes the message's translate job already
claimed by this process's pipeline (``running``, its lease held by this instance and
renewed by its heartbeat) in the transaction that stores the message, and after the
commit puts the job and the message row here; a pipeline worker takes them from here
instead of claiming them (gateway.pipeline), and delivers what it translated straight
after its own commit (gateway.db.jobs.enqueue_claimed). The ``jobs`` rows are written
exactly as before, in the same transactions; they are read only for recovery: a
process that dies with jobs in this queue leaves them running under its instance,
and they are claimed again when its instance is found dead (gateway.runner) or, on
SQLite, when the next process starts (gateway.db.jobs.release_all_running).

The queue is bounded in jobs (``limit``) and in payload bytes (``max_bytes``: a small
payload travels with its job, up to ``SLOT_BYTES`` each, decision 0025): past either,
and whenever the pipeline is not running, the intake writes ordinary ``ready`` jobs
that any process claims, so a burst never piles up in one process's memory, whatever
``[pipeline] batch_size`` is, and a process never holds more work than it can start on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.db.jobs import ClaimedJob

SLOT_BYTES = 64 * 1024  # the largest payload that travels in memory (RawStore.spill_bytes)
MAX_BYTES = 32 * 1024 * 1024  # payload bytes the queue may hold at most


@dataclass(frozen=True, slots=True)
class Handed:
    """A job handed over in memory, with its message's row as the intake wrote it
    (the same attributes as a ``messages`` row read back)."""

    job: ClaimedJob
    message: Any


class Handoff:
    """The queue between this process's intake and its pipeline workers (see the module doc)."""

    def __init__(
        self,
        worker_id: str,
        *,
        lease_seconds: float,
        limit: int,
        on_handed: Callable[[], None],
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0  # payload bytes waiting in the queue
        self._on_handed = on_handed
        self._queue: deque[Handed] = deque()
        self._open = False
        self.handed = 0  # jobs handed over since start, for tests and metrics

    def open(self) -> None:
        self._open = True

    def close(self) -> list[Handed]:
        """Take no more; returns what was still waiting (its jobs stay ours to release)."""
        self._open = False
        left = list(self._queue)
        self._queue.clear()
        self.bytes = 0
        return left

    def room(self) -> int:
        """How many jobs the intake may write claimed for this process now: as many as
        fit both bounds, each counted at the largest payload it could carry."""
        if not self._open:
            return 0
        return max(0, min(self.limit - len(self._queue), (self.max_bytes - self.bytes) // SLOT_BYTES))

    def lease_until(self, now: datetime) -> datetime:
        return now + self.lease

    def put(self, handed: list[Handed]) -> None:
        """Jobs the intake committed as claimed by :attr:`worker_id`."""
        if not handed:
            return
        self._queue.extend(handed)
        self.bytes += sum(_carried(h) for h in handed)
        self.handed += len(handed)
        self._on_handed()

    def take(self, limit: int) -> list[Handed]:
        """Up to ``limit`` waiting jobs, oldest first."""
        count = min(limit, len(self._queue))
        taken = [self._queue.popleft() for _ in range(count)]
        self.bytes -= sum(_carried(h) for h in taken)
        return taken

    def __len__(self) -> int:
        return len(self._queue)


def _carried(handed: Handed) -> int:
    """The payload bytes ``handed`` holds in memory (none for a spilled payload)."""
    data = getattr(handed.message, "raw_data", None)
    return len(data) if data is not None else 0
