"""Translation in worker processes, so CPU-bound parsing never holds the event
loop's GIL.

Translating a message (``Pipeline._plan_x12`` / ``_plan_canonical``: read the raw
file, run :func:`translators.engine.translate`, build the plan) is pure CPU. Run in
a thread it still takes the GIL from the event loop, and accepts measured ~160/s
with pipeline workers busy instead of several hundred. :class:`TranslatePool`
runs the same plan functions in a small :class:`ProcessPoolExecutor`
(``[pipeline] translate_processes``; 0 keeps the old in-thread path).

What crosses the process boundary is picklable and small: the message's id,
partner, kind and raw sha256, the raw store's root, and a partner *generation*
number. A worker keeps the partner directory of the last generation it saw; when
the pipeline's directory object changes (a reload swaps it), the generation goes
up, the worker answers "need partners" and the job is sent again with the
directory itself (pickled once per generation). Document ids are issued again in
this process, so ids stay strictly increasing per process as gateway.db.ids
promises.

A worker that dies (killed, out of memory) breaks the pool: the pool is rebuilt
and the job tried once more; a second break raises
:class:`gateway.pipeline.TransientError`, so the job is retried with backoff and a
message that kills workers every time ends failed after ``max_attempts``.

This module never touches the database; workers never import ``gateway.app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import pickle
import signal
import types
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from gateway.db.ids import new_id

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


class _NeedPartners(Exception):
    """Raised in a worker that does not hold the requested partner generation."""


class TranslatePool:
    def __init__(self, processes: int, raw_root: Path) -> None:
        if processes < 1:
            raise ValueError("a translate pool needs at least one process")
        self.processes = processes
        self.raw_root = str(raw_root)
        self._executor: ProcessPoolExecutor | None = None
        self._partners_obj: Any = None
        self._generation = 0
        self._blob: bytes | None = None
        self.rebuilds = 0  # pools replaced after a worker died, for tests and metrics
        self._starting = asyncio.Lock()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def plan(self, message: Any, partners: Any) -> Any:
        """The pipeline's plan for ``message`` (a row with id, partner_id, kind,
        raw_sha256), computed in a worker process."""
        if partners is not self._partners_obj:
            self._partners_obj, self._generation, self._blob = partners, self._generation + 1, None
        fields = types.SimpleNamespace(
            id=message.id, partner_id=message.partner_id, kind=message.kind, raw_sha256=message.raw_sha256
        )
        generation = self._generation
        for attempt in (1, 2):
            try:
                try:
                    plan = await self._submit(fields, generation, None)
                except _NeedPartners:
                    plan = await self._submit(fields, generation, self._partners_blob())
                break
            except BrokenProcessPool as exc:
                self._rebuild()
                if attempt == 2:
                    from gateway.pipeline import TransientError

                    raise TransientError(f"translation worker process died: {exc}") from exc
                log.warning("translation worker died on message %s; pool rebuilt, trying again", message.id)
        for row in plan.documents:
            row["id"] = new_id()
        return plan

    async def _submit(self, fields: Any, generation: int, blob: bytes | None) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            await self._pool(), _plan_in_worker, fields, self.raw_root, generation, blob
        )

    def _partners_blob(self) -> bytes:
        if self._blob is None:
            self._blob = pickle.dumps(self._partners_obj, protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    async def _pool(self) -> ProcessPoolExecutor:
        # Starting workers blocks until the forkserver has imported the translators
        # (a second or more): done in a thread, or the event loop stalls and no
        # request is answered meanwhile.
        async with self._starting:
            if self._executor is None:
                self._executor = await asyncio.to_thread(self._start)
            return self._executor

    def _start(self) -> ProcessPoolExecutor:
        # forkserver: workers are forked from a clean helper, never from this
        # process with its event loop and database threads.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["translators.engine", "gateway.pipeline"])
        executor = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_init_worker)
        for started in [executor.submit(os.getpid) for _ in range(self.processes)]:
            started.result()
        return executor

    def _rebuild(self) -> None:
        broken, self._executor = self._executor, None
        self.rebuilds += 1
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- worker side

_held: dict[str, Any] = {"generation": None, "partners": None}


class _RawReader:
    """What the plan functions use of gateway.rawstore.RawStore: ``open``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def open(self, sha256: str) -> Any:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return open(f"{self.root}/{sha256[:2]}/{sha256}", "rb")


class _WorkerSide:
    """Stands in for the Pipeline inside a worker: the plan functions read only
    ``self.rawstore`` and ``self.partners``."""

    def __init__(self, root: str, partners: Any) -> None:
        self.rawstore = _RawReader(root)
        self.partners = lambda: partners


def _init_worker() -> None:
    """Die with the parent: a gateway killed with SIGKILL must not leave workers
    behind (they would hold its pipes and its data directory). The forkserver
    exits when the gateway goes; PR_SET_PDEATHSIG passes that on to us."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if os.getppid() == 1 or (parent is not None and not parent.is_alive()):
        os._exit(1)


def _plan_in_worker(fields: Any, raw_root: str, generation: int, blob: bytes | None) -> Any:
    from gateway.pipeline import Pipeline

    if blob is not None:
        _held["partners"], _held["generation"] = pickle.loads(blob), generation
    elif _held["generation"] != generation:
        raise _NeedPartners()
    side = _WorkerSide(raw_root, _held["partners"])
    if fields.kind == "canonical":
        return Pipeline._plan_canonical(side, fields)  # type: ignore[arg-type]
    return Pipeline._plan_x12(side, fields)  # type: ignore[arg-type]
