"""Temp files of processes sharing one raw store (``gateway serve`` beside ``gateway
worker``, the CLI): a process that starts drops only what dead processes left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import rawfiles
from gateway.rawstore import TEMP_IDLE_SECONDS, RawStore


async def chunks(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def test_a_store_starting_beside_a_live_one_keeps_its_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    serve = RawStore(root, spill_bytes=16)
    serve.open_store()
    body = b"ISA*" + b"x" * 200 + b"~"  # spilled: staged in a temp file until published
    ref = await serve.stage(chunks(body), limit=1 << 20)
    assert ref.staged is not None and ref.staged.exists()
    small = await serve.stage(chunks(b"ISA*y~"), limit=1 << 20)
    # A worker (re)starting on the same raw store, in a process of its own.
    start = f"from pathlib import Path; from gateway.rawstore import RawStore; RawStore(Path({str(root)!r})).open_store()"
    subprocess.run([sys.executable, "-c", start], check=True, timeout=60)
    try:
        assert ref.staged.exists()
        await serve.publish([ref, small])  # before the fix: the temp file was gone (a 503)
        for sha, data in ((ref.sha256, body), (small.sha256, b"ISA*y~")):
            with serve.open(sha) as fh:
                assert fh.read() == data
    finally:
        serve.close()


def test_a_start_drops_what_dead_processes_left_and_nothing_else(tmp_path: Path) -> None:
    tmp = tmp_path / "raw" / "tmp"
    tmp.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    names = {
        "dead": f"{_prefix('in', gone.pid)}a",
        "dead_placed": f"{_prefix('j', gone.pid)}7",
        "dead_older_version": f"in-{gone.pid}-{rawfiles._HOST}-h",  # no start in the name
        "ours": rawfiles.temp_prefix("in") + "b",  # this live process's
        "ours_idle": rawfiles.temp_prefix("in") + "i",  # idle, but its writer is known alive
        "live": f"{_prefix('in', os.getppid())}c",
        # A dead process's pid taken again (in a container the gateway has the same pid
        # at every start): its start tells them apart; before, kept until idle 10 min.
        "pid_taken_again": f"in-{os.getpid()}.1-{rawfiles._HOST}-f",
        "other_host": f"in-{gone.pid}-0000beef-d",
        "other_host_idle": f"in-{gone.pid}-0000beef-e",
        "unknown_idle": "in-x1y2z3",
    }
    for name in names.values():
        (tmp / name).write_bytes(b"partial")
    old = time.time() - TEMP_IDLE_SECONDS - 60
    for key in ("other_host_idle", "unknown_idle", "ours_idle"):
        os.utime(tmp / names[key], (old, old))
    store = RawStore(tmp_path / "raw")
    store.open_store()
    store.close()
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        [names["ours"], names["ours_idle"], names["live"], names["other_host"]]
    )


def _prefix(kind: str, pid: int) -> str:
    """The temp prefix process ``pid`` of this host would write (:func:`rawfiles.temp_prefix`)."""
    return f"{kind}-{pid}.{rawfiles._started(pid)}-{rawfiles._HOST}-"


_SERVE = """
import asyncio, sys
from pathlib import Path
from gateway.rawstore import RawStore

async def one(data):
    yield data

async def main():
    store = RawStore(Path(sys.argv[1]), spill_bytes=16)
    store.open_store()
    ref = await store.stage(one(b"ISA*" + b"x" * 200 + b"~"), limit=1 << 20)
    print(ref.staged.name, flush=True)
    sys.stdin.readline()
    await store.publish([ref])
    print("published", flush=True)
    store.close()

asyncio.run(main())
"""


def test_a_live_store_in_another_pid_namespace_keeps_its_temp_files(tmp_path: Path) -> None:
    """Two containers on one machine with one hostname (``--network host``, or the same
    ``hostname:``) sharing the data volume: each has its own pids, so a pid the other's
    file names is no one's here. Before, the worker's start dropped serve's temp files."""
    namespace = ["unshare", "--pid", "--fork", "--mount-proc"]
    if (
        shutil.which("unshare") is None
        or subprocess.run([*namespace, "true"], capture_output=True).returncode
    ):
        pytest.skip("needs unshare(1) and the right to make a pid namespace")
    root = tmp_path / "raw"
    free = next(p for p in range(20000, 32000) if not Path(f"/proc/{p}").exists())
    # In its namespace the serve process gets pid ``free``, which no process has here.
    inner = (
        f"open('/proc/sys/kernel/ns_last_pid', 'w').write('{free - 1}'); import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {_SERVE!r}, {str(root)!r}], check=True)"
    )
    with subprocess.Popen(
        [*namespace, sys.executable, "-c", inner], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as serve:
        _serve_beside_a_start(serve, root, free)


def _serve_beside_a_start(serve: subprocess.Popen[str], root: Path, free: int) -> None:
    try:
        assert serve.stdout is not None and serve.stdin is not None
        name = serve.stdout.readline().strip()
        assert name.split("-")[1].partition(".")[0] == str(free), name
        store = RawStore(root)  # the worker's container starting
        store.open_store()
        store.close()
        assert (root / "tmp" / name).exists()
        serve.stdin.write("\n")
        serve.stdin.flush()
        assert serve.stdout.readline().strip() == "published"
        assert serve.wait(timeout=60) == 0
    finally:
        serve.kill()
