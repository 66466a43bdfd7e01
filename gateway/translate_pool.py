"""Translation in worker processes, so CPU-bound parsing never holds the event
loop's GIL; and :func:`plan_stored`, the one way a stored message is planned.

Planning a message (open the raw payload, run :func:`translators.engine.translate`,
decide: :func:`gateway.domain.inbound.plan_inbound`) is pure CPU. Run in a thread
it still takes the GIL from the event loop, and accepts measured ~160/s with
pipeline workers busy instead of several hundred. :class:`TranslatePool` runs the
same :func:`plan_stored` in a small :class:`ProcessPoolExecutor` (``[pipeline]
translate_processes``; 0 keeps the in-thread path): the workers call the domain
function directly, with the payload's bytes in the job (a small payload, kept in the
database) or its file opened by :func:`gateway.rawstore.open_payload`.

What crosses the process boundary is picklable plain data: an
:class:`~gateway.domain.inbound.InboundMessage` (id, partner, kind, raw sha256, and
the payload's bytes when they are a database row),
the raw store's root and a partner *generation* number; an
:class:`~gateway.domain.inbound.InboundPlan` comes back (document rows without
ids: the pipeline issues them in write order). A worker keeps the partner
directory of the last generation it saw; when the pipeline's directory object
changes (a reload swaps it), the generation goes up, the worker answers "need
partners" and the job is sent again with the directory itself (pickled once per
generation).

A worker that dies (killed, out of memory) breaks the pool: the pool is rebuilt
and the job tried once more; a second break raises
:class:`gateway.runner.TransientError`, so the job is retried with backoff and a
message that kills workers every time ends failed after ``max_attempts``. A
gateway that dies takes its workers with it (:func:`_init_worker`).

This module never touches the database; workers never import ``gateway.app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import logging
import os
import pickle
import queue
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, BinaryIO

from gateway.domain.errors import HookFailed
from gateway.domain.inbound import DocumentHook, InboundMessage, InboundPlan, Progress, plan_inbound
from gateway.hooks import HookError, inbound_document
from gateway.partner_settings import TransportSettings
from gateway.rawstore import open_payload
from gateway.worker_lifetime import WorkerPool, die_with_gateway

log = logging.getLogger(__name__)


class _NeedPartners(Exception):
    """Raised in a worker that does not hold the requested partner generation."""


class TranslatePool:
    def __init__(self, processes: int, raw_root: Path) -> None:
        if processes < 1:
            raise ValueError("a translate pool needs at least one process")
        self.processes = processes
        self.raw_root = str(raw_root)
        self._partners_obj: Any = None
        self._generation = 0
        self._blob: bytes | None = None
        self._progress: Any = None  # the workers' progress queue (a multiprocessing queue)
        self._workers = WorkerPool(
            processes,
            ["translators.engine", "gateway.domain.inbound", "gateway.translate_pool"],
            _init_worker,
            self._initargs,
        )

    @property
    def rebuilds(self) -> int:
        """Pools replaced after a worker died, for tests and metrics."""
        return self._workers.rebuilds

    def close(self) -> None:
        self._workers.close()

    def _initargs(self, context: BaseContext) -> tuple[Any, ...]:
        # Each pool gets its own progress queue, from the workers' own context.
        self._progress = context.Queue()
        return (os.getpid(), self._progress)

    async def plan(self, message: Any, partners: Any) -> InboundPlan:
        """The pipeline's plan for ``message`` (a row with id, partner_id, kind,
        raw_sha256), computed in a worker process."""
        if partners is not self._partners_obj:
            self._partners_obj, self._generation, self._blob = partners, self._generation + 1, None
        fields = InboundMessage.of(message)
        generation = self._generation
        for attempt in (1, 2):
            executor = await self._workers.get()
            try:
                try:
                    plan = await self._submit(executor, fields, generation, None)
                except _NeedPartners:
                    plan = await self._submit(executor, fields, generation, self._partners_blob())
                break
            except BrokenProcessPool as exc:
                self._workers.rebuild(executor)
                if attempt == 2:
                    # here: the workers import this module and never load the database stack
                    from gateway.runner import TransientError

                    raise TransientError(f"translation worker process died: {exc}") from exc
                log.warning("translation worker died on message %s; pool rebuilt, trying again", message.id)
        return plan

    async def plan_many(self, messages: list[Any], partners: Any) -> list[InboundPlan | BaseException]:
        """Plans for several messages, in order, each a plan or the exception its
        planning raised: one call per worker process for the whole batch (one pickle
        round trip per chunk instead of one per message). A chunk whose worker dies
        twice is planned again one message at a time, so a message that kills
        workers cannot take its batch-mates down with it (:meth:`plan`)."""
        if not messages:
            return []
        if partners is not self._partners_obj:
            self._partners_obj, self._generation, self._blob = partners, self._generation + 1, None
        generation = self._generation
        size = -(-len(messages) // self.processes)
        chunks = [messages[i : i + size] for i in range(0, len(messages), size)]
        done = await asyncio.gather(*(self._plan_chunk(chunk, partners, generation) for chunk in chunks))
        return [plan for chunk in done for plan in chunk]

    async def _plan_chunk(
        self, messages: list[Any], partners: Any, generation: int
    ) -> list[InboundPlan | BaseException]:
        fields = [InboundMessage.of(m) for m in messages]
        loop = asyncio.get_running_loop()
        for _attempt in (1, 2):
            executor = await self._workers.get()
            try:
                try:
                    return await loop.run_in_executor(
                        executor, _plan_many_in_worker, fields, self.raw_root, generation, None
                    )
                except _NeedPartners:
                    return await loop.run_in_executor(
                        executor,
                        _plan_many_in_worker,
                        fields,
                        self.raw_root,
                        generation,
                        self._partners_blob(),
                    )
            except BrokenProcessPool:
                self._workers.rebuild(executor)
                log.warning("translation worker died on a batch of %d message(s); pool rebuilt", len(fields))
        planned: list[InboundPlan | BaseException] = []
        for message in messages:
            try:
                planned.append(await self.plan(message, partners))
            except Exception as exc:
                planned.append(exc)
        return planned

    async def _submit(
        self, executor: ProcessPoolExecutor, fields: InboundMessage, generation: int, blob: bytes | None
    ) -> InboundPlan:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, _plan_in_worker, fields, self.raw_root, generation, blob)

    def _partners_blob(self) -> bytes:
        if self._blob is None:
            self._blob = pickle.dumps(_for_workers(self._partners_obj), protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    def progress_updates(self) -> list[tuple[str, int, int | None]]:
        """(message id, sets done, sets in total) the workers reported since the last
        call (gateway.progress), without waiting."""
        updates: list[tuple[str, int, int | None]] = []
        while self._progress is not None:
            try:
                updates.append(self._progress.get_nowait())
            except (queue.Empty, OSError, ValueError):
                break
        return updates


# --------------------------------------------------------------------------- planning


def plan_stored(
    message: InboundMessage,
    partners: Any,
    opener: Callable[[str], BinaryIO],
    progress: Progress | None = None,
) -> InboundPlan:
    """The domain plan of a stored message: its payload's bytes when the message
    carries them (``raw_data``: a small payload, kept in the database), else its file
    opened with ``opener`` (sha256 -> open binary file: ``Blobs.open_file``, or
    :func:`gateway.rawstore.open_payload` bound to the root), planned with the
    partners' inbound hooks, telling ``progress`` of each set. The pipeline calls it
    in a thread, a worker process in the pool."""
    payload = io.BytesIO(message.raw_data) if message.raw_data is not None else opener(message.raw_sha256)
    with payload:
        return plan_inbound(message, payload, partners, inbound_hook(partners), progress)


def inbound_hook(partners: Any) -> DocumentHook | None:
    """The partners' inbound hooks as the domain's DocumentHook (None: no partner
    has hooks, so no set's raw segments need keeping)."""
    if not hasattr(partners, "entry"):
        return None
    if not any((e := partners.entry(p.id)) is not None and e.hooks is not None for p in partners):
        return None

    def shape(document: Any, segments: Any = ()) -> Any:
        entry = partners.entry(document.partner_id)
        if entry is None or entry.hooks is None:
            return document
        try:
            return inbound_document(entry.hooks, document, segments)
        except HookError as exc:
            raise HookFailed(str(exc)) from None

    return shape


# --------------------------------------------------------------------------- worker side

_held: dict[str, Any] = {"generation": None, "partners": None, "progress": None}
_PROGRESS_SECONDS = 0.5  # a worker reports a message's count at most this often


def _init_worker(gateway_pid: int, progress: Any = None) -> None:
    """Die with the gateway (gateway.worker_lifetime); report progress to ``progress``."""
    die_with_gateway(gateway_pid)
    _held["progress"] = progress


def _for_workers(partners: Any) -> Any:
    """What a worker plans with: the X12 partnerships, without the transport tables
    (loaded AS2 certificates cannot be pickled, and channels are not a worker's business)."""
    entries = getattr(partners, "entries", None)
    if not isinstance(entries, dict):
        return partners
    bare = TransportSettings()
    return dataclasses.replace(
        partners, entries={k: dataclasses.replace(e, transport=bare) for k, e in entries.items()}
    )


def _plan_in_worker(
    message: InboundMessage, raw_root: str, generation: int, blob: bytes | None
) -> InboundPlan:
    if blob is not None:
        _held["partners"], _held["generation"] = pickle.loads(blob), generation
    elif _held["generation"] != generation:
        raise _NeedPartners()
    return plan_stored(
        message, _held["partners"], functools.partial(open_payload, raw_root), _reporter(message.id)
    )


def _reporter(message_id: str) -> Progress | None:
    """A Progress that puts the count on the pool's queue: the first and the last
    set at once, in between at most every _PROGRESS_SECONDS."""
    channel = _held["progress"]
    if channel is None:
        return None
    last = [0.0]

    def report(done: int, total: int | None) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= _PROGRESS_SECONDS:
            last[0] = now
            with contextlib.suppress(Exception):  # a full or closed queue never stops translation
                channel.put_nowait((message_id, done, total))

    return report


def _plan_many_in_worker(
    messages: list[InboundMessage], raw_root: str, generation: int, blob: bytes | None
) -> list[InboundPlan | BaseException]:
    if blob is not None:
        _held["partners"], _held["generation"] = pickle.loads(blob), generation
    elif _held["generation"] != generation:
        raise _NeedPartners()
    opener = functools.partial(open_payload, raw_root)
    planned: list[InboundPlan | BaseException] = []
    for message in messages:
        try:
            planned.append(plan_stored(message, _held["partners"], opener, _reporter(message.id)))
        except Exception as exc:
            planned.append(_picklable(exc))
    return planned


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it survives the trip back to the gateway, else a RuntimeError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
