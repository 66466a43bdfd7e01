"""Where the post->ERP tail comes from (not a test): 850s paced at a fixed rate into a
``gateway serve`` (webhook mode, as bench_service.py's half-load row) that runs under
bench/tail_trace.py, then each document's post->ERP time cut into stages, for the
median document and for the slowest ones.

Stages (server times from the trace, client times from this process; one clock):
client->intake (the POST until Intake.accept runs), stage+queue (the body staged,
waiting for the intake's committer), commit (the batch's transaction, gate included),
202 (commit until the client has its answer), hand-off wait (until a worker takes
it), pool (the translate pool's round trip for its batch), write (the translate
write, gate included), to post (until its ERP POST starts), ERP (until the fake ERP
has it). Also: batch sizes, SQLite write-gate waits by task, cyclic-GC pauses and
event-loop lag in the gateway and in this process.

Usage: python bench/bench_tail.py [--rate 350] [--posts 3000] [--postgres] [--slowest 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from bench_service import blast, cpu_seconds, reset_postgres, start_gateway, stop
from fakes.erp_server import FakeErp
from gwsamples import order_850

KEY = "bench-partner-key"

# (label, from, to): from/to are server stages, or "post" / "answered" / "erp" (client side)
STAGES = [
    ("client->intake", "post", "accept_start"),
    ("stage+queue", "accept_start", "commit_start"),
    ("commit", "commit_start", "commit_end"),
    ("hand-off wait", "handed", "taken"),
    ("taken->pool", "taken", "plan_start"),
    ("pool", "plan_start", "plan_end"),
    ("pool->write", "plan_end", "write_start"),
    ("write", "write_start", "write_end"),
    ("to post", "write_end", "post_start"),
    ("ERP", "post_start", "erp"),
]


class Probe:
    """GC pauses and loop lag of this (the bench's) process."""

    def __init__(self) -> None:
        self.gc: list[tuple[float, float, int, float]] = []
        self.lags: list[tuple[float, float]] = []
        self._started = (0.0, 0.0)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
        else:
            took = time.perf_counter() - self._started[0]
            cpu = time.thread_time() - self._started[1]
            self.gc.append((time.monotonic() - took, took, info["generation"], cpu))

    async def ticker(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.001)
            late = time.monotonic() - before - 0.001
            if late > 0.002:
                self.lags.append((before, late))


async def paced(port: int, erp: FakeErp, rate: float, posts: int, offset: int) -> dict[str, dict[str, float]]:
    """Post at ``rate``/s; per PO number: post start, 202, ERP receipt, message id."""
    bodies = [order_850("ACME", offset + n, po=f"P{offset + n}") for n in range(posts)]
    seen: dict[str, dict[str, Any]] = {}
    url = f"http://127.0.0.1:{port}/partners/acme/edi"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/edi-x12"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(n: int) -> None:
            po = f"P{offset + n}-1"  # the document's po_number (bench_service's key)
            row = seen[po] = {"post": time.monotonic()}
            async with session.post(url, data=bodies[n], headers=headers) as resp:
                answer = await resp.json()
                row["answered"] = time.monotonic()
                row["message_id"] = answer.get("message_id")

        t0 = time.monotonic()
        tasks = []
        for n in range(posts):
            delay = t0 + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    while len(erp.accepted) < posts:
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"ERP got only {len(erp.accepted)} of {posts}")
        await asyncio.sleep(0.01)
    for key, doc in erp.documents.items():
        seen[doc["document"]["po_number"]]["erp"] = erp.received_at[key]
    return seen


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * q) - 1)] if values else float("nan")


def report(seen: dict[str, dict[str, Any]], trace: dict[str, Any], slowest: float, probe: Probe) -> list[str]:
    lines: list[str] = []
    docs = []
    for row in seen.values():
        stages = trace["stages"].get(row["message_id"], {})
        docs.append({**stages, **row})
    total = sorted(((d["erp"] - d["post"]) * 1000, n) for n, d in enumerate(docs))
    after = [(d["erp"] - d["answered"]) * 1000 for d in docs]
    ms = [t for t, _ in total]
    lines.append(
        f"post->ERP p50 {statistics.median(ms):.1f} / p90 {pct(ms, 0.9):.1f} / p99 {pct(ms, 0.99):.1f} / "
        f"max {ms[-1]:.1f} ms; 202->ERP p50 {statistics.median(after):.1f} / p99 {pct(after, 0.99):.1f}; "
        f"post->202 p50 {statistics.median([(d['answered'] - d['post']) * 1000 for d in docs]):.1f} "
        f"/ p99 {pct([(d['answered'] - d['post']) * 1000 for d in docs], 0.99):.1f}"
    )
    count = max(1, int(len(total) * slowest))
    slow = [docs[n] for _, n in total[-count:]]
    middle = [docs[n] for _, n in total[len(total) // 2 - count // 2 : len(total) // 2 + count // 2 + 1]]
    lines.append(f"\nstage (ms)            | median docs (mean) | slowest {count} (mean) | slowest (max)")
    for label, a, b in STAGES:

        def span(d: dict[str, Any], a: str = a, b: str = b) -> float | None:
            return (d[b] - d[a]) * 1000 if a in d and b in d else None

        mid = [v for v in map(span, middle) if v is not None]
        tail = [v for v in map(span, slow) if v is not None]
        if not tail:
            continue
        lines.append(
            f"{label:21} | {statistics.mean(mid) if mid else float('nan'):8.1f}           "
            f"| {statistics.mean(tail):8.1f}           | {max(tail):8.1f}"
        )
    first = min(d["post"] for d in docs)
    for kind in ("commit", "take", "plan", "write", "deliver"):
        batches = [b for b in trace["batches"] if b["kind"] == kind and b["start"] >= first]
        if not batches:
            continue
        sizes = [b["size"] for b in batches]
        took = [(b["end"] - b["start"]) * 1000 for b in batches]
        lines.append(
            f"{kind:8} batches {len(batches):5}: size mean {statistics.mean(sizes):5.1f} max {max(sizes):4}; "
            f"ms p50 {statistics.median(took):6.1f} p99 {pct(took, 0.99):6.1f} max {max(took):6.1f} "
            f"(at +{batches[took.index(max(took))]['start'] - first:.2f} s)"
        )
    by_task: dict[str, list[tuple[float, float]]] = {}
    for name, req, acq, rel in trace["gates"]:
        key = "intake" if name.startswith("intake") else "pipeline" if name.startswith("pipeline") else name
        by_task.setdefault(key, []).append(((acq - req) * 1000, (rel - acq) * 1000))
    for key, values in sorted(by_task.items()):
        waits = [w for w, _ in values]
        holds = [h for _, h in values]
        lines.append(
            f"gate {key:12} {len(values):5}x: wait p50 {statistics.median(waits):5.1f} p99 {pct(waits, 0.99):6.1f} "
            f"max {max(waits):6.1f}; hold p50 {statistics.median(holds):5.1f} p99 {pct(holds, 0.99):6.1f}"
        )
    last = max(d["erp"] for d in docs)
    for where, gcs, lags in (
        ("gateway", trace["gc"], trace["lags"]),
        ("bench", probe.gc, probe.lags),
    ):
        inside = [(s, took, g, cpu) for s, took, g, cpu in gcs if first <= s <= last]
        for gen in (0, 1, 2):
            took = [t * 1000 for _, t, g, _ in inside if g == gen]
            cpu = [c * 1000 for _, _, g, c in inside if g == gen]
            if took:
                lines.append(
                    f"{where} gc gen{gen}: {len(took)} pauses, mean {statistics.mean(took):.2f} "
                    f"max {max(took):.2f} total {sum(took):.0f} ms; CPU mean {statistics.mean(cpu):.2f} "
                    f"max {max(cpu):.2f} total {sum(cpu):.0f} ms"
                )
        late = [lag * 1000 for at, lag in lags if first <= at <= last]
        if late:
            lines.append(
                f"{where} loop lag > 2 ms: {len(late)} times, p50 {statistics.median(late):.1f} "
                f"max {max(late):.1f} total {sum(late):.0f} ms"
            )
    lines.append(f"gateway objects tracked by gc: {trace['objects']}")
    # Which slow documents had a gen2 pause of the gateway or the bench in their window
    for where, gcs in (("gateway", trace["gc"]), ("bench", probe.gc)):
        gen2 = [(s, t) for s, t, g, _ in gcs if g == 2]
        hit = sum(1 for d in slow if any(d["post"] <= s <= d["erp"] for s, _ in gen2))
        lines.append(f"slowest {count} with a {where} gen2 pause inside: {hit}")
    return lines


async def run(args: argparse.Namespace, database_url: str | None) -> None:
    probe = Probe()
    ticker = asyncio.create_task(probe.ticker())
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        work = Path(tmp)
        out = work / "trace.json"
        here = str(Path(__file__).resolve().parent)
        launcher = [
            "-c",
            f"import sys; sys.path.insert(0, {here!r}); import tail_trace; tail_trace.main({str(out)!r})",
        ]
        erp = FakeErp()
        await erp.start()
        proc, port = start_gateway(work, erp, database_url, workers=args.workers, launcher=launcher)
        try:
            await blast(port, 300, 32, 1)  # warm-up
            while len(erp.accepted) < 300:
                await asyncio.sleep(0.01)
            erp.accepted.clear()
            erp.documents.clear()
            erp.received_at.clear()
            probe.gc.clear()
            probe.lags.clear()
            cpu = cpu_seconds(proc.pid)
            own = cpu_seconds(proc.pid, descendants=False)
            seen = await paced(port, erp, args.rate, args.posts, 300_000)
            cpu_ms = (cpu_seconds(proc.pid) - cpu) * 1000 / args.posts
            own_ms = (cpu_seconds(proc.pid, descendants=False) - own) * 1000 / args.posts
            os.kill(proc.pid, signal.SIGUSR1)
            for _ in range(200):
                await asyncio.sleep(0.05)
                if out.exists():
                    break
            await asyncio.sleep(0.5)
        finally:
            stop(proc)
            await erp.stop()
            ticker.cancel()
        if not out.exists():
            print(f"gateway exited {proc.returncode}:", (work / "gateway.log").read_text()[-3000:])
        trace = json.loads(out.read_text())
    print(
        f"{'PostgreSQL' if database_url else 'SQLite'}, paced {args.rate:.0f} posts/s, {args.posts} posts, "
        f"load {os.getloadavg()[0]:.2f}; CPU ms/doc {cpu_ms:.2f} ({own_ms:.2f} gateway process)"
    )
    print("\n".join(report(seen, trace, args.slowest, probe)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=350.0)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--slowest", type=float, default=0.02)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if not args.postgres:
        await run(args, None)
        return
    import asyncpg

    name = f"gw_tail_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        await reset_postgres(url)
        await run(args, url)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
