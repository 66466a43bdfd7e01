"""Worker processes that die with the gateway (the translate pool, gateway.translate_pool,
and the AS2 receive pool, gateway.as2_pool): one killed with SIGKILL must not leave
workers behind (each holds memory, pipes and the data directory; a crash-looping
service piled up dozens).

PR_SET_PDEATHSIG (Linux) is not enough on its own: a worker's parent is the
forkserver, and the forkserver only exits once every process holding its "alive"
pipe is gone, which includes the workers themselves. So a watchdog thread polls the
gateway's pid (and our parent) every second and exits; the forkserver follows when
it can no longer report to the gateway. PDEATHSIG still covers a forkserver killed
on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
import time

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 1.0  # how often a worker looks whether the gateway still runs


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
