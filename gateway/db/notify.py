"""Wake-ups across processes on PostgreSQL: LISTEN/NOTIFY on one channel.

The intake sends ``NOTIFY gateway_jobs`` inside the transaction that commits new
jobs (:data:`NOTIFY_SQL`); PostgreSQL delivers it only when that transaction
commits, so a listener never looks for jobs that are not there yet, and a rolled
back accept wakes nobody. A :class:`JobsListener` in every process that runs
pipeline workers (``gateway worker``, or a second ``gateway serve``) holds one
dedicated connection LISTENing on the channel and calls its callback (the
pipeline's ``wake``) on each notification, so a worker in another process starts
on an accepted message at once instead of at its next poll.

The notification is only a hint: the jobs table stays the truth. Workers still
poll every ``[pipeline] poll_seconds`` (a notification sent while the listener was
reconnecting is lost, and other writers, such as a replay from the CLI, do not
notify); after a reconnect the listener calls its callback once so anything
committed meanwhile is looked at. SQLite has no such channel: there one process
owns the file and wakes its workers in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

CHANNEL = "gateway_jobs"
NOTIFY_SQL = f"NOTIFY {CHANNEL}"


def asyncpg_dsn(url: URL) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from the engine's SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class JobsListener:
    """One LISTEN connection that calls ``on_notify`` for every notification on
    :data:`CHANNEL`; it reconnects (every ``retry_seconds``) when the connection drops."""

    def __init__(self, url: URL, on_notify: Callable[[], None], *, retry_seconds: float = 1.0) -> None:
        self._dsn = asyncpg_dsn(url)
        self._on_notify = on_notify
        self._retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()  # set while a LISTEN is in place (tests wait on it)
        self.notifications = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobs-listener")

    async def wait_listening(self) -> None:
        await self._listening.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def _notified(self, *_args: Any) -> None:
        self.notifications += 1
        self._on_notify()

    async def _run(self) -> None:
        import asyncpg

        reconnecting = False
        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._notified)
                self._listening.set()
                if reconnecting:
                    log.info("listening for new jobs again")
                    self._on_notify()  # whatever was committed while we were away
                await lost.wait()
                log.warning("the job notification connection was lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot listen for new jobs (%s); workers poll meanwhile", type(exc).__name__)
            finally:
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            reconnecting = True
            await asyncio.sleep(self._retry_seconds)


def _set(event: asyncio.Event, *_args: Any) -> None:
    event.set()
