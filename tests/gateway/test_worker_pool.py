"""gateway.worker_lifetime.WorkerPool with real worker processes: started once,
replaced once when a worker dies, and a late call that saw the old pool break never
shuts down the one that replaced it."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from gateway.worker_lifetime import WorkerPool


async def test_a_late_rebuild_of_the_old_pool_leaves_the_fresh_one_alone() -> None:
    workers = WorkerPool(1, [], os.getpid, lambda _context: ())
    try:
        old = await workers.get()
        assert await workers.get() is old  # started once
        [pid] = list(old._processes)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await asyncio.get_running_loop().run_in_executor(old, os.getpid)
        workers.rebuild(old)  # the first call that saw it break replaces it
        fresh = await workers.get()
        assert fresh is not old
        workers.rebuild(old)  # a call that saw the old pool break, late
        assert workers.executor is fresh and workers.rebuilds == 1
        assert await asyncio.get_running_loop().run_in_executor(fresh, os.getpid) != os.getpid()
    finally:
        workers.close()
