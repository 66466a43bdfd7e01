"""Raw file benchmark (not a test): what one small payload file costs to create, the
way the raw store places it (temp file, write, close, rename into its bucket), alone
and while another thread appends and ``fdatasync``s a file on the same file system,
as a database commit does beside the intake (decision 0018). The first round runs in
a fresh directory tree, as a new gateway's raw store starts; later rounds add to it.

Prints CPU microseconds of the creating thread per file (CLOCK_THREAD_CPUTIME_ID) and
wall microseconds per file, for both, and the ratio busy / quiet. The two runs
alternate ``--rounds`` times, each on fresh names.

Usage: python bench/bench_raw_files.py [--files 4000] [--size 1500] [--rounds 2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time


def place(root: str, count: int, size: int, tag: str) -> tuple[float, float]:
    """(CPU µs, wall µs) per file for ``count`` files of ``size`` bytes."""
    data = b"x" * size
    cpu0, wall0 = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID), time.perf_counter()
    for n in range(count):
        sha = hashlib.sha256(f"{tag}-{n}".encode()).hexdigest()
        final = f"{root}/{sha[:2]}/{sha}"
        temp = f"{root}/tmp/j-{tag}-{n}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(temp, final)
    cpu = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID) - cpu0
    return cpu / count * 1e6, (time.perf_counter() - wall0) / count * 1e6


def syncing(root: str, stop: threading.Event) -> None:
    fd = os.open(f"{root}/wal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while not stop.is_set():
            os.write(fd, b"y" * 32768)
            os.fdatasync(fd)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to create files (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-raw-files-", dir=args.dir) as root:
        os.mkdir(f"{root}/tmp")
        quiet: list[tuple[float, float]] = []
        busy: list[tuple[float, float]] = []
        for r in range(args.rounds):
            quiet.append(place(root, args.files, args.size, f"q{r}"))
            stop = threading.Event()
            syncer = threading.Thread(target=syncing, args=(root, stop))
            syncer.start()
            try:
                busy.append(place(root, args.files, args.size, f"b{r}"))
            finally:
                stop.set()
                syncer.join()
        print(f"load average {os.getloadavg()[0]:.2f}; {args.files} files of {args.size} bytes per run")
        print("| run | CPU µs/file | wall µs/file |")
        print("|---|---|---|")
        for r, (q, b) in enumerate(zip(quiet, busy, strict=True)):
            print(f"| quiet {r} | {q[0]:.0f} | {q[1]:.0f} |")
            print(f"| beside fdatasync {r} | {b[0]:.0f} | {b[1]:.0f} |")
        ratio = statistics.median(b[0] for b in busy) / statistics.median(q[0] for q in quiet)
        print(f"CPU per file beside a syncing thread / quiet (medians): {ratio:.1f}x")


if __name__ == "__main__":
    main()
