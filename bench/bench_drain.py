"""Pipeline benchmark (not a test): the part after the 202 alone. A backlog of 850s
is accepted by ``gateway serve`` with no pipeline workers, that process stops, and a
fresh one with workers drains the backlog into the fake ERP webhook: documents per
second and CPU ms per document of the gateway process and its translate pool while
it drains, with no HTTP intake beside it (bench_service.py measures them together).

The drained messages are claimed from the jobs table (the recovery path of
decision 0014), in full batches; the translate write, the ERP posts and the deliver
record are the ones of steady state. The bare aiohttp handler is measured in the
same run as in bench_service.py (the ratio's peer).

Usage: python bench/bench_drain.py [--posts 2000] [--workers 8] [--no-postgres] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import (
    FakeErp,
    bare,
    blast,
    cpu_seconds,
    postgres_up,
    reset_postgres,
    start_gateway,
    stop,
)


async def drain(label: str, database_url: str | None, args: argparse.Namespace) -> list[str]:
    lines = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
            if database_url:
                await reset_postgres(database_url)
            erp = FakeErp()
            await erp.start()
            try:
                work = Path(tmp)
                proc, port = start_gateway(work, erp, database_url, workers=0)
                try:
                    await blast(port, args.posts, args.concurrency, 100_000 * (run + 1))
                finally:
                    stop(proc)
                t0 = time.monotonic()
                proc, _ = start_gateway(work, erp, database_url, workers=args.workers)
                try:
                    cpu = cpu_seconds(proc.pid)  # after start-up: the port answers
                    own = cpu_seconds(proc.pid, descendants=False)
                    while len(erp.accepted) < args.posts:
                        if time.monotonic() - t0 > 600:
                            raise SystemExit(f"ERP got only {len(erp.accepted)} of {args.posts}")
                        await asyncio.sleep(0.005)
                    elapsed = time.monotonic() - t0
                    cpu_ms = (cpu_seconds(proc.pid) - cpu) * 1000 / args.posts
                    own_ms = (cpu_seconds(proc.pid, descendants=False) - own) * 1000 / args.posts
                finally:
                    stop(proc)
            finally:
                await erp.stop()
        lines.append(
            f"| {label} | backlog drained into the ERP webhook | {args.posts / elapsed:,.0f} docs/s "
            f"| {cpu_ms:.2f} ({own_ms:.2f}) |"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8, help="pipeline workers of the draining gateway")
    parser.add_argument("--runs", type=int, default=1, help="drains per database")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = ["| database | measure | throughput | CPU ms/doc (serve process alone) |", "|---|---|---|---|"]
    rows.append(" | ".join((await bare(args)).split(" | ")[:3]) + " | |")
    rows += await drain("SQLite (WAL, synchronous=FULL)", None, args)
    if not args.no_postgres and postgres_up():
        import asyncpg

        name = f"gw_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            rows += await drain("PostgreSQL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", args)
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.posts} posts drained, {args.workers} pipeline workers"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
