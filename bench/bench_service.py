"""Service benchmark (not a test): 850s posted to the partner REST endpoint of a
real ``python -m gateway serve`` process by a client with 32 concurrent
connections, until the fake ERP webhook has every canonical order.

Reports, per database (SQLite with durable commits, and PostgreSQL when something
listens on 127.0.0.1:5432):

- accept only (pipeline workers 0): posts/s answered 202 (stored durably);
- end to end (webhook mode): documents/s into the ERP and p50/p99 post-to-ERP
  latency (from the start of the POST to the ERP receiving the document; the client
  and the ERP run on one event loop in this process, so one clock), and the 202s per
  second over the same burst: accepting while the pipeline works;
- a bare aiohttp handler (reads the body, answers 202 JSON) measured in the same run
  as the ceiling of this client on this machine;
- every rate also as a share of the bare handler of the same run (issue 7's ratios);
- CPU ms per document: user + system CPU time of the gateway process and its
  children (the translate pool) over the measured posts, read from /proc. Unlike
  throughput on a shared machine, this hardly moves with the neighbours' load.
  End to end (and bench_drain.py) add the gateway process alone in parentheses:
  the share that holds its GIL and, on SQLite, its write gate.

``--worker`` also runs end to end with two processes: ``gateway serve`` with
``[pipeline] workers = 0`` (intake and HTTP) and ``gateway worker`` (pipeline and
delivery), each on its own core, on PostgreSQL; ``--worker-sqlite`` also on SQLite
(for a tree whose worker may run beside serve on one SQLite file: ``SPLIT_HACK=1`` is
set in both processes' environment for the experiment of docs/performance.md, issue 7
branch split). The CPU cell of such a row gives each process (with its translate pool;
alone in parentheses) and their sum.

Usage: python bench/bench_service.py [--posts 4000] [--concurrency 32] [--no-postgres]
       [--no-sqlite] [--worker] [--worker-sqlite] [--no-single] [--no-accept]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

from fakes.erp_server import FakeErp, free_port  # noqa: E402
from gwsamples import order_850, profile_toml  # noqa: E402

KEY = "bench-partner-key"
BARE = """
import sys
from aiohttp import web
async def handle(request):
    await request.read()
    return web.json_response({"message_id": "x", "status": "received"}, status=202)
app = web.Application()
app.router.add_post("/partners/{p}/edi", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("server did not start")


def start_gateway(
    work: Path,
    erp: FakeErp,
    database_url: str | None,
    workers: int,
    command: str = "serve",
    poll_seconds: float = 0.05,
    extra_env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``gateway serve`` (or ``gateway worker``) on a config in ``work``;
    ``launcher``: the interpreter's arguments instead of ``-m gateway`` (bench_tail's trace)."""
    partners = work / "partners" / "acme"
    partners.mkdir(parents=True, exist_ok=True)
    (partners / "profile.toml").write_text(profile_toml("acme", "ACME", KEY))
    lines = [
        f'data_dir = "{work / "var"}"',
        f'partners_dir = "{work / "partners"}"',
        *([f'database_url = "{database_url}"'] if database_url else []),
        "[identity]",
        'interchange_qualifier = "ZZ"',
        'interchange_id = "OURCOMPANY"',
        'group_id = "OURCOMPANY"',
        "[api]",
        'token = "bench"',
        "[pipeline]",
        f"workers = {workers}",
        f"poll_seconds = {poll_seconds}",
        "[erp]",
        'mode = "webhook"',
        f'url = "{erp.url}"',
        'secret = "bench-secret"',
    ]
    (work / "gateway.toml").write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | (extra_env or {})
    argv = [sys.executable, *(launcher or ["-m", "gateway"]), command, "--config", str(work / "gateway.toml")]
    if command == "serve":
        argv += ["--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--log-level", "ERROR"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "gateway.log").open("ab"),
    )
    if command == "serve":
        wait_port(port, proc)
    return proc, port


async def wait_worker(log: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until ``gateway worker`` printed its start line to ``log`` (its stderr)."""
    deadline = time.monotonic() + timeout
    while b"gateway worker " not in log.read_bytes():
        if proc.poll() is not None:
            raise SystemExit(f"worker exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("worker did not start")
        await asyncio.sleep(0.05)


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (translate pool);
    of ``pid`` alone without ``descendants``."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime (12th) stime (13th), counted from state = 0
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        if descendants:
            todo += children.get(current, [])
    return total


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def blast(port: int, posts: int, concurrency: int, offset: int) -> tuple[float, dict[str, float], int]:
    """Post ``posts`` 850s; returns (seconds, PO number -> monotonic post start, non-2xx count)."""
    bodies = [order_850("ACME", offset + n, po=f"B{offset + n}") for n in range(posts)]
    started: dict[str, float] = {}
    failures = 0
    next_index = 0
    url = f"http://127.0.0.1:{port}/partners/acme/edi"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/edi-x12"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal next_index, failures
            while next_index < posts:
                n = next_index
                next_index += 1
                started[f"B{offset + n}-1"] = time.monotonic()
                async with session.post(url, data=bodies[n], headers=headers) as resp:
                    await resp.read()
                    if resp.status >= 300:
                        failures += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - t0, started, failures


async def end_to_end(port: int, erp: FakeErp, posts: int, concurrency: int, offset: int) -> dict[str, float]:
    t0 = time.monotonic()
    seconds, started, failures = await blast(port, posts, concurrency, offset)
    result = await _delivered(erp, posts, t0, started, failures)
    # The 202s while the pipeline works through the same posts (issue 7's second accept target).
    result["accepts_per_s"] = posts / seconds
    return result


async def paced(port: int, erp: FakeErp, rate: float, posts: int, offset: int) -> dict[str, float]:
    """Post ``posts`` 850s at a steady ``rate`` per second (a new POST every 1/rate s,
    whatever the answers' pace), then wait for the ERP: post-to-ERP latency under a
    load the gateway can carry, not the queue of a burst."""
    bodies = [order_850("ACME", offset + n, po=f"P{offset + n}") for n in range(posts)]
    started: dict[str, float] = {}
    answered: dict[str, float] = {}  # PO number -> monotonic time of its 202 (the accept)
    failures = 0
    url = f"http://127.0.0.1:{port}/partners/acme/edi"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/edi-x12"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(n: int) -> None:
            nonlocal failures
            started[f"P{offset + n}-1"] = time.monotonic()
            async with session.post(url, data=bodies[n], headers=headers) as resp:
                await resp.read()
                answered[f"P{offset + n}-1"] = time.monotonic()
                if resp.status >= 300:
                    failures += 1

        t0 = time.monotonic()
        tasks = []
        for n in range(posts):
            delay = t0 + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    result = await _delivered(erp, posts, t0, started, failures)
    # The post-to-ERP latency in two parts: until the 202, and from the 202 to the ERP.
    accept = sorted((answered[po] - started[po]) * 1000 for po in answered)
    after = sorted(
        (erp.received_at[key] - answered[doc["document"]["po_number"]]) * 1000
        for key, doc in erp.documents.items()
    )
    for name, values in (("accept", accept), ("after_202", after)):
        result[f"{name}_p50_ms"] = statistics.median(values)
        result[f"{name}_p99_ms"] = values[int(len(values) * 0.99) - 1]
    return result


async def _delivered(
    erp: FakeErp, posts: int, t0: float, started: dict[str, float], failures: int
) -> dict[str, float]:
    while len(erp.accepted) < posts - failures:  # a post answered 5xx never reaches the ERP
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"ERP got only {len(erp.accepted)} of {posts}")
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - t0
    latencies = sorted(
        (erp.received_at[key] - started[doc["document"]["po_number"]]) * 1000
        for key, doc in erp.documents.items()
    )
    return {
        "docs_per_s": posts / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "failures": failures,
    }


def cpu_by_process(pids: list[int]) -> list[tuple[float, float]]:
    """(with descendants, alone) CPU seconds of each of ``pids``."""
    return [(cpu_seconds(p), cpu_seconds(p, descendants=False)) for p in pids]


def cpu_split_per_doc(pids: list[int], before: list[tuple[float, float]], posts: int) -> str:
    """``serve A (a) + worker B (b) = total``: CPU ms per document of each process since
    ``before`` (with its translate pool; alone in parentheses) and their sum."""
    parts, total = [], 0.0
    for name, (after_all, after_own), (before_all, before_own) in zip(
        ("serve", "worker"), cpu_by_process(pids), before, strict=True
    ):
        spent = (after_all - before_all) * 1000 / posts
        total += spent
        parts.append(f"{name} {spent:.2f} ({(after_own - before_own) * 1000 / posts:.2f})")
    return f"{' + '.join(parts)} = {total:.2f}"


def cpu_ms_per_doc(pids: list[int], before: float, posts: int, own: float | None = None) -> str:
    """CPU ms per document since ``before`` of ``pids`` with their translate pools; with
    ``own`` (the same processes alone at the start) also theirs alone, in parentheses."""
    total = f"{(sum(cpu_seconds(p) for p in pids) - before) * 1000 / posts:.2f}"
    if own is None:
        return total
    alone = sum(cpu_seconds(p, descendants=False) for p in pids) - own
    return f"{total} ({alone * 1000 / posts:.2f})"


async def run_database(label: str, database_url: str | None, args: argparse.Namespace) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        erp = FakeErp()
        await erp.start()
        work = Path(tmp)
        if not args.no_accept:
            lines.append(await _accept_only(work, erp, label, database_url, args))
        configurations = [] if args.no_single else [("end to end into the ERP webhook", False)]
        if (args.worker and database_url) or (args.worker_sqlite and not database_url):
            configurations.append(("end to end, serve + worker (two processes)", True))
        try:
            for name, split in configurations:
                if database_url:
                    await reset_postgres(database_url)
                lines.append(
                    f"| {label} | {name} | {await _end_to_end_run(work, erp, database_url, split, args)}"
                )
        finally:
            await erp.stop()
    return lines


async def _accept_only(
    work: Path, erp: FakeErp, label: str, database_url: str | None, args: argparse.Namespace
) -> str:
    """Posts/s answered 202 with the pipeline idle (workers 0)."""
    proc, port = start_gateway(work / "accept", erp, database_url, workers=0)
    try:
        await blast(port, 300, args.concurrency, 1)  # warm-up
        cpu = cpu_seconds(proc.pid)
        seconds, _, failures = await blast(port, args.posts, args.concurrency, 100_000)
        cpu_ms = cpu_ms_per_doc([proc.pid], cpu, args.posts)
    finally:
        stop(proc)
    return (
        f"| {label} | accept only (202 stored) | {args.posts / seconds:,.0f} posts/s"
        f"{_share(args.posts / seconds, args)} | | | {cpu_ms} | {failures} |"
    )


async def _end_to_end_run(
    work: Path, erp: FakeErp, database_url: str | None, split: bool, args: argparse.Namespace
) -> str:
    """One end-to-end measurement: a fresh gateway (and a worker process if ``split``)."""
    place = work / ("e2e-split" if split else "e2e")
    procs: list[subprocess.Popen[bytes]] = []
    extra_env = {"SPLIT_HACK": "1"} if split and not database_url else None
    try:
        proc, port = start_gateway(
            place,
            erp,
            database_url,
            workers=0 if split else args.workers,
            poll_seconds=args.poll_seconds,
            extra_env=extra_env,
        )
        procs.append(proc)
        if split:
            worker, _ = start_gateway(
                place,
                erp,
                database_url,
                workers=args.workers,
                command="worker",
                poll_seconds=args.poll_seconds,
                extra_env=extra_env,
            )
            procs.append(worker)
            # Posts only once the worker has started: its raw store's start clears
            # data_dir/raw/tmp, which would fail the serve's accept batch in flight (503).
            await wait_worker(place / "gateway.log", worker)
        erp.accepted.clear()
        erp.documents.clear()
        erp.received_at.clear()
        await end_to_end(port, erp, 300, args.concurrency, 1)  # warm-up
        erp.accepted.clear()
        erp.documents.clear()
        erp.received_at.clear()
        pids = [p.pid for p in procs]
        cpu = sum(cpu_seconds(p) for p in pids)
        own = sum(cpu_seconds(p, descendants=False) for p in pids)
        each = cpu_by_process(pids)
        mine = cpu_seconds(os.getpid(), descendants=False)
        result = await end_to_end(port, erp, args.posts, args.concurrency, 200_000)
        cpu_ms = (
            cpu_split_per_doc(pids, each, args.posts) if split else cpu_ms_per_doc(pids, cpu, args.posts, own)
        )
        client_ms = (cpu_seconds(os.getpid(), descendants=False) - mine) * 1000 / args.posts
        half = None
        if args.paced_posts:
            erp.accepted.clear()
            erp.documents.clear()
            erp.received_at.clear()
            rate = args.paced_rate or result["docs_per_s"] / 2
            cpu = sum(cpu_seconds(p) for p in pids)
            each = cpu_by_process(pids)
            half = await paced(port, erp, rate, args.paced_posts, 300_000)
            half["rate"] = rate
            half_cpu = (
                cpu_split_per_doc(pids, each, args.paced_posts)
                if split
                else cpu_ms_per_doc(pids, cpu, args.paced_posts)
            )
    finally:
        for p in procs:
            stop(p)
    line = (
        f"{result['docs_per_s']:,.0f} docs/s{_share(result['docs_per_s'], args)} | {result['p50_ms']:.1f} "
        f"| {result['p99_ms']:.1f} | {cpu_ms} | {result['failures']:.0f} |"
        f"\n| | ... accepted during it (202s/s while the pipeline works) "
        f"| {result['accepts_per_s']:,.0f} posts/s{_share(result['accepts_per_s'], args)} | | "
        f"| this bench's client and fake ERP: {client_ms:.2f} | |"
    )
    if half is not None:
        line += (
            f"\n| | ... at half that load (paced {half['rate']:,.0f} posts/s) | {half['docs_per_s']:,.0f} docs/s "
            f"| {half['p50_ms']:.1f} | {half['p99_ms']:.1f} | {half_cpu} | {half['failures']:.0f} |"
            f"\n| | ... of which until the 202 (accept) | | {half['accept_p50_ms']:.1f} "
            f"| {half['accept_p99_ms']:.1f} | | |"
            f"\n| | ... and from the 202 to the ERP (pipeline) | | {half['after_202_p50_ms']:.1f} "
            f"| {half['after_202_p99_ms']:.1f} | | |"
        )
    return line


def _share(rate: float, args: argparse.Namespace) -> str:
    """`` (N% of bare)``: ``rate`` as a share of this run's bare handler (issue 7's ceiling)."""
    ceiling = getattr(args, "ceiling", 0.0)
    return f" ({rate / ceiling:.1%} of bare)" if ceiling else ""


async def reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


async def bare(args: argparse.Namespace) -> str:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL)
    wait_port(port, proc)
    try:
        await blast(port, 300, args.concurrency, 1)
        seconds, _, _ = await blast(port, args.posts, args.concurrency, 100_000)
    finally:
        stop(proc)
    args.ceiling = args.posts / seconds
    return f"| - | bare aiohttp handler (ceiling) | {args.posts / seconds:,.0f} posts/s | | | | 0 |"


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8, help="pipeline workers of the gateway")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--worker", action="store_true", help="also end to end with serve + worker processes (PostgreSQL)"
    )
    parser.add_argument(
        "--worker-sqlite",
        action="store_true",
        help="also end to end with serve + worker on SQLite (a tree that allows it: SPLIT_HACK=1)",
    )
    parser.add_argument("--no-single", action="store_true", help="skip the one-process end to end rows")
    parser.add_argument("--no-accept", action="store_true", help="skip the accept-only rows")
    parser.add_argument(
        "--paced-posts",
        type=int,
        default=1000,
        help="after each end to end burst, this many posts paced at half its rate (0: skip)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0.0,
        help="pace the paced posts at this many per second instead of half the burst's rate "
        "(compares two versions at one load)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.05,
        help="[pipeline] poll_seconds of the gateway (default 1.0)",
    )
    args = parser.parse_args()
    rows = [
        "| database | measure | throughput | p50 ms | p99 ms | CPU ms/doc (e2e: serve process alone) | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]
    rows.append(await bare(args))
    if not args.no_sqlite:
        rows += await run_database("SQLite (WAL, synchronous=FULL)", None, args)
    if not args.no_postgres and postgres_up():
        import asyncpg

        name = f"gw_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            rows += await run_database(
                "PostgreSQL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", args
            )
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.posts} posts, {args.concurrency} connections, {args.workers} pipeline workers, "
        f"poll_seconds {args.poll_seconds}, {args.paced_posts} paced posts"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
