"""File primitives of the raw store (gateway.rawstore): write all of a buffer, sync a
path, tell whether a payload file exists (and holds given bytes), find ``syncfs(2)``,
drop stale temp files. Plain blocking calls for the raw store's threads; nothing here
knows payloads' meaning."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import socket
from collections.abc import Callable
from typing import Any


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refresh_intact(path: str, data: bytes) -> bool:
    """:func:`refresh` for a small payload whose bytes are at hand: an existing file
    counts only if it holds exactly ``data``. A file written unsynced for a batch that
    never committed (no row covers it) may be torn by a power cut; reusing it would
    acknowledge a payload whose only copy is broken."""
    if not refresh(path):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(len(data) + 1) == data
    except OSError:
        return False  # unreadable here: write our own copy over it


def refresh(path: str) -> bool:
    """Whether payload ``path`` exists; if so its mtime becomes now, which tells a
    concurrent :meth:`gateway.rawstore.RawStore.remove_unused` it is wanted again."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        return os.path.exists(path)  # someone else's file on shared storage
    return True


def load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux): one call makes every write on the file system durable."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def temp_prefix(kind: str) -> str:
    """The start of a temp file's name: ``<kind>-<pid>.<started>-<host>-``, so that a
    start can tell its own host's dead processes' files (:func:`drop_dead_temps`) from
    a live process's (``gateway serve`` beside ``gateway worker`` on one raw store).
    ``<host>`` names the machine's boot *and its pid namespace* (two containers with
    one hostname each have their own pids: the other's are no one's here), and
    ``<started>`` the process's start (a pid taken again is another process)."""
    pid = os.getpid()
    if _WRITER[0] != pid:  # once per process (read again in a forked child)
        _WRITER[:] = [pid, f"{pid}.{_started(pid)}-{_HOST}-"]
    return f"{kind}-{_WRITER[1]}"


def drop_dead_temps(tmp: str, idle_before: float) -> int:
    """Delete the files in ``tmp`` no live process writes; returns how many: those of a
    process of this host (and pid namespace) that is gone, and any other one (another
    host's or namespace's, an unknown name) last written before ``idle_before`` (a Unix
    time; gateway.rawstore.TEMP_IDLE_SECONDS). A file whose writer is known alive stays."""
    dropped = 0
    with os.scandir(tmp) as entries:
        for entry in entries:
            try:
                alive = _writer_alive(entry.name)
                if entry.is_file(follow_symlinks=False) and (
                    alive is False
                    or (alive is None and entry.stat(follow_symlinks=False).st_mtime < idle_before)
                ):
                    os.unlink(entry.path)
                    dropped += 1
            except FileNotFoundError:
                pass  # its writer published (renamed) or discarded it meanwhile
    return dropped


def _writer_alive(name: str) -> bool | None:
    """Whether the process that named this temp file still runs; None: cannot tell
    (another host or pid namespace, an older or unknown name, no /proc)."""
    parts = name.split("-", 3)
    if len(parts) < 4 or parts[2] != _HOST:
        return None
    pid, _, started = parts[1].partition(".")
    if not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    now = _started(int(pid))
    if not started.isdigit() or now == "0":
        return None
    return now == started


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22);
    "0" where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return "0"


def _host() -> str:
    """This machine's boot and pid namespace (Linux), with the hostname, as 8 hex digits."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            parts.append(fh.read().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


_HOST = _host()
_WRITER: list[Any] = [0, ""]  # this process's pid and the name part it writes
