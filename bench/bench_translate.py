"""Full-path benchmark: X12 bytes -> envelope checks -> grammar validation -> canonical documents.

Prints MB/s and documents/s for generated 850, 856 and 810 files, and pyx12's X12Reader
iterating the same files in the same run, as a ratio. With --rss it also measures the
peak resident memory of a child process translating a large generated file streamed
from disk (the file is deleted afterwards).

    python -m bench.bench_translate [--size-mb 10] [--kinds 850,856,810] [--no-pyx12] [--rss-mb 1024]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_reader import peak_rss_kb
from bench.generate import generate
from translators.engine import TranslatedSet, translate
from translators.profile import PartnerProfile

KINDS = ("850", "856", "810")


class OnePartner:
    def __init__(self) -> None:
        self.profile = PartnerProfile.model_validate(
            {
                "id": "bench",
                "name": "Bench",
                "x12": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "BENCH",
                    "group_id": "BENCH",
                    "version": "004010",
                },
            }
        )

    def get(self, partner_id: str) -> PartnerProfile | None:
        return self.profile

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        return self.profile


def time_engine(path: Path) -> tuple[float, int, int, float]:
    """Wall seconds, documents produced, sets rejected, CPU seconds (the box is
    shared: CPU time shows what the work costs when others hold the cores)."""
    partners = OnePartner()
    docs = rejected = 0
    cpu = time.process_time()
    start = time.perf_counter()
    with path.open("rb") as stream:
        for item in translate(stream, partners=partners):
            if isinstance(item, TranslatedSet):
                if item.document is not None:
                    docs += 1
                else:
                    rejected += 1
    return time.perf_counter() - start, docs, rejected, time.process_time() - cpu


def time_pyx12_reader(path: Path, budget_s: float = 20.0) -> tuple[float, int]:
    """Seconds and bytes pyx12's X12Reader needed to iterate (a prefix of) the file."""
    from pyx12.x12file import X12Reader

    start = time.perf_counter()
    segments = 0
    with path.open("r", encoding="latin-1") as stream:
        for _seg in X12Reader(stream):
            segments += 1
            if segments % 5000 == 0 and time.perf_counter() - start > budget_s:
                # pyx12 has no byte position: estimate consumed bytes from the tell() of the stream
                return time.perf_counter() - start, stream.tell()
    return time.perf_counter() - start, path.stat().st_size


def rss_child(path: str) -> None:
    """Runs in a fresh interpreter. Peak RSS is this process's VmHWM (see
    bench.bench_reader.peak_rss_kb): ru_maxrss on Linux carries the parent's peak
    (the generator's, here) across fork and exec."""
    baseline_kb = peak_rss_kb()
    seconds, docs, rejected, _cpu = time_engine(Path(path))
    print(f"{seconds:.2f} {docs} {rejected} {peak_rss_kb()} {baseline_kb}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument(
        "--rss-mb", type=float, default=0.0, help="also measure peak RSS on a file this large"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated, e.g. 850,856")
    parser.add_argument("--no-pyx12", action="store_true", help="skip the pyx12 reader comparison")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    size = int(args.size_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            path = Path(tmp) / f"{kind}.edi"
            with path.open("wb") as out:
                generated = generate(kind, size, out)
            mb = path.stat().st_size / 1e6
            seconds, docs, rejected, cpu = time_engine(path)
            ours = mb / seconds
            line = (
                f"{kind}: {mb:.1f} MB, {generated} documents generated; engine {ours:.1f} MB/s "
                f"({mb / cpu:.1f} MB/s of CPU time), {docs / seconds:,.0f} documents/s "
                f"({docs} translated, {rejected} rejected)"
            )
            if not args.no_pyx12:
                py_seconds, py_bytes = time_pyx12_reader(path)
                theirs = py_bytes / 1e6 / py_seconds
                line += f"; pyx12 X12Reader {theirs:.2f} MB/s; ratio {ours / theirs:.1f}x"
            print(line, flush=True)
        if args.rss_mb:
            path = Path(tmp) / "big.edi"
            with path.open("wb") as out:
                generate("850", int(args.rss_mb * 1024 * 1024), out)
            try:
                fields = subprocess.run(
                    [sys.executable, "-m", "bench.bench_translate", "--rss-child", str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
            finally:
                path.unlink()
            seconds, docs, rejected = float(fields[0]), int(fields[1]), int(fields[2])
            peak_kb, baseline_kb = int(fields[3]), int(fields[4])
            print(
                f"850 {args.rss_mb:.0f} MB streamed from disk: {args.rss_mb * 1.048576 / seconds:.1f} MB/s, "
                f"{docs} documents, peak RSS {peak_kb / 1024:.0f} MB (VmHWM; "
                f"{baseline_kb / 1024:.0f} MB before translating)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
