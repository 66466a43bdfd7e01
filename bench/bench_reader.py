"""Benchmark of the X12 syntax layer: ``read_events`` (streaming read with envelope
checks) against pyx12's ``X12Reader`` and a bare ``bytes.split`` on the same files,
plus peak memory while streaming a 1 GB file.

Usage: ``python -m bench.bench_reader [--size-mb 10] [--rss-gb 1] [--repeat 3]``.

Times are CPU seconds (``time.process_time``) and the best of ``--repeat`` runs, so
other work on a shared machine disturbs them less. Files are generated into a
temporary directory that is removed afterwards; nothing is left on disk.

It must never be imported by the product; it measures, it does not test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.generate import generate
from translators.x12.envelope import read_events
from translators.x12.events import SetRead

KINDS = ("850", "856", "810")


def best_cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def read_all(path: Path) -> int:
    """Stream the file through read_events; returns the transaction sets read."""
    count = 0
    with path.open("rb") as stream:
        for event in read_events(stream):
            if type(event) is SetRead:
                count += 1
    return count


def bare_split(path: Path) -> int:
    """The practical ceiling: split the bytes on the terminator and each segment on
    the element separator, keeping nothing and checking nothing."""
    count = 0
    with path.open("rb") as stream:
        for segment in stream.read().split(b"~"):
            segment.split(b"*")
            count += 1
    return count


def pyx12_read(path: Path) -> int:
    from pyx12.x12file import X12Reader

    count = 0
    with path.open("r", encoding="utf-8") as stream:
        for _segment in X12Reader(stream):
            count += 1
    return count


def peak_rss_kb() -> int:
    """This process's peak resident set. VmHWM is per exec'd image; ru_maxrss on Linux
    also counts the parent's peak from before the fork, so it is only a fallback."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(path: str) -> None:
    """Runs in a fresh interpreter: stream one big file, report time and peak RSS."""
    before_kb = peak_rss_kb()
    start = time.perf_counter()
    sets = read_all(Path(path))
    seconds = time.perf_counter() - start
    peak_kb = peak_rss_kb()
    print(json.dumps({"sets": sets, "seconds": seconds, "peak_kb": peak_kb, "baseline_kb": before_kb}))


def big_file(path: Path, size: int) -> int:
    """Write ``size`` bytes of 850s: one 16 MB block generated once, written repeatedly
    (the reader does not care that control numbers repeat across interchanges)."""
    block = io.BytesIO()
    generate("850", 16 * 1024 * 1024, block)
    data = block.getvalue()
    written = 0
    with path.open("wb") as out:
        while written < size:
            out.write(data)
            written += len(data)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10.0, help="size of each 850/856/810 file")
    parser.add_argument("--pyx12-mb", type=float, default=None, help="pyx12 file size (default: same)")
    parser.add_argument("--rss-gb", type=float, default=1.0, help="streamed file for peak RSS; 0 to skip")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-only", action="store_true", help="skip the speed table")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0

    print(
        f"command: python -m bench.bench_reader {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip()
    )
    print(
        f"machine: {platform.machine()}, nproc={os.cpu_count()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    size = int(args.size_mb * 1_000_000)
    pyx12_size = int((args.pyx12_mb if args.pyx12_mb is not None else args.size_mb) * 1_000_000)
    print("| file | size | read_events MB/s | pyx12 X12Reader MB/s | bare split MB/s | vs pyx12 | of bare |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in () if args.rss_only else KINDS:
            path = Path(tmp) / f"{kind}.edi"
            with path.open("wb") as out:
                generate(kind, size, out)
            mb = path.stat().st_size / 1e6
            ours = mb / best_cpu_seconds(lambda p=path: read_all(p), args.repeat)  # type: ignore[misc]
            bare = mb / best_cpu_seconds(lambda p=path: bare_split(p), args.repeat)  # type: ignore[misc]
            small = path
            if pyx12_size < size:
                small = Path(tmp) / f"{kind}-small.edi"
                with small.open("wb") as out:
                    generate(kind, pyx12_size, out)
            small_mb = small.stat().st_size / 1e6
            theirs = small_mb / best_cpu_seconds(lambda p=small: pyx12_read(p), 1)  # type: ignore[misc]
            print(
                f"| {kind} | {mb:.1f} MB | {ours:.1f} | {theirs:.2f} ({small_mb:.1f} MB) | {bare:.1f} "
                f"| {ours / theirs:.1f}x | {ours / bare:.0%} |"
            )
        if args.rss_gb > 0:
            path = Path(tmp) / "big.edi"
            written = big_file(path, int(args.rss_gb * 1e9))
            child = subprocess.run(
                [sys.executable, "-m", "bench.bench_reader", "--rss-child", str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            path.unlink()
            result = json.loads(child.stdout)
            print(
                f"\nstreamed {written / 1e9:.2f} GB ({result['sets']} sets) from a temp file in "
                f"{result['seconds']:.1f} s wall ({written / 1e6 / result['seconds']:.1f} MB/s): "
                f"peak RSS {result['peak_kb'] / 1024:.0f} MB "
                f"(interpreter with modules loaded: {result['baseline_kb'] / 1024:.0f} MB)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
