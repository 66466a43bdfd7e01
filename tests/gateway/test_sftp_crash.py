"""Exactly once across a real crash: ``gateway serve`` polls a real sshd that
refuses deletes (``internal-sftp -P remove``), so the file is stored but stays on
the server; the gateway is killed with SIGKILL; the server is restarted allowing
deletes and the gateway started again: the file is taken, deleted, and stored once."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gwsamples import order_850, profile_toml
from sftp_peers import free_port, poll_table, running_sshd

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(tmp_path / "var"),
        GATEWAY_PARTNERS_DIR=str(tmp_path / "partners"),
        GATEWAY_SERVER__PORT=str(port),
        GATEWAY_PIPELINE__WORKERS="0",
        GATEWAY_IDENTITY__INTERCHANGE_ID="OURCOMPANY",
        GATEWAY_IDENTITY__GROUP_ID="OURCOMPANY",
        GATEWAY_API__TOKEN="crash-test-token",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stored(tmp_path: Path) -> list[str]:
    db = tmp_path / "var" / "gateway.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT transport_id FROM messages WHERE direction = 'in'")]
        except sqlite3.OperationalError:
            return []  # schema not made yet


def wait(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_sigkill_between_store_and_remote_delete_stores_once(tmp_path: Path) -> None:
    sshd_dir = tmp_path / "sshd"
    port = free_port()
    with running_sshd(sshd_dir, port=port, sftp_args="-P remove") as server:
        out = server.home / "out"
        out.mkdir()
        (server.home / "in").mkdir()
        (out / "po-7.edi").write_bytes(order_850("INITECH", 7))
        folder = tmp_path / "partners" / "initech"
        (folder / "sftp").mkdir(parents=True)
        shutil.copy(server.client_key, folder / "sftp" / "id_ed25519")
        table = poll_table(
            port=port, username=server.user, private_key="sftp/id_ed25519", host_key=server.host_key_line,
            inbound=str(out), outbound=str(server.home / "in"), settle=0.1,
        ).replace("interval_seconds = 3600", "interval_seconds = 1")  # fmt: skip
        (folder / "profile.toml").write_text(profile_toml("initech", "INITECH", "k") + table)

        gateway = serve(tmp_path, free_port())
        try:
            wait(lambda: stored(tmp_path) == ["po-7.edi"])
            time.sleep(1.5)  # more polls: each stores nothing new, each delete is refused
            assert stored(tmp_path) == ["po-7.edi"] and (out / "po-7.edi").exists()
        finally:
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=10)
            if gateway.stderr:
                gateway.stderr.close()

    with running_sshd(sshd_dir, port=port):
        gateway = serve(tmp_path, free_port())
        try:
            wait(lambda: not (out / "po-7.edi").exists())
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=20)
            if gateway.stderr:
                gateway.stderr.close()
    assert stored(tmp_path) == ["po-7.edi"]
