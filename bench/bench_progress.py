"""Benchmark of translation progress (issue 13): what telling a Progress of every set
and counting the payload's ST segments first cost against planning without them.

Usage: ``python -m bench.bench_progress [--interchanges 200] [--sets 50] [--repeat 3]``.
Plans one generated multi-interchange file with ``plan_inbound`` (CPU time, best of
``--repeat``) without progress and with a progress that keeps the latest count, as
``gateway.progress`` does; prints both, ``count_sets`` alone, and the ratio.

It must never be imported by the product; it measures, it does not test.
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

from gateway.domain.inbound import InboundMessage, count_sets, plan_inbound
from gateway.partners import load_partners

PROFILE = """id = "acme"
name = "Acme"
[x12]
interchange_qualifier = "ZZ"
interchange_id = "ACME"
group_id = "ACME"
version = "004010"
"""


def order_file(interchanges: int, sets: int) -> bytes:
    out = []
    for n in range(1, interchanges + 1):
        body = []
        for s in range(1, sets + 1):
            segs = [
                f"ST*850*{s:04d}",
                f"BEG*00*SA*PO-{n}-{s}**20240312",
                "N1*ST*STORE 42*92*0042",
                "PO1*1*24*EA*3.50*PE*UP*012345678905*VN*WID-100",
                "CTT*1",
            ]
            body += [*segs, f"SE*{len(segs) + 1}*{s:04d}"]
        out += [
            f"ISA*00*          *00*          *ZZ*ACME           *ZZ*OURCOMPANY     *240315*1402*U*00401*{n:09d}*0*P*>",
            f"GS*PO*ACME*OURCOMPANY*20240315*1402*{n}*X*004010",
            *body,
            f"GE*{sets}*{n}",
            f"IEA*1*{n:09d}",
        ]
    return ("~\n".join(out) + "~\n").encode()


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interchanges", type=int, default=200)
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    payload = order_file(args.interchanges, args.sets)
    with TemporaryDirectory() as tmp:
        (Path(tmp) / "acme").mkdir()
        (Path(tmp) / "acme" / "profile.toml").write_text(PROFILE)
        partners = load_partners(Path(tmp))
    message = InboundMessage("bench", "acme", "x12", "0" * 64)
    latest: dict[str, tuple[int, int | None]] = {}

    def keep(done: int, total: int | None) -> None:
        latest["bench"] = (done, total)

    plain = best(lambda: plan_inbound(message, io.BytesIO(payload), partners), args.repeat)
    told = best(lambda: plan_inbound(message, io.BytesIO(payload), partners, progress=keep), args.repeat)
    counting = best(lambda: count_sets(io.BytesIO(payload)), args.repeat)
    sets = args.interchanges * args.sets
    print(
        f"python {platform.python_version()}; {len(payload) / 1e6:.1f} MB, {sets} sets, best of {args.repeat}"
    )
    print(f"plan without progress  {plain:7.2f} s CPU  ({sets / plain:,.0f} sets/s)")
    print(f"plan with progress     {told:7.2f} s CPU  (last count {latest['bench']})")
    print(f"count_sets alone       {counting * 1000:7.1f} ms CPU")
    print(f"ratio with / without progress: {told / plain:.3f}")


if __name__ == "__main__":
    main()
