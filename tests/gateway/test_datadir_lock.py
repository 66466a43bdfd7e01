"""The data directory: private modes (dir 0700, raw payloads and the SQLite files
0600) and the SQLite data dir lock, down to two real ``gateway serve`` processes."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850
from test_service_process import free_port, start, stop, wait_ready

from gateway import retention
from gateway.app import RAWSTORE, build_app
from gateway.config import ensure_api_token
from gateway.rawstore import RawStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_dir_raw_files_and_database_are_private(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    old = os.umask(0o022)  # the usual umask, whatever the test runner's
    try:
        settings = make_settings(
            tmp_path, partners_dir, None, storage={"prune_interval_minutes": 0}, api={"token": None}
        )
        ensure_api_token(
            settings
        )  # what `gateway serve` does first: creates the data dir with the umask's mode
        client = await aiohttp_client(build_app(settings))
        small = await client.post("/partners/acme/edi", data=order_850("ACME", 1), headers=auth(ACME_KEY))
        assert small.status == 202
        store = client.app[RAWSTORE]
        big = await store.write_bytes(
            b"ISA*" + b"9" * (store.spill_bytes + 10), limit=1 << 20
        )  # via a temp file
    finally:
        os.umask(old)
    var = tmp_path / "var"
    assert mode(var) == 0o700
    for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm", "gateway.lock", "api-token"):
        assert mode(var / name) == 0o600, name
    payloads = list((var / "raw").glob("??/*"))
    assert payloads == [big.path]  # the small one is a database row (decision 0025)
    assert all(mode(p) == 0o600 for p in payloads)
    assert all(mode(d) == 0o700 for d in [var / "raw", *(var / "raw").iterdir()] if d.name != "store-id")
    assert mode(var / "raw" / "store-id") == 0o600  # the raw directory's id (gateway.raw_journal)


def test_a_data_dir_in_use_is_not_chmodded_but_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    var = tmp_path / "var"
    (var / "raw").mkdir(parents=True)
    os.chmod(var, 0o750)
    settings = make_settings(tmp_path, tmp_path / "partners")
    with (
        caplog.at_level(logging.WARNING, logger="gateway.retention"),
        retention.DataDirLock.acquire(settings),
    ):
        pass
    assert mode(var) == 0o750
    assert "open to other users (mode 0750)" in caplog.text
    assert mode(var / "gateway.db") == 0o600  # created before SQLite could


def test_lock_is_exclusive_on_sqlite_only(tmp_path: Path, partners_dir: Path) -> None:
    settings = make_settings(tmp_path, partners_dir)
    with retention.DataDirLock.acquire(settings):
        assert (tmp_path / "var" / "gateway.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(retention.DataDirLocked) as caught:
            retention.DataDirLock.acquire(settings)
        assert caught.value.pid == os.getpid()
        assert str(caught.value) == (
            f"another gateway process (pid {os.getpid()}) is using data dir {(tmp_path / 'var').resolve()}"
        )
    retention.DataDirLock.acquire(settings).release()  # released with the first
    postgres = make_settings(tmp_path, partners_dir, "postgresql+asyncpg://gw@127.0.0.1/gw")
    with retention.DataDirLock.acquire(postgres), retention.DataDirLock.acquire(postgres):
        pass  # several processes share a PostgreSQL deployment


def test_raw_store_creates_private_directories_itself(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "deep" / "raw")
    store.open_store()
    store.close()
    assert all(mode(tmp_path / "deep" / "raw" / d) == 0o700 for d in ("", "tmp", "journal", "pruning"))


@pytest.mark.slow
def test_a_second_serve_on_the_same_data_dir_exits_2_and_the_first_keeps_serving(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    first = start(tmp_path, first_port)
    try:
        wait_ready(first_port, first)
        second = start(tmp_path, second_port)
        try:
            _, err = second.communicate(timeout=30)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
        data_dir = (tmp_path / "var").resolve()
        assert second.returncode == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == [f"gateway: another gateway process (pid {first.pid}) is using data dir {data_dir}"]

        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        cli = [sys.executable, "-m", "gateway"]
        prune = subprocess.run(
            [*cli, "prune"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert prune.returncode == 2 and f"(pid {first.pid}) is using data dir {data_dir}" in prune.stderr
        dry = subprocess.run(
            [*cli, "prune", "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert dry.returncode == 0 and "dry run: nothing deleted" in dry.stdout, dry.stderr

        assert first.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{first_port}/readyz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        stop(first)
    assert first.returncode == 0
