"""The real ``gateway serve`` process: start-up output, refusing an unknown schema,
surviving SIGKILL (every 202 is processed after restart), and 503 while the
database is unreachable."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ACME_KEY, auth, make_settings
from gwsamples import order_850, profile_toml

from gateway.app import build_app
from gateway.config import API_TOKEN_FILE

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    tmp_path: Path,
    port: int,
    *,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    args: list[str] | None = None,
    allow_empty: bool | None = None,
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    if allow_empty is None:  # default: only where the test gives the process no partner at all
        allow_empty = "GATEWAY_PARTNERS_DIR" not in (extra_env or {}) and not (tmp_path / "partners").is_dir()
    args = [*(args or []), *(["--allow-empty"] if allow_empty else [])]
    env.update(
        GATEWAY_SERVER__PORT=str(port),
        GATEWAY_PIPELINE__WORKERS=str(workers),
        GATEWAY_PIPELINE__POLL_SECONDS="0.1",
        # the samples are addressed to ZZ/OURCOMPANY (ISA08): that is who we are here
        GATEWAY_IDENTITY__INTERCHANGE_ID="OURCOMPANY",
        GATEWAY_IDENTITY__GROUP_ID="OURCOMPANY",
        **(extra_env or {}),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.service_cli", "serve", "--log-level", "WARNING", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"gateway exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("gateway did not start listening")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.communicate()


def test_serve_on_embedded_defaults_prints_where_and_token_once(tmp_path: Path) -> None:
    (tmp_path / "partners" / "acme").mkdir(parents=True)
    (tmp_path / "partners" / "acme" / "profile.toml").write_text(profile_toml("acme", "ACME", ACME_KEY))
    port = free_port()
    proc = start(tmp_path, port)  # no config file at all: ./var, ./partners
    try:
        wait_ready(port, proc)
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["partners"]["loaded"] == 1
    finally:
        out, _ = stop(proc)
    assert f"data in {tmp_path / 'var'}, partners from {tmp_path / 'partners'}" in out
    token_file = tmp_path / "var" / API_TOKEN_FILE
    token = token_file.read_text().strip()
    assert (token_file.stat().st_mode & 0o777) == 0o600
    assert f"listening on http://127.0.0.1:{port}" in out
    assert f"Bearer {token}" in out
    assert (tmp_path / "var" / "gateway.db").is_file()
    proc = start(tmp_path, port)  # second start: the token is not shown again
    try:
        wait_ready(port, proc)
    finally:
        out, _ = stop(proc)
    assert token not in out and API_TOKEN_FILE in out


def test_start_and_stop_are_logged_without_alembic_chatter(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, port, args=["--log-level", "INFO"])  # the last --log-level wins
    try:
        wait_ready(port, proc)
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert "Running upgrade" in err and "Context impl" not in err and "Will assume" not in err
    assert err.rstrip().endswith("INFO gateway.bootstrap: gateway serve stopped")


def test_a_taken_port_exits_4_before_touching_the_data_dir(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(tmp_path, port)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert (
        err
        == f"gateway: cannot listen on 127.0.0.1:{port}: address already in use (another process listens there; choose another with --port or server.port)\n"
    )
    assert out == "" and not (tmp_path / "var").exists()


@pytest.mark.parametrize("empty", [False, True])
def test_no_partners_is_refused_before_touching_the_data_dir_unless_allowed(
    tmp_path: Path, empty: bool
) -> None:
    if empty:
        (tmp_path / "partners").mkdir()
    proc = start(tmp_path, free_port(), allow_empty=False)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    why = "has no partner folders" if empty else "does not exist"
    assert err.startswith(
        f"gateway: partners directory {tmp_path / 'partners'} {why}: no partner could connect."
    )
    assert "--allow-empty" in err and len(err.splitlines()) == 1
    assert out == "" and not (tmp_path / "var").exists()
    port = free_port()
    proc = start(tmp_path, port, allow_empty=True)
    try:
        wait_ready(port, proc)
    finally:
        out, _ = stop(proc)
    assert f"partners from {tmp_path / 'partners'}" in out


def test_unknown_schema_revision_is_refused(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, port)
    wait_ready(port, proc)
    stop(proc)
    with sqlite3.connect(tmp_path / "var" / "gateway.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed9999'")
    proc = start(tmp_path, port)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "f00dfeed9999" in err and "does not know" in err


def test_db_upgrade_and_current_commands(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    run = [sys.executable, "-m", "gateway.service_cli", "db"]
    up = subprocess.run([*run, "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 0 and "upgraded from empty" in up.stdout
    again = subprocess.run(
        [*run, "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert "already at revision" in again.stdout
    current = subprocess.run(
        [*run, "current"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert current.returncode == 0 and "(latest)" in current.stdout


def test_sigkill_mid_stream_then_restart_processes_every_accepted_message(
    tmp_path: Path, partners_dir: Path
) -> None:
    port = free_port()
    env = {"GATEWAY_PARTNERS_DIR": str(partners_dir)}
    proc = start(tmp_path, port, workers=1, extra_env=env)
    wait_ready(port, proc)
    accepted: list[str] = []

    async def stream() -> None:
        async with aiohttp.ClientSession() as session:

            async def one(n: int) -> None:
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/partners/acme/edi",
                        data=order_850("ACME", 5000 + n),
                        headers=auth(ACME_KEY),
                    ) as resp:
                        if resp.status == 202:
                            accepted.append((await resp.json())["message_id"])
                except (aiohttp.ClientError, OSError):
                    pass  # the process died under us: not acknowledged, the partner would retry

            tasks = []
            for n in range(400):
                tasks.append(asyncio.create_task(one(n)))
                if n == 150:
                    proc.send_signal(signal.SIGKILL)
                await asyncio.sleep(0.002)
            await asyncio.gather(*tasks)

    asyncio.run(stream())
    proc.communicate(timeout=10)  # reaps it and closes its pipes
    assert accepted, "nothing was accepted before the kill"

    proc = start(tmp_path, port, workers=2, extra_env=env)
    try:
        wait_ready(port, proc)
        deadline = time.monotonic() + 60
        while True:
            # The default ERP mode is the feed: a message is done for the gateway once
            # every one of its documents waits in the feed for the ERP to confirm.
            with sqlite3.connect(tmp_path / "var" / "gateway.db") as conn:
                rows = dict(conn.execute("SELECT id, status FROM messages").fetchall())
                in_feed = {
                    message_id
                    for message_id, total, ready in conn.execute(
                        "SELECT message_id, COUNT(*), SUM(status IN ('available', 'delivered'))"
                        " FROM documents GROUP BY message_id"
                    )
                    if total and total == ready
                }
            pending = [m for m in accepted if rows.get(m) != "acknowledged" and m not in in_feed]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        stop(proc)
    missing = [m for m in accepted if m not in rows]
    assert missing == [], "a message that got a 202 is not in the database"
    assert pending == [], (
        f"{len(pending)} accepted message(s) never finished: {[rows.get(m) for m in pending[:5]]}"
    )
    # Every stored raw file is whole: it hashes to its name.
    import hashlib

    for file in (tmp_path / "var" / "raw").glob("??/*"):
        assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name


async def test_database_outage_is_503_and_recovers(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, pg_database: tuple[str, str]
) -> None:
    from conftest import _pg

    url, name = pg_database
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir, url)))
    assert (
        await client.post("/partners/acme/edi", data=order_850("ACME", 1), headers=auth(ACME_KEY))
    ).status == 202
    await asyncio.to_thread(_pg, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    await asyncio.to_thread(
        _pg, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )
    try:
        resp = await client.post("/partners/acme/edi", data=order_850("ACME", 2), headers=auth(ACME_KEY))
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "storage_unavailable"
        assert resp.headers["Retry-After"]
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
    finally:
        await asyncio.to_thread(_pg, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    resp = await client.post("/partners/acme/edi", data=order_850("ACME", 2), headers=auth(ACME_KEY))
    assert resp.status == 202
