"""``gateway worker`` on one PostgreSQL beside ``gateway serve``: real processes.

- The worker runs the pipeline without HTTP: with ``serve`` only accepting
  (``[pipeline] workers = 0`` is not set for it here), both instances take jobs.
- A worker SIGKILLed with documents in flight: the surviving instance's heartbeat
  finds it dead within seconds and its jobs are done by the survivor, each document
  reaching the ERP under one key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes.erp_server import FakeErp
from test_reliability import Gateway, po_numbers, post_orders, wait_until, write_config
from test_reliability import erp as erp  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Worker:
    def __init__(self, tmp_path: Path, config: Path, name: str) -> None:
        self.log = (tmp_path / f"{name}.log").open("a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--config", str(config), "--log-level", "WARNING"],
            cwd=tmp_path,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def fast_heartbeat(config: Path, workers: int = 2, dead_seconds: float = 2) -> None:
    """Small batches (so one instance cannot hold every job) and a fast heartbeat.

    ``dead_seconds`` is how long a silent instance is given: a loaded test machine can
    stall a live process for a couple of seconds, and a live instance declared dead
    hands its jobs over while it still delivers them (the ERP then sees one key twice,
    which its idempotency handles but this suite counts)."""
    text = config.read_text().replace(
        "[pipeline]\nworkers = 4",
        f"[pipeline]\nworkers = {workers}\nbatch_size = 4\nheartbeat_seconds = 0.5\ninstance_dead_seconds = {dead_seconds}",
    )
    config.write_text(text)


async def _pg(url: str, sql: str) -> list[tuple[object, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def test_serve_and_worker_share_the_work(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, pg_database: tuple[str, str]
) -> None:
    url, _ = pg_database
    erp.delay_seconds = 0.05
    erp.start_in_thread()
    config = write_config(tmp_path, partners_dir, erp, url)
    fast_heartbeat(config, dead_seconds=15)  # nobody dies here: no hand-over wanted
    serve = Gateway(tmp_path, config, "serve")  # creates the schema
    worker = Worker(tmp_path, config, "worker")
    try:
        statuses = asyncio.run(post_orders([serve.url], range(150)))
        assert set(statuses.values()) == {202}
        wait_until(lambda: len(po_numbers(erp)) == 150, 90, "every order in the ERP")
        runners = asyncio.run(_pg(url, "SELECT DISTINCT locked_by FROM jobs WHERE state = 'done'"))
        instances = asyncio.run(_pg(url, "SELECT id, role FROM instances"))
    finally:
        worker.stop()
        serve.stop()
    assert erp.duplicates == {}
    assert {role for _, role in instances} == {"serve", "worker"}
    assert len(runners) == 2, f"the jobs were all run by one instance: {runners}"
    for log in ("serve.log", "worker.log"):
        assert "Traceback" not in (tmp_path / log).read_text()


def test_a_killed_workers_jobs_are_picked_up_within_seconds(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, pg_database: tuple[str, str]
) -> None:
    url, _ = pg_database
    erp.start_in_thread()
    config = write_config(tmp_path, partners_dir, erp, url)
    # serve accepts only; the doomed worker takes every job, then dies mid-delivery.
    accept_only = tmp_path / "serve.toml"
    accept_only.write_text(config.read_text().replace("[pipeline]\nworkers = 4", "[pipeline]\nworkers = 0"))
    fast_heartbeat(config)
    serve = Gateway(tmp_path, accept_only, "serve")
    doomed = Worker(tmp_path, config, "doomed")
    survivor: Worker | None = None
    try:
        erp.fail_always(0, hang_seconds=60)  # the ERP hangs: deliveries stay in flight
        statuses = asyncio.run(post_orders([serve.url], range(40)))
        assert set(statuses.values()) == {202}
        wait_until(
            lambda: (
                asyncio.run(
                    _pg(url, "SELECT count(*) FROM jobs WHERE state = 'running' AND step = 'deliver'")
                )[0][0]
                > 0
            ),
            60,
            "the worker delivering",
        )
        held = asyncio.run(_pg(url, "SELECT DISTINCT locked_by FROM jobs WHERE state = 'running'"))
        doomed.kill()
        erp.recover()
        # The requests the dead worker left hanging answer 504 after 60 s, too late to matter.
        killed_at = time.monotonic()
        survivor = Worker(tmp_path, config, "survivor")
        wait_until(lambda: len(po_numbers(erp)) == 40, 60, "every order in the ERP after the kill")
        took = time.monotonic() - killed_at
        left = asyncio.run(
            _pg(
                url,
                "SELECT count(*) FROM jobs WHERE locked_by = ANY(ARRAY[{}]) AND state = 'running'".format(
                    ",".join(f"'{h[0]}'" for h in held) or "''"
                ),
            )
        )
    finally:
        if survivor is not None:
            survivor.stop()
        serve.stop()
    assert left == [(0,)]
    # A 60 s hang and a 300 s lease would have held them for minutes; the heartbeat frees them in seconds.
    assert took < 30, f"the killed worker's jobs took {took:.1f}s to be picked up"
    assert all(len(keys) == 1 for keys in po_numbers(erp).values())
