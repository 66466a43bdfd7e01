"""Accept benchmark (not a test): how many partner posts per second a real
``python -m gateway serve`` process stores durably and answers 202.

Each run starts the gateway on a free loopback port with a temporary data dir,
then a separate client process posts N distinct small 850s to
``/partners/acme/edi`` over ``--concurrency`` keep-alive connections and reports
accepts/s and p50/p99 accept latency (request written to response read). The same
client posts to a bare aiohttp handler (reads the body, answers 202 JSON) in the
same run: that is the ceiling of this client on this machine, and every gateway
figure is also given as a fraction of it.

Measured, per database (SQLite WAL + synchronous=FULL; PostgreSQL at
127.0.0.1:5432, user postgres, in a throwaway database, when it answers):

- accept only: ``[pipeline] workers = 0``;
- accept while the pipeline works: ``workers = 4``, feed sink, translation in
  ``translate_processes`` worker processes (the posts are translated as they come).

The client is a few lines of raw asyncio HTTP/1.1 (pre-built requests, responses
parsed by Content-Length) because aiohttp's client costs more CPU per request than
the server being measured, and client and server share the same two CPUs.

Usage: python bench/bench_accept.py [--posts 20000] [--concurrency 32] [--no-postgres]
       python bench/bench_accept.py --client PORT POSTS CONCURRENCY   (the client alone)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

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


# --------------------------------------------------------------------------- client


def _requests(port: int, posts: int, offset: int) -> list[bytes]:
    out = []
    for n in range(posts):
        body = order_850("ACME", offset + n, po=f"A{offset + n}")
        head = (
            f"POST /partners/acme/edi HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/edi-x12\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _post_all(port: int, requests: list[bytes], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests):
                request = requests[next_index]
                next_index += 1
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                status = int(head[9:12])
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    latencies.sort()
    return {
        "posts": len(requests),
        "seconds": seconds,
        "per_s": len(requests) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "non_202": sum(n for s, n in statuses.items() if s != 202),
    }


def client_main(port: int, posts: int, concurrency: int, offset: int) -> None:
    requests = _requests(port, posts, offset)
    print(json.dumps(asyncio.run(_post_all(port, requests, concurrency))), flush=True)


def run_client(port: int, posts: int, concurrency: int, offset: int) -> dict[str, float]:
    """The client in its own process, so it does not share an interpreter with anything."""
    out = subprocess.run(
        [sys.executable, __file__, "--client", str(port), str(posts), str(concurrency), str(offset)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_gateway(
    work: Path, database_url: str | None, workers: int, processes: int
) -> tuple[subprocess.Popen[bytes], int]:
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
        "poll_seconds = 0.05",
    ]
    if processes >= 0:
        lines.append(f"translate_processes = {processes}")
    (work / "gateway.toml").write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(work / "gateway.toml"),
            "--port",
            str(port),
            "--log-level",
            "ERROR",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "gateway.log").open("ab"),
    )
    wait_port(port, proc)
    return proc, port


def measure(port: int, args: argparse.Namespace) -> dict[str, float]:
    run_client(port, min(1000, args.posts), args.concurrency, 1)  # warm-up (connections, caches)
    return run_client(port, args.posts, args.concurrency, 1_000_000)


def bare(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        return measure(port, args)
    finally:
        stop(proc)


def gateway(database_url: str | None, workers: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-accept-") as tmp:
        proc, port = start_gateway(Path(tmp), database_url, workers, args.translate_processes)
        try:
            return measure(port, args)
        finally:
            stop(proc)


async def _postgres(action: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        if action == "create":
            await admin.execute(f"CREATE DATABASE {name}")
        else:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        asyncio.run(_postgres("drop", "gw_bench_probe"))
    except Exception:
        return False
    return True


def row(label: str, measure: str, result: dict[str, float], ceiling: float | None) -> str:
    share = f"{result['per_s'] / ceiling:.0%}" if ceiling else ""
    return (
        f"| {label} | {measure} | {result['per_s']:,.0f} | {share} | {result['p50_ms']:.1f} "
        f"| {result['p99_ms']:.1f} | {result['non_202']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=4, help="pipeline workers for the 'while translating' row"
    )
    parser.add_argument(
        "--translate-processes", type=int, default=-1, help="[pipeline] translate_processes (-1: the default)"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the 'while the pipeline works' rows")
    parser.add_argument("--client", nargs=3, type=int, metavar=("PORT", "POSTS", "CONCURRENCY"))
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.client:
        client_main(*args.client, int(rest[0]) if rest else 0)
        return

    rows = [
        "| database | measure | accepts/s | of ceiling | p50 ms | p99 ms | non-202 |",
        "|---|---|---|---|---|---|---|",
    ]
    ceiling = bare(args)
    rows.append(row("-", "bare aiohttp handler (ceiling)", ceiling, None))
    print(rows[-1], flush=True)
    databases: list[tuple[str, str | None]] = [("SQLite (WAL, synchronous=FULL)", None)]
    pg_name = f"gw_bench_{secrets.token_hex(4)}"
    use_pg = not args.no_postgres and postgres_up()
    if use_pg:
        asyncio.run(_postgres("create", pg_name))
        databases.append(("PostgreSQL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"))
    try:
        for label, url in databases:
            plans = [(0, "accept only (workers 0)")]
            if not args.no_pipeline:
                plans.append((args.workers, f"accept while translating (workers {args.workers})"))
            for workers, what in plans:
                if url is not None:
                    asyncio.run(_postgres("drop", pg_name))
                    asyncio.run(_postgres("create", pg_name))
                rows.append(row(label, what, gateway(url, workers, args), ceiling["per_s"]))
                print(rows[-1], flush=True)
    finally:
        if use_pg:
            asyncio.run(_postgres("drop", pg_name))
    print()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {args.posts} posts of "
        f"{len(order_850('ACME', 1, po='A1'))} bytes, {args.concurrency} connections"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
