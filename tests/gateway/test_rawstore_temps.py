"""Temp files of processes sharing one raw store (``gateway serve`` beside ``gateway
worker``, the CLI): a process that starts drops only what dead processes left."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
    here = f"-{os.getpid()}-"
    names = {
        "dead": rawfiles.temp_prefix("in").replace(here, f"-{gone.pid}-") + "a",
        "dead_placed": rawfiles.temp_prefix("j").replace(here, f"-{gone.pid}-") + "7",
        "ours": rawfiles.temp_prefix("in") + "b",  # this live process's
        "live": rawfiles.temp_prefix("in").replace(here, f"-{os.getppid()}-") + "c",
        "other_host": f"in-{gone.pid}-0000beef-d",
        "other_host_idle": f"in-{gone.pid}-0000beef-e",
        "unknown_idle": "in-x1y2z3",
    }
    for name in names.values():
        (tmp / name).write_bytes(b"partial")
    old = time.time() - TEMP_IDLE_SECONDS - 60
    for key in ("other_host_idle", "unknown_idle"):
        os.utime(tmp / names[key], (old, old))
    store = RawStore(tmp_path / "raw")
    store.open_store()
    store.close()
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        [names["ours"], names["live"], names["other_host"]]
    )
