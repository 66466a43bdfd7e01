"""The drop box runs in a process of its own (decision 0017): killed mid-upload, it
is started again on the same port, every file whose CLOSE was answered is stored
exactly once, the cut upload never; profile reloads reach it; it dies with us."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest
from conftest import ACME_KEY
from gwsamples import order_850, profile_toml
from sftp_peers import hosted_table, keygen, need_openssh
from test_sftp_hosted import box, gone_from_inbound, messages, start

from gateway.app import GATEWAY

pytestmark = pytest.mark.slow


def connect(port: int, key: Path, user: str = "acme") -> paramiko.SFTPClient:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(str(key)))
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.fixture
def acme(tmp_path: Path) -> tuple[Path, Path]:
    need_openssh()
    key, line = keygen(tmp_path / "keys", "acme")
    root = tmp_path / "partners"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "profile.toml").write_text(profile_toml("acme", "ACME", ACME_KEY) + hosted_table(line))
    return root, key


async def test_a_drop_box_process_killed_mid_upload_restarts_and_loses_or_repeats_nothing(
    aiohttp_client: Any, tmp_path: Path, acme: tuple[Path, Path]
) -> None:
    root, key = acme
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    port, first = gw.sftp_server.port, gw.sftp_server.pid

    def upload_then_cut() -> None:
        sftp = connect(port, key)
        for n in range(1, 21):  # each CLOSE answered: durable in /inbound, ours to store
            with sftp.open(f"/inbound/po-{n}.edi", "wb") as fh:
                fh.write(order_850("ACME", n))
        cut = sftp.open("/inbound/po-99.edi", "wb")
        cut.write(order_850("ACME", 99)[:100])
        cut.flush()
        os.kill(first, signal.SIGKILL)  # mid-upload, files of the last group maybe not yet told
        time.sleep(0.2)
        sftp.get_channel().get_transport().close()  # type: ignore[union-attr]

    await asyncio.to_thread(upload_then_cut)
    for _ in range(200):
        if gw.sftp_server.restarts == 1 and gw.sftp_server.pid != first and running(gw.sftp_server.pid):
            break
        await asyncio.sleep(0.05)
    assert gw.sftp_server.restarts == 1 and running(gw.sftp_server.pid) and not running(first)
    assert gw.metrics.sftp_drop_box_restarts == 1

    def upload_again() -> None:  # the same port, served by the new process
        sftp = connect(port, key)
        with sftp.open("/inbound/po-21.edi", "wb") as fh:
            fh.write(order_850("ACME", 21))
        sftp.close()

    await asyncio.to_thread(upload_again)
    await gone_from_inbound(tmp_path, "acme")
    names = sorted(m.transport_id for m in await messages(client))
    assert names == sorted(f"po-{n}.edi" for n in range(1, 22))  # each once; po-99 (cut) never
    assert not (box(tmp_path, "acme") / "inbound" / "po-99.edi").exists()
    text = await (
        await client.get("/metrics", headers={"Authorization": "Bearer internal-test-token"})
    ).text()
    assert "gateway_sftp_drop_box_restarts_total 1" in text, text[-2000:]


async def test_a_profile_reload_reaches_the_drop_box_process(
    aiohttp_client: Any, tmp_path: Path, acme: tuple[Path, Path]
) -> None:
    root, old_key = acme
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    new_key, line = keygen(tmp_path / "keys2", "acme")
    (root / "acme" / "profile.toml").write_text(profile_toml("acme", "ACME", ACME_KEY) + hosted_table(line))
    await gw.reload_partners()

    def logins() -> tuple[bool, bool]:
        outcomes = []
        for key in (old_key, new_key):
            try:
                connect(gw.sftp_server.port, key).close()
                outcomes.append(True)
            except paramiko.AuthenticationException:
                outcomes.append(False)
        return outcomes[0], outcomes[1]

    assert await asyncio.to_thread(logins) == (False, True)


async def test_the_drop_box_process_exits_when_the_gateway_stops(
    aiohttp_client: Any, tmp_path: Path, acme: tuple[Path, Path]
) -> None:
    root, _ = acme
    client = await start(aiohttp_client, tmp_path, root)
    pid = client.app[GATEWAY].sftp_server.pid
    assert running(pid)
    await client.close()
    assert not running(pid)


async def test_sigterm_to_the_drop_box_process_leaves_its_stop_to_the_gateway(
    aiohttp_client: Any, tmp_path: Path, acme: tuple[Path, Path]
) -> None:
    """A service manager signals every process of the service at once (systemd's
    control group): the drop box must not die before the serve process has read what
    it told (no restart, no error); the gateway's stop ends it (end of file)."""
    root, key = acme
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    pid = gw.sftp_server.pid
    await gw.sftp_server.settled()  # started: its signal handlers are set
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.5)
    assert running(pid) and gw.sftp_server.restarts == 0

    def upload() -> None:
        sftp = connect(gw.sftp_server.port, key)
        with sftp.open("/inbound/po-1.edi", "wb") as fh:
            fh.write(order_850("ACME", 1))
        sftp.close()

    await asyncio.to_thread(upload)
    await gone_from_inbound(tmp_path, "acme")
    await client.close()
    assert not running(pid)


async def test_a_drop_box_process_that_cannot_start_is_retried_with_backoff_not_counted_as_deaths(
    aiohttp_client: Any,
    tmp_path: Path,
    acme: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One death is one restart counted and one line; the starts that fail after it
    (no Python to start: here a missing interpreter) are logged once each and retried
    at the backoff's pace, and the port is served again once a start works."""
    import sys

    root, key = acme
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    first, python = gw.sftp_server.pid, sys.executable
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    os.kill(first, signal.SIGKILL)

    def failed() -> int:
        return sum("could not start the drop-box process" in r.getMessage() for r in caplog.records)

    for _ in range(80):  # 0.2 s, a failed start, 1 s, another failed start (the next: 5 s later)
        if failed() >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert gw.sftp_server.restarts == 1 and gw.metrics.sftp_drop_box_restarts == 1
    assert failed() == 2
    assert sum("drop-box process exited" in r.getMessage() for r in caplog.records) == 1
    monkeypatch.setattr(sys, "executable", python)
    for _ in range(150):  # the next try is 5 s after the last failure
        if gw.sftp_server.pid != first and running(gw.sftp_server.pid):
            break
        await asyncio.sleep(0.05)
    await asyncio.to_thread(lambda: connect(gw.sftp_server.port, key).close())
    assert gw.sftp_server.restarts == 1
