"""Accept CPU benchmark (not a test): CPU time per accepted post in a real
``python -m gateway serve`` process (``[pipeline] workers = 0``), split by thread.

Starts the gateway the way ``bench/bench_accept.py`` does, posts with its raw-socket
client (its own process), and reads user + system CPU of every thread of the gateway
from ``/proc/<pid>/task/*/stat`` before and after the measured posts. Threads are
named by ``py-spy dump`` (which maps OS thread ids to Python thread names) and grouped
as: the event loop (MainThread), the raw store's threads (``rawstore_*``), the SQLite
writer (``sqlite-writer_*``) and the rest. CPU per accept hardly moves with the
neighbours' load, unlike accepts/s on a shared machine.

``--py-spy FILE`` also records the run (``py-spy record --threads --format raw``) into
FILE, a collapsed-stack file to read with ``grep`` or a flame graph tool.

Usage: python bench/bench_accept_cpu.py [--posts 20000] [--concurrency 32] [--postgres]
       [--runs 1] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_accept import BARE, _postgres, free_port, run_client, start_gateway, stop, wait_port

_DUMP_THREAD = re.compile(r'^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]*)"', re.M)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) per OS thread id of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def intake_counts(port: int) -> tuple[float, float]:
    """(group commits, messages accepted) from the gateway's /metrics (bench token)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer bench"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    found = dict(re.findall(r"^(gateway_intake_(?:commits|accepted)_total) (\S+)$", text, re.M))
    return float(found.get("gateway_intake_commits_total", 0)), float(
        found.get("gateway_intake_accepted_total", 0)
    )


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from ``py-spy dump`` (empty without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {}
    out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False)
    names: dict[int, str] = {}
    for found in _DUMP_THREAD.finditer(out.stdout):
        ident = found.group(1)  # the OS thread id on Linux
        names[int(ident, 16) if ident.startswith("0x") else int(ident)] = found.group(2)
    return names


def group(name: str) -> str:
    if name == "MainThread":
        return "event loop"
    if name.startswith("rawstore"):
        return "raw store"
    if name.startswith("sqlite-writer"):
        return "sqlite writer"
    return "other"


def run(database_url: str | None, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-accept-cpu-") as tmp:
        proc, port = start_gateway(Path(tmp), database_url, 0, -1)
        spy: subprocess.Popen[bytes] | None = None
        try:
            run_client(port, args.warmup, args.concurrency, 1)  # warm-up: threads started, files placed
            names = thread_names(proc.pid)
            counts = intake_counts(port)
            before = thread_cpu(proc.pid)
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--threads",
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--pid",
                        str(proc.pid),
                        "--output",
                        args.py_spy,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            result = run_client(port, args.posts, args.concurrency, 1_000_000)
            after = thread_cpu(proc.pid)
            batches, accepted = (b - a for a, b in zip(counts, intake_counts(port), strict=True))
            names.update({tid: names.get(tid, "?") for tid in after})
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
            stop(proc)
    per = {"total": 0.0, "event loop": 0.0, "raw store": 0.0, "sqlite writer": 0.0, "other": 0.0}
    for tid, seconds in after.items():
        spent = (seconds - before.get(tid, 0.0)) * 1000 / args.posts
        per["total"] += spent
        per[group(names.get(tid, "?"))] += spent
    return {**result, **per, "batch": accepted / batches if batches else 0.0}


def bare(args: argparse.Namespace) -> dict[str, float]:
    """The bare aiohttp handler of bench_accept (reads the body, answers 202): the same
    client's ceiling, and the CPU per request that aiohttp alone costs."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        run_client(port, args.warmup, args.concurrency, 1)
        before = sum(thread_cpu(proc.pid).values())
        result = run_client(port, args.posts, args.concurrency, 1_000_000)
        spent = (sum(thread_cpu(proc.pid).values()) - before) * 1000 / args.posts
    finally:
        stop(proc)
    return {**result, "total": spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="posts before measuring (a raw store's first files cost more)",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL (127.0.0.1:5432) instead of SQLite"
    )
    parser.add_argument("--py-spy", metavar="FILE", help="also record the measured posts with py-spy")
    args = parser.parse_args()
    print(
        "| database | accepts/s | CPU ms/accept | event loop | raw store | sqlite writer | other | p50 / p99 ms "
        "| posts per commit | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for _ in range(args.runs):
        ceiling = bare(args)
        print(
            f"| bare handler | {ceiling['per_s']:,.0f} | {ceiling['total']:.3f} | | | | "
            f"| {ceiling['p50_ms']:.1f} / {ceiling['p99_ms']:.1f} | | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )
        url = None
        name = f"gw_bench_{secrets.token_hex(4)}"
        if args.postgres:
            asyncio.run(_postgres("create", name))
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        try:
            r = run(url, args)
        finally:
            if args.postgres:
                asyncio.run(_postgres("drop", name))
        print(
            f"| {'PostgreSQL' if args.postgres else 'SQLite'} | {r['per_s']:,.0f} ({r['per_s'] / ceiling['per_s']:.0%}) "
            f"| {r['total']:.3f} "
            f"| {r['event loop']:.3f} | {r['raw store']:.3f} | {r['sqlite writer']:.3f} | {r['other']:.3f} "
            f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {r['batch']:.1f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
