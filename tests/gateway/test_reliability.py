"""Reliability with real processes: ``python -m gateway serve`` subprocesses on
loopback ports, a real fake ERP (in a thread of the test process) that counts
Idempotency-Keys.

- ERP down, then back: every document arrives after recovery, once per key.
- SIGKILL in the middle of a stream of posts, restart, the client re-sends what got
  no 2xx with the same Idempotency-Key: every order reaches the ERP under exactly
  one key, and a 2xx message is never lost.
- Two gateway processes on one PostgreSQL database share inbound and outbound work:
  no document delivered twice, no control number used twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ACME_KEY, auth
from fakes.erp_server import FakeErp, free_port
from gwsamples import order_850
from test_outbound import invoice

pytestmark = pytest.mark.slow
TOKEN = "reliability-token"
SECRET = "erp-secret"


def write_config(tmp_path: Path, partners_dir: Path, erp: FakeErp, database_url: str | None = None) -> Path:
    lines = [
        f'data_dir = "{tmp_path / "var"}"',
        f'partners_dir = "{partners_dir}"',
    ]
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    lines += [
        "[identity]",
        'interchange_qualifier = "ZZ"',
        'interchange_id = "OURCOMPANY"',
        'group_id = "OURCOMPANY"',
        "[api]",
        f'token = "{TOKEN}"',
        "[pipeline]",
        "workers = 4",
        "poll_seconds = 0.05",
        "[outbound]",
        "poll_seconds = 0.05",
        "[erp]",
        'mode = "webhook"',
        f'url = "{erp.url}"',
        f'secret = "{SECRET}"',
        "timeout_seconds = 2",
        "max_attempts = 1000",
        "retry_base_seconds = 0.1",
        "retry_max_seconds = 0.5",
    ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Gateway:
    def __init__(self, tmp_path: Path, config: Path, name: str = "gw") -> None:
        self.port = free_port()
        self.log = (tmp_path / f"{name}.log").open("a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(config),
                "--port",
                str(self.port),
                "--log-level",
                "ERROR",
            ],
            cwd=tmp_path,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gateway exited {self.proc.returncode}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("gateway did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def erp() -> Iterator[FakeErp]:
    server = FakeErp(secret=SECRET)
    yield server
    server.stop_thread()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def po_numbers(erp: FakeErp) -> dict[str, list[str]]:
    """PO number -> the Idempotency-Keys it arrived under."""
    found: dict[str, list[str]] = {}
    for key, doc in dict(erp.documents).items():  # a copy: the ERP thread adds to it
        found.setdefault(doc["document"]["po_number"], []).append(key)
    return found


async def post_orders(
    urls: list[str], numbers: range, *, kill: Any = None, kill_at: int = -1
) -> dict[int, int]:
    """Post one 850 per number (round robin over ``urls``) with Idempotency-Key
    ``order-<n>``; returns number -> HTTP status (0 when the connection failed)."""
    result: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            headers = {**auth(ACME_KEY), "Idempotency-Key": f"order-{n}"}
            try:
                async with session.post(
                    f"{urls[n % len(urls)]}/partners/acme/edi",
                    data=order_850("ACME", 10_000 + n, po=f"PO-{n}"),
                    headers=headers,
                ) as resp:
                    result[n] = resp.status
            except (aiohttp.ClientError, OSError):
                result[n] = 0

        tasks = []
        for n in numbers:
            tasks.append(asyncio.create_task(one(n)))
            if n == kill_at and kill is not None:
                # Kill once some posts have been answered (on a loaded machine none may
                # have been by now), so the stream is always split in two.
                deadline = time.monotonic() + 30
                while sum(1 for s in result.values() if s) < kill_at // 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                kill()
            await asyncio.sleep(0.003)
        await asyncio.gather(*tasks)
    return result


def test_erp_down_then_back_every_document_once(tmp_path: Path, partners_dir: Path, erp: FakeErp) -> None:
    gateway = Gateway(tmp_path, write_config(tmp_path, partners_dir, erp))
    try:
        statuses = asyncio.run(post_orders([gateway.url], range(40)))
        assert set(statuses.values()) == {202}
        time.sleep(1.5)  # several retries hit the closed port
        assert erp.requests == 0
        erp.start_in_thread()
        wait_until(lambda: len(erp.accepted) == 40, 60, "every document after recovery")
        time.sleep(0.5)
    finally:
        gateway.stop()
    assert erp.duplicates == {} and erp.bad_signatures == 0
    assert sorted(po_numbers(erp)) == sorted(f"PO-{n}-1" for n in range(40))


def test_sigkill_mid_stream_restart_and_client_resend(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, database_url: str | None
) -> None:
    """On SQLite and on PostgreSQL (where an accept batch is one autocommit statement,
    decision 0021): every 2xx survives the kill and is stored and delivered once."""
    erp.start_in_thread()
    config = write_config(tmp_path, partners_dir, erp, database_url)
    gateway = Gateway(tmp_path, config)
    statuses = asyncio.run(post_orders([gateway.url], range(300), kill=gateway.kill, kill_at=120))
    gateway.stop()
    accepted = {n for n, s in statuses.items() if s == 202}
    unanswered = sorted(n for n, s in statuses.items() if s not in (200, 202))
    assert accepted and unanswered, "the kill should split the stream"
    gateway = Gateway(tmp_path, config, "gw2")
    try:
        # The client re-sends everything that got no 2xx, with the same keys.
        again = asyncio.run(post_orders([gateway.url], range(300)))
        assert set(again.values()) <= {200, 202}
        assert all(again[n] == 200 for n in accepted), "a 2xx message was stored twice"
        wait_until(lambda: len(po_numbers(erp)) == 300, 90, "every order in the ERP")
        time.sleep(0.5)
    finally:
        gateway.stop()
    by_po = po_numbers(erp)
    assert all(len(keys) == 1 for keys in by_po.values()), "an order reached the ERP under two keys"
    # A POST in flight at the kill may be repeated under its key (at-least-once); the
    # ERP drops it by Idempotency-Key. It is bounded by the deliveries in flight.
    assert sum(n - 1 for n in erp.accepted.values()) <= 4
    assert erp.bad_signatures == 0


def test_two_processes_on_postgres_share_work(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, pg_database: tuple[str, str]
) -> None:
    url, _name = pg_database
    erp.start_in_thread()
    config = write_config(tmp_path, partners_dir, erp, url)
    first = Gateway(tmp_path, config, "gw-a")  # creates the schema
    second = Gateway(tmp_path, config, "gw-b")
    try:
        statuses = asyncio.run(post_orders([first.url, second.url], range(200)))
        assert set(statuses.values()) == {202}

        async def invoices() -> list[str]:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:

                async def one(n: int) -> str:
                    target = (first, second)[n % 2].url
                    async with session.post(
                        f"{target}/api/v1/invoices", json={"partner_id": "acme", "document": invoice()}
                    ) as resp:
                        assert resp.status == 202, await resp.text()
                        return str((await resp.json())["interchange_control"])

                return await asyncio.gather(*(one(n) for n in range(60)))

        numbers = asyncio.run(invoices())
        wait_until(lambda: len(erp.accepted) == 200, 90, "every document in the ERP")
        time.sleep(0.5)
    finally:
        first.stop()
        second.stop()
    assert erp.duplicates == {}, "a document was delivered twice"
    assert len(set(numbers)) == 60, "an outbound ISA13 was used twice"
    for log in ("gw-a.log", "gw-b.log"):
        assert "Traceback" not in (tmp_path / log).read_text()

    async def used_controls() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await conn.fetch("SELECT interchange_control FROM outbox WHERE partner_id = 'acme'")
            return [r[0] for r in rows]
        finally:
            await conn.close()

    controls = asyncio.run(used_controls())
    assert len(controls) == len(set(controls)) == 260  # 200 acks + 60 invoices, one ISA13 each
