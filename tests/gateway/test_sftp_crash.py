"""Exactly once across real crashes of a ``gateway serve`` process (SIGKILL), then
a restart:

- between store and remote delete: the gateway polls a real sshd that refuses
  deletes (``internal-sftp -P remove``), so the file is stored but stays on the
  server; after the restart (deletes allowed) it is deleted and stored once;
- during a download: killed while a large file is streamed from the sshd; after the
  restart the file is downloaded again, stored once, deleted;
- during a hosted upload: a paramiko client has written part of a file into the
  drop box when the gateway dies; the partial file is never taken, and the
  partner's upload again after the restart is stored once;
- right after hosted uploads were answered: every file whose CLOSE was answered is
  stored once after the restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
from gwsamples import order_850, profile_toml
from sftp_peers import free_port, hosted_table, keygen, poll_table, running_sshd

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
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


def kill(gateway: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    gateway.send_signal(sig)
    gateway.wait(timeout=20)
    if gateway.stderr:
        gateway.stderr.close()


def poll_partner(tmp_path: Path, server: object, port: int, out: Path, interval: int = 1) -> None:
    folder = tmp_path / "partners" / "initech"
    (folder / "sftp").mkdir(parents=True, exist_ok=True)
    shutil.copy(server.client_key, folder / "sftp" / "id_ed25519")  # type: ignore[attr-defined]
    table = poll_table(
        port=port, username=server.user, private_key="sftp/id_ed25519",  # type: ignore[attr-defined]
        host_key=server.host_key_line, inbound=str(out), outbound=str(out.parent / "in"),  # type: ignore[attr-defined]
        settle=0.1,
    ).replace("interval_seconds = 3600", f"interval_seconds = {interval}")  # fmt: skip
    (folder / "profile.toml").write_text(profile_toml("initech", "INITECH", "k") + table)


def staging(tmp_path: Path) -> list[Path]:
    tmp = tmp_path / "var" / "raw" / "tmp"
    return [p for p in tmp.iterdir() if p.name.startswith("in-")] if tmp.is_dir() else []


def test_sigkill_during_a_download_stores_the_file_once_after_the_restart(tmp_path: Path) -> None:
    sshd_dir = tmp_path / "sshd"
    port = free_port()
    size = 96 * 1024 * 1024
    limits = {"GATEWAY_LIMITS__MAX_EDI_BYTES": str(2 * size)}
    with running_sshd(sshd_dir, port=port) as server:
        out = server.home / "out"
        out.mkdir()
        (server.home / "in").mkdir()
        big = out / "big.edi"
        with big.open("wb") as fh:
            block = order_850("INITECH", 8) * 64
            while fh.tell() < size:
                fh.write(block)
        size = big.stat().st_size
        poll_partner(tmp_path, server, port, out)
        gateway = serve(tmp_path, free_port(), **limits)
        try:
            wait(lambda: any(p.stat().st_size > 0 for p in staging(tmp_path)))  # downloading
            assert stored(tmp_path) == [] and big.exists()
        finally:
            kill(gateway)
        gateway = serve(tmp_path, free_port(), **limits)
        try:
            wait(lambda: not big.exists(), seconds=120)
        finally:
            kill(gateway, signal.SIGTERM)
    assert stored(tmp_path) == ["big.edi"]
    with sqlite3.connect(tmp_path / "var" / "gateway.db") as conn:
        assert conn.execute("SELECT raw_size FROM messages").fetchall() == [(size,)]
    assert staging(tmp_path) == []  # the killed download's staging file was removed at the restart


def wait_port(port: int) -> None:
    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    wait(listening)


def login(port: int, key: Path) -> paramiko.SFTPClient:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username="initech", pkey=paramiko.Ed25519Key.from_private_key_file(str(key)))
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


def hosted_initech(tmp_path: Path, **sftp: str) -> tuple[Path, int, dict[str, str], Path]:
    """Partner initech, hosted, with a fresh key: (its private key, the drop box's
    free port, the environment serving it there with the ``[sftp]`` settings
    ``sftp``, initech's folder in the drop box)."""
    key, line = keygen(tmp_path / "keys", "initech")
    folder = tmp_path / "partners" / "initech"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text(profile_toml("initech", "INITECH", "k") + hosted_table(line))
    port = free_port()
    env = {"GATEWAY_SFTP__HOST": "127.0.0.1", "GATEWAY_SFTP__PORT": str(port)}
    env.update({f"GATEWAY_SFTP__{name}": value for name, value in sftp.items()})
    return key, port, env, tmp_path / "var" / "sftp" / "initech"


def test_sigkill_during_a_hosted_upload_takes_no_partial_file(tmp_path: Path) -> None:
    key, sftp_port, env, box = hosted_initech(tmp_path, IDLE_TIMEOUT_SECONDS="1")
    document = order_850("INITECH", 11, sets=40)
    half = document[: len(document) // 2]

    gateway = serve(tmp_path, free_port(), **env)
    try:
        wait_port(sftp_port)
        client = login(sftp_port, key)
        fh = client.open("/inbound/po-11.edi", "wb")
        fh.write(half)
        fh.flush()
        # The half is on the server, in the hidden upload folder, not in /inbound.
        wait(lambda: [p.stat().st_size for p in (box / ".incoming").iterdir()] == [len(half)])
        assert not any((box / "inbound").iterdir())
    finally:
        kill(gateway)
    client.get_channel().get_transport().close()  # type: ignore[union-attr]

    gateway = serve(tmp_path, free_port(), **env)
    try:
        wait_port(sftp_port)
        # The sweep (every 5 s) finds nothing to take and drops the dead upload.
        wait(lambda: not any((box / ".incoming").iterdir()), seconds=20)
        assert stored(tmp_path) == [] and not any((box / "inbound").iterdir())
        client = login(sftp_port, key)
        with client.open("/inbound/po-11.edi", "wb") as fh:
            fh.write(document)
        wait(lambda: not any((box / "inbound").iterdir()))
        client.get_channel().get_transport().close()  # type: ignore[union-attr]
    finally:
        kill(gateway, signal.SIGTERM)
    assert stored(tmp_path) == ["po-11.edi"]


def test_sigkill_right_after_the_close_answers_loses_no_acknowledged_file(tmp_path: Path) -> None:
    """Every CLOSE answered OK is a file the gateway has (synced in /inbound or
    stored): killed the moment the last one is answered, the restart's sweep takes
    what was left in /inbound, and each file is stored exactly once."""
    key, sftp_port, env, box = hosted_initech(tmp_path, SYNC_UPLOADS="true")
    names = [f"po-{n}.edi" for n in range(1, 41)]

    gateway = serve(tmp_path, free_port(), **env)
    try:
        wait_port(sftp_port)
        client = login(sftp_port, key)
        for n, name in enumerate(names, start=1):
            with client.open(f"/inbound/{name}", "wb") as fh:  # returns once the CLOSE is answered
                fh.write(order_850("INITECH", n))
    finally:
        kill(gateway)
    client.get_channel().get_transport().close()  # type: ignore[union-attr]

    gateway = serve(tmp_path, free_port(), **env)
    try:
        wait_port(sftp_port)
        wait(lambda: not any((box / "inbound").iterdir()) and len(stored(tmp_path)) == len(names))
    finally:
        kill(gateway, signal.SIGTERM)
    assert sorted(stored(tmp_path)) == sorted(names)
