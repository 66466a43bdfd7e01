"""Translation workers die with the gateway: a gateway killed with SIGKILL must not
leave its pool's processes behind (each holds memory, pipes and the data
directory; a crash-looping service piled up dozens of them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from worker_orphans import assert_workers_exit_with_the_gateway, running

GATEWAY = """
import asyncio, sys
from pathlib import Path
from gateway.translate_pool import TranslatePool

async def main():
    pool = TranslatePool(2, Path(sys.argv[1]))
    executor = await pool._workers.get()
    from multiprocessing import forkserver
    helpers = [forkserver._forkserver._forkserver_pid]  # the forkserver goes too
    print(" ".join(str(pid) for pid in [*executor._processes, *helpers]), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_gateway_is_killed(tmp_path: Path) -> None:
    assert_workers_exit_with_the_gateway(GATEWAY, str(tmp_path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_gateway_not_yet_reaped_counts_as_gone() -> None:
    """A worker the forkserver starts after the gateway died finds a zombie where the
    gateway was: it must not wait for it (the zombie is reaped only once every
    holder of the gateway's pipes, the worker included, is gone)."""
    from gateway.worker_lifetime import alive as _alive
    from gateway.worker_lifetime import started_at as _started

    me = _started(os.getpid())
    assert me and _alive(os.getpid(), me)
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        deadline = time.monotonic() + 10
        while running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child.pid, _started(child.pid))  # a zombie: not reaped yet
        assert not _alive(child.pid, me)  # nor does a pid that was someone else's count
