"""Shared check for the worker pools (gateway.translate_pool, gateway.as2_pool):
a gateway killed with SIGKILL takes its worker processes and their forkserver with
it (gateway.worker_lifetime)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def assert_workers_exit_with_the_gateway(script: str, *args: str, workers: int = 2) -> None:
    """Run ``script`` (a gateway that starts a pool and prints its workers' pids and
    the forkserver's on one line, then sleeps), kill it with SIGKILL and assert that
    every printed process exits within ten seconds."""
    with subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    ) as gateway:
        try:
            assert gateway.stdout is not None
            pids = [int(pid) for pid in gateway.stdout.readline().split()]
            assert len(pids) == workers + 1 and all(running(pid) for pid in pids)
        finally:
            os.kill(gateway.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.1)
    left = [pid for pid in pids if running(pid)]
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"worker processes outlived the gateway: {left}"
