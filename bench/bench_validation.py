"""Grammar validation benchmark: MB/s of ``validate_set`` alone, and the ratio to pyx12.

Reads generated 850/856/810 files (bench.generate) into memory with the envelope
reader first, then times only ``validate_set`` over every set, so the figure is the
validator's share of the full path. pyx12 ships no 850/856/810 map, so the pyx12
comparison runs on a generated 997 file (4010, AK2/AK3/AK4 loops) that both engines
validate with a 997 map: pyx12's full ``x12n_document`` run (read + validate) against
our reader + ``validate_set`` on the same bytes.

    python -m bench.bench_validation [--size-mb 10] [--pyx12-kb 500]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import time

from bench.generate import generate
from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.model import TransactionSet
from translators.x12.validation import set_grammar, validate_set


def _sets(data: bytes) -> list[TransactionSet]:
    return [e.transaction_set for e in read_events(data) if isinstance(e, SetRead)]


def bench_kind(kind: str, size: int) -> tuple[float, int, int]:
    buffer = io.BytesIO()
    generate(kind, size, buffer)
    data = buffer.getvalue()
    sets = _sets(data)
    set_grammar(sets[0])  # load and compile the map outside the timing
    started = time.perf_counter()
    errors = 0
    for tset in sets:
        errors += len(validate_set(tset).segment_errors)
    elapsed = time.perf_counter() - started
    return len(data) / elapsed / 1e6, len(sets), errors


def make_997(size: int) -> bytes:
    """A 4010 997 interchange of about ``size`` bytes acknowledging 850s with errors."""
    body: list[str] = []
    count = 0
    lines = 0
    while sum(map(len, body)) < size:
        count += 1
        segs = [f"ST*997*{count:04d}", f"AK1*PO*{count}"]
        for n in range(20):
            segs += [f"AK2*850*{n + 1:04d}", "AK3*PO1*12*PO1*8", "AK4*2*330*4", "AK5*R*5"]
        segs += ["AK9*R*20*20*0", f"SE*{len(segs) + 1}*{count:04d}"]
        body.append("~\n".join(segs) + "~\n")
        lines += len(segs)
    head = (
        "ISA*00*          *00*          *ZZ*SENDERCO       *ZZ*RETAILER       *240101*1200*U*00401*000000001*0*P*>~\n"
        "GS*FA*SENDERCO*RETAILER*20240101*1200*1*X*004010~\n"
    )
    tail = f"GE*{count}*1~\nIEA*1*000000001~\n"
    return (head + "".join(body) + tail).encode("ascii")


def bench_997(size: int) -> tuple[float, float]:
    """(our MB/s, pyx12 MB/s) reading and validating the same 997 bytes."""
    import pyx12.params
    import pyx12.x12n_document

    data = make_997(size)
    _sets(data[:2000] + b"")  # warm imports
    started = time.perf_counter()
    for tset in _sets(data):
        validate_set(tset)
    ours = len(data) / (time.perf_counter() - started) / 1e6

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    param = pyx12.params.params()
    started = time.perf_counter()
    pyx12.x12n_document.x12n_document(param, io.StringIO(data.decode("ascii")), io.StringIO(), None, None)
    theirs = len(data) / (time.perf_counter() - started) / 1e6
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--pyx12-kb", type=float, default=500.0)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    for kind in ("850", "856", "810"):
        rate, sets, errors = bench_kind(kind, int(args.size_mb * 1e6))
        print(f"validate_set {kind}: {rate:7.1f} MB/s  ({sets} sets, {errors} segment errors)")
    ours, theirs = bench_997(int(args.pyx12_kb * 1e3))
    print(
        f"997 read+validate: ours {ours:.2f} MB/s, pyx12 x12n_document {theirs:.2f} MB/s, ratio {ours / theirs:.0f}x"
    )


if __name__ == "__main__":
    main()
