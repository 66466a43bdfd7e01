"""Worker process pools (the translate pool, gateway.translate_pool, and the AS2
receive pool, gateway.as2_pool): :class:`WorkerPool` starts one on first use and
replaces it once when a worker dies; :func:`die_with_gateway` makes its workers
exit when the gateway does.

A gateway killed with SIGKILL must not leave workers behind (each holds memory,
pipes and the data directory; a crash-looping service piled up dozens).
PR_SET_PDEATHSIG (Linux) is not enough on its own: a worker's parent is the
forkserver, and the forkserver only exits once every process holding its "alive"
pipe is gone, which includes the workers themselves. So a watchdog thread polls the
gateway's pid (and our parent) every second and exits; the forkserver follows when
it can no longer report to the gateway. PDEATHSIG still covers a forkserver killed
on its own.

Workers import this module too: it never imports the rest of the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 1.0  # how often a worker looks whether the gateway still runs


class WorkerPool:
    """A :class:`ProcessPoolExecutor` of ``processes`` forkserver workers, started on
    the first :meth:`get` and replaced after it breaks (:meth:`rebuild`).

    forkserver: workers are forked from a clean helper that has imported ``preload``,
    never from the gateway with its event loop and database threads. ``initargs``
    is called with the multiprocessing context at each start, so what the workers
    share with the gateway (a queue) comes from the same context. There is one
    forkserver per gateway process: the preload of the pool that starts it first
    is the one it keeps (the other pool's workers import the rest themselves)."""

    def __init__(
        self,
        processes: int,
        preload: Sequence[str],
        initializer: Callable[..., None],
        initargs: Callable[[BaseContext], tuple[Any, ...]],
    ) -> None:
        self.processes = processes
        self.preload = list(preload)
        self.initializer = initializer
        self.initargs = initargs
        self.executor: ProcessPoolExecutor | None = None
        self.rebuilds = 0  # pools replaced after a worker died, for tests and metrics
        self._starting = asyncio.Lock()

    async def get(self) -> ProcessPoolExecutor:
        """The running pool, started now if there is none."""
        # Starting workers blocks until the forkserver has imported ``preload`` (a
        # second or more): in a thread, or the event loop stalls meanwhile.
        async with self._starting:
            if self.executor is None:
                self.executor = await asyncio.to_thread(self._start)
            return self.executor

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(self.preload)
        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=context,
            initializer=self.initializer,
            initargs=self.initargs(context),
        )
        for started in [executor.submit(os.getpid) for _ in range(self.processes)]:
            started.result()
        return executor

    def rebuild(self, broken: ProcessPoolExecutor) -> None:
        """Replace ``broken`` (a worker died in it) by a fresh pool at the next :meth:`get`.

        Every call in flight on it sees it break: only the one that finds it still
        current replaces it, so it is replaced once, and a call that saw an old
        broken pool never shuts down the fresh one with other calls' work in flight."""
        if self.executor is not broken:
            return
        self.executor = None
        self.rebuilds += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


def die_with_gateway(gateway_pid: int) -> None:
    """Call first in a worker process's initializer (see the module doc)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent, started = os.getppid(), started_at(gateway_pid)
    # Already gone: the gateway may have died (a zombie nobody reaped yet) between
    # asking the forkserver for us and our start.
    if parent == 1 or not alive(gateway_pid, started):
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent, gateway_pid, started), name="gateway-watchdog", daemon=True
    ).start()


def _watch(parent: int, gateway_pid: int, started: bytes | None) -> None:
    while os.getppid() == parent and alive(gateway_pid, started):
        time.sleep(_WATCH_SECONDS)
    os._exit(1)


_GONE = b""


def started_at(pid: int) -> bytes | None:
    """The start time of ``pid`` from /proc (Linux): a pid taken over by another
    process after the gateway died is then not the gateway. ``_GONE`` when it does
    not run (a zombie, killed but not yet reaped, does not); None when /proc cannot
    say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return _GONE
    except (OSError, IndexError):
        return None
    return _GONE if fields[0] in (b"Z", b"X") else fields[19]  # state, ..., starttime (field 22)


def alive(pid: int, started: bytes | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs."""
    if started is not None:
        return started != _GONE and started_at(pid) == started
    try:  # no /proc: ask the kernel (a zombie counts as running here)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
