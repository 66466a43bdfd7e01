"""Translation workers die with the gateway: a gateway killed with SIGKILL must not
leave its pool's processes behind (each holds memory, pipes and the data
directory; a crash-looping service piled up dozens of them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GATEWAY = """
import asyncio, sys
from pathlib import Path
from gateway.translate_pool import TranslatePool

async def main():
    pool = TranslatePool(2, Path(sys.argv[1]))
    executor = await pool._pool()
    from multiprocessing import forkserver
    helpers = [forkserver._forkserver._forkserver_pid]  # the forkserver goes too
    print(" ".join(str(pid) for pid in [*executor._processes, *helpers]), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_gateway_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", GATEWAY, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as gateway:
        try:
            assert gateway.stdout is not None
            workers = [int(pid) for pid in gateway.stdout.readline().split()]
            assert len(workers) == 3 and all(running(pid) for pid in workers)
        finally:
            os.kill(gateway.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if running(pid)]
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"translation processes outlived the gateway: {left}"


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
