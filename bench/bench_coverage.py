"""What listing ``unmapped`` segments costs the full translation path: the engine over
a generated file with the coverage walk as shipped, and with it replaced by a no-op
(the peer: the same path without the listing), alternating rounds in one run.

    python -m bench.bench_coverage [--size-mb 5] [--kinds 850,856,810] [--rounds 2]

Prints MB/s (wall and CPU) of each and the CPU-time ratio with/without.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import translators.engine as engine
from bench.bench_translate import time_engine
from bench.generate import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--kinds", default="850,856,810")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    listing = engine.unmapped_segments
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            path = Path(tmp) / f"{kind}.edi"
            with path.open("wb") as out:
                generate(kind, int(args.size_mb * 1024 * 1024), out)
            mb = path.stat().st_size / 1e6
            best: dict[str, float] = {}
            for _round in range(args.rounds):
                for name, function in (("without", lambda *_a, **_k: ()), ("with", listing)):
                    engine.unmapped_segments = function  # type: ignore[assignment]
                    seconds, _docs, _rejected, cpu = time_engine(path)
                    best[name] = max(best.get(name, 0.0), mb / cpu)
                    print(f"{kind} {name:>7} unmapped: {mb / seconds:.2f} MB/s wall, {mb / cpu:.2f} MB/s CPU")
            engine.unmapped_segments = listing
            print(f"{kind}: with/without (best CPU MB/s) = {best['with'] / best['without']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
