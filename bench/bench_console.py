"""Operations console benchmark (not a test): do the pages answer under 200 ms with
100,000 messages in the database?

A throwaway database is filled with bulk inserts: N messages over the last 14 days
across the two example partners (a mix of statuses, 2% failed with a dead-lettered
document), one 850 document per message with its PO key (document_keys), so the
search, the per-partner figures and the 14-day chart have real volume to read. One
more message is posted through the real REST endpoint and translated by the real
pipeline, so its page has raw X12, a timeline and a canonical document.

Then the real app (gateway.app.build_app) serves on a loopback port, a logged-in
client asks each page ``--rounds`` times (after warm-up) and prints the median and
p95 per page; the same client asks a bare aiohttp handler on the same event loop
(the ceiling: what a request costs with no work at all) and each page's median is
printed as a ratio to it. The dashboard's 14-day charts are drawn in the background
once a minute (no request waits for them): the time one drawing takes is printed on
its own line.

The last column is the CPU (user + system) this process spent per request of the
page, client included: the Python side's cost, which the load of a shared machine
inflates less than the wall time (the database server's CPU is not in it).

Usage: python bench/bench_console.py [--messages 100000] [--rounds 40] [--postgres]
[--only WORD] [--partners 2] [--vacuum]
(default: a SQLite file in a temporary directory; ``--postgres``: a throwaway
database on 127.0.0.1:5432, created and dropped by the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import secrets
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert, text

from gateway import users
from gateway.app import DATABASE, PIPELINE, build_app
from gateway.config import Settings
from gateway.console.pages import _draw_charts
from gateway.db import schema
from gateway.db.engine import open_database
from gateway.db.ids import new_id
from gateway.db.models import Document, DocumentKey, Message

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ("holdretail", "northwind3pl")
EXAMPLE = ROOT / "examples" / "partners"
BATCH = 5000


def partners_folder(tmp: Path, count: int) -> tuple[Path, tuple[str, ...]]:
    """The example partners, and with ``count`` over 2 as many more: copies of the
    northwind3pl profile under ids ``bench-NNN`` (own ISA id, no test id), so the
    partners page has ``count`` rows to fill."""
    if count <= len(PARTNERS):
        return EXAMPLE, PARTNERS
    root = tmp / "partners"
    shutil.copytree(EXAMPLE, root)
    template = (EXAMPLE / "northwind3pl" / "profile.toml").read_text(encoding="utf-8")
    template = re.sub(r"(?m)^additional_ids = .*$", "", template)
    extra = tuple(f"bench-{i:03d}" for i in range(count - len(PARTNERS)))
    for partner in extra:
        (root / partner).mkdir()
        profile = template.replace('id = "northwind3pl"', f'id = "{partner}"')
        profile = profile.replace('"NORTHWIND3PL"', f'"{partner.upper()}"')
        (root / partner / "profile.toml").write_text(profile, encoding="utf-8")
    return root, PARTNERS + extra


async def fill(url: str, count: int, partners: tuple[str, ...] = PARTNERS, *, vacuum: bool = False) -> None:
    db = open_database(url)
    try:
        await schema.prepare_schema(db)
        now = datetime.now(UTC)
        start_ms = int((now - timedelta(days=14)).timestamp() * 1000)
        step = (14 * 86400 * 1000 - 60_000) // count
        for first in range(0, count, BATCH):
            messages, documents, keys = [], [], []
            for n in range(first, min(first + BATCH, count)):
                at_ms = start_ms + n * step
                at = datetime.fromtimestamp(at_ms / 1000, UTC)
                mid, did = new_id(at_ms), new_id(at_ms)
                partner = partners[n % len(partners)]
                failed = n % 50 == 0
                status = "failed" if failed else "acknowledged"
                po = f"PO-{n:07d}"
                messages.append(
                    {
                        "id": mid,
                        "direction": "in",
                        "partner_id": partner,
                        "channel": "as2",
                        "transport_id": f"<{n}@bench.example>",
                        "idempotency_key": None,
                        "kind": "x12",
                        "status": status,
                        "reason": "ERP refused" if failed else None,
                        "raw_sha256": "0" * 64,
                        "raw_size": 900,
                        "interchange_sender": f"ZZ/{partner.upper()}",
                        "interchange_control": f"{n % 999_999_999:09d}",
                        "received_at": at,
                        "updated_at": at,
                    }
                )
                documents.append(
                    {
                        "id": did,
                        "message_id": mid,
                        "seq": 1,
                        "partner_id": partner,
                        "direction": "in",
                        "kind": "order",
                        "set_id": "850",
                        "set_control": "0001",
                        "group_control": str(n),
                        "interchange_control": f"{n % 999_999_999:09d}",
                        "business_number": po,
                        "canonical": {"kind": "order", "document": {"po_number": po}},
                        "idempotency_key": secrets.token_hex(16),
                        "status": "pending" if failed else "delivered",
                        "attempts": 1,
                        "last_error": "HTTP 422: refused" if failed else None,
                        "created_at": at,
                        "delivered_at": None if failed else at,
                    }
                )
                keys.append({"document_id": did, "partner_id": partner, "key_kind": "po", "value": po})
            async with db.write() as conn:
                await conn.execute(insert(Message), messages)
                await conn.execute(insert(Document), documents)
                await conn.execute(insert(DocumentKey), keys)
        await users.add_user(db, "bench", "operator", "bench-password", now=now)
        if not db.is_sqlite:
            # What autovacuum does within a minute or so of a bulk load; without it the
            # planner guesses on empty statistics right after the load. With --vacuum
            # also what it does to an insert-only table since PostgreSQL 13: VACUUM, which
            # marks the pages all-visible so an index can answer without the table.
            async with db.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                    text("VACUUM ANALYZE" if vacuum else "ANALYZE")
                )
    finally:
        await db.close()


async def timed(session: aiohttp.ClientSession, url: str, rounds: int) -> list[float]:
    for _ in range(3):
        async with session.get(url) as resp:
            assert resp.status == 200, (url, resp.status, await resp.text())
            await resp.read()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
            assert resp.status == 200, url
        samples.append((time.perf_counter() - t) * 1000)
    return samples


def cpu_ms() -> float:
    """User + system CPU of this process (server and client: one event loop), in ms."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def run(label: str, url: str | None, args: argparse.Namespace, tmp: Path) -> list[str]:
    partners_dir, partners = partners_folder(tmp, args.partners)
    data: dict[str, Any] = {
        "data_dir": str(tmp / "var"),
        "partners_dir": str(partners_dir),
        "pipeline": {"workers": 1, "poll_seconds": 0.05},
        "identity": {"interchange_qualifier": "ZZ", "interchange_id": "OURCOMPANY", "group_id": "OURCOMPANY"},
    }
    if url:
        data["database_url"] = url
    settings = Settings.model_validate(data)
    t = time.perf_counter()
    await fill(settings.effective_database_url, args.messages, partners, vacuum=args.vacuum)
    fill_s = time.perf_counter() - t

    app = build_app(settings, sighup=False)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bare = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    bare.router.add_get("/", hello)
    bare_runner = web.AppRunner(bare)
    await bare_runner.setup()
    bare_site = web.TCPSite(bare_runner, "127.0.0.1", 0)
    await bare_site.start()
    bare_port = bare_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            edi = (ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi").read_bytes()
            async with session.post(
                base + "/partners/holdretail/edi",
                data=edi,
                headers={
                    "Authorization": "Bearer holdretail-example-key",
                    "Content-Type": "application/edi-x12",
                },
            ) as resp:
                assert resp.status == 202, await resp.text()
                live_id = (await resp.json())["message_id"]
            await app[PIPELINE].run_until_idle()
            async with session.get(base + "/ui/") as resp:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert csrf
            async with session.post(
                base + "/ui/login",
                data={"username": "bench", "password": "bench-password", "csrf_token": csrf.group(1)},
            ) as resp:
                assert "Dashboard" in await resp.text()
            async with app[DATABASE].read() as conn:  # what the background refresher does each minute
                t = time.perf_counter()
                await _draw_charts(app, conn, datetime.now(UTC))
                draw_ms = (time.perf_counter() - t) * 1000
            old_po = f"PO-{args.messages // 3:07d}"
            async with app[DATABASE].read() as conn:
                from sqlalchemy import select

                oldest = (await conn.execute(select(Message.id).order_by(Message.id).limit(1))).scalar_one()
            pages = [
                ("dashboard /ui/", "/ui/"),
                ("messages, first page", "/ui/messages"),
                ("messages, partner + status=failed", "/ui/messages?partner=holdretail&status=failed"),
                ("messages, the last page (keyset)", f"/ui/messages?cursor={oldest}Z"),
                ("messages, by number (filter)", f"/ui/messages?number={old_po}"),
                ("search: a PO", f"/ui/search?q={old_po}"),
                ("search: an AS2 Message-ID", f"/ui/search?q=%3C{args.messages // 2}%40bench.example%3E"),
                ("search: a control number", f"/ui/search?q={args.messages // 4:09d}"),
                ("message page (real 850)", f"/ui/messages/{live_id}"),
                ("order page", f"/ui/orders/{partners[(args.messages // 3) % len(partners)]}/{old_po}"),
                ("dead letters (first 100)", "/ui/dead-letters"),
                ("dead letters, older than 7 days", "/ui/dead-letters?older_than_hours=168"),
                (
                    "dead letters, partner + ERP + 850",
                    "/ui/dead-letters?partner=northwind3pl&type=erp_document&kind=850",
                ),
                ("dead letters, kind 810 (none: every candidate read)", "/ui/dead-letters?kind=810"),
                ("replay confirmation (stages)", f"/ui/messages/{live_id}/replay"),
                ("exceptions", "/ui/exceptions"),
                ("partners", "/ui/partners"),
                ("audit log", "/ui/audit"),
            ]
            ceiling = stats(await timed(session, f"http://127.0.0.1:{bare_port}/", args.rounds))
            rows.append(
                f"| {label} | bare aiohttp handler (ceiling) | {ceiling[0]:.1f} | {ceiling[1]:.1f} | 1.0x | |"
            )
            rows.append(
                f"| {label} | (14-day charts, drawn in the background each minute: {draw_ms:.0f} ms) | | | | |"
            )
            for name, path in pages:
                if args.only and not any(word in name for word in args.only):
                    continue
                before = cpu_ms()
                median, p95 = stats(await timed(session, base + path, args.rounds))
                cpu = (cpu_ms() - before) / (args.rounds + 3)
                rows.append(
                    f"| {label} | {name} | {median:.1f} | {p95:.1f} | {median / ceiling[0]:.1f}x | {cpu:.1f} |"
                )
    finally:
        await runner.cleanup()
        await bare_runner.cleanup()
    rows.append(f"| {label} | (filling {args.messages:,} messages: {fill_s:.0f} s) | | | | |")
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--partners", type=int, default=2, help="partner profiles (2: the examples)")
    parser.add_argument("--vacuum", action="store_true", help="PostgreSQL: VACUUM ANALYZE after the load")
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORD",
        help="ask only the pages whose name contains WORD (repeatable), e.g. --only partners",
    )
    args = parser.parse_args()
    rows = [
        "| database | page | median ms | p95 ms | median / ceiling | gateway CPU ms / request |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            import asyncpg

            name = f"gw_bench_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
            await admin.execute(f"CREATE DATABASE {name}")
            try:
                rows += await run(
                    "PostgreSQL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", args, Path(tmp)
                )
            finally:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                await admin.close()
        else:
            rows += await run("SQLite", None, args, Path(tmp))
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.messages:,} messages, {args.partners} partners, {args.rounds} requests per page, "
        "client and server on one event loop"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
