"""Polling a partner's server: a real OpenSSH sshd on a loopback port. Files are
taken once and deleted remotely; a crash between storing and the remote delete
does not process a file twice; a server with another host key is refused."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest
from conftest import make_settings
from gwsamples import order_850, profile_toml
from intake_rig import running_intake
from sftp_peers import Sshd, keygen, poll_table, running_sshd
from sqlalchemy import select

from gateway.app import DATABASE, DELIVERY, GATEWAY, PIPELINE, Overrides, build_app
from gateway.db.models import Message, OutboxItem, storable_identifier
from gateway.transports import sftp_jail as jail
from gateway.transports.sftp_poll import Poller, PollReport


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with running_sshd(tmp_path / "sshd") as server:
        (server.home / "out").mkdir()
        (server.home / "in").mkdir()
        yield server


def partner_folder(
    tmp_path: Path, sshd: Sshd, *, host_key: str | None = None, archive: str | None = None
) -> Path:
    root = tmp_path / "partners"
    folder = root / "initech"
    (folder / "sftp").mkdir(parents=True, exist_ok=True)
    shutil.copy(sshd.client_key, folder / "sftp" / "id_ed25519")
    table = poll_table(
        port=sshd.port, username=sshd.user, private_key="sftp/id_ed25519",
        host_key=host_key or sshd.host_key_line,
        inbound=str(sshd.home / "out"), outbound=str(sshd.home / "in"), archive=archive,
    )  # fmt: skip
    (folder / "profile.toml").write_text(profile_toml("initech", "INITECH", "initech-key") + table)
    return root


async def start(
    aiohttp_client: Any,
    tmp_path: Path,
    partners: Path,
    overrides: Overrides | None = None,
    database_url: str | None = None,
) -> Any:
    settings = make_settings(tmp_path, partners, database_url, outbound={"workers": 0})
    return await aiohttp_client(build_app(settings, overrides=overrides or Overrides()))


async def inbound(client: Any) -> list[Any]:
    async with client.app[DATABASE].read() as conn:
        rows = await conn.execute(
            select(Message.transport_id, Message.channel, Message.status)
            .where(Message.direction == "in")
            .order_by(Message.transport_id)
        )
        return list(rows.all())


async def wait_until(check: Any, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_scheduled_poll_takes_stable_files_once_and_deletes_them(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd, database_url: str | None
) -> None:
    out = sshd.home / "out"
    (out / "po-1.edi").write_bytes(order_850("INITECH", 1))
    (out / "po-2.edi").write_bytes(order_850("INITECH", 2))
    (out / ".uploading.edi").write_bytes(b"partial")  # hidden: never taken
    client = await start(aiohttp_client, tmp_path, partner_folder(tmp_path, sshd), database_url=database_url)
    gw = client.app[GATEWAY]
    assert "sftp-poll:initech" in gw.scheduler.tasks
    await wait_until(lambda: not (out / "po-1.edi").exists() and not (out / "po-2.edi").exists())
    await wait_until(lambda: not any(t.get_name().startswith("schedule:sftp") for t in gw.scheduler._running))
    assert [(m.transport_id, m.channel) for m in await inbound(client)] == [
        ("po-1.edi", "sftp"),
        ("po-2.edi", "sftp"),
    ]
    assert (out / ".uploading.edi").exists()
    await client.app[PIPELINE].run_until_idle()
    assert {m.status for m in await inbound(client)} <= {
        "delivered",
        "translated",
        "acknowledged",
        "available",
    }
    # Nothing left: a second poll takes nothing.
    report = await gw.sftp_poller.poll("initech")
    assert report.taken == [] and len(await inbound(client)) == 2


async def test_a_crash_between_store_and_remote_delete_processes_the_file_once(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    out = sshd.home / "out"
    (out / "po-9.edi").write_bytes(order_850("INITECH", 9))
    partners = partner_folder(tmp_path, sshd)

    async def crash(partner_id: str, name: str) -> None:
        raise RuntimeError("simulated crash after the durable accept")

    first = await start(aiohttp_client, tmp_path, partners, Overrides(extra={"sftp_after_store": crash}))
    gw = first.app[GATEWAY]
    with pytest.raises(RuntimeError):
        await gw.sftp_poller.poll("initech")
    assert (out / "po-9.edi").exists()  # stored, never deleted
    assert len(await inbound(first)) == 1
    await first.close()

    second = await start(aiohttp_client, tmp_path, partners)
    # The scheduled poll may or may not be due again (its interval is an hour): poll now.
    await second.app[GATEWAY].sftp_poller.poll("initech")
    assert not (out / "po-9.edi").exists()
    await second.app[PIPELINE].run_until_idle()
    [msg] = await inbound(second)
    assert msg.transport_id == "po-9.edi"


async def test_taken_files_are_moved_to_the_archive_path_and_an_archived_name_is_never_replaced(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    out, archive = sshd.home / "out", sshd.home / "out" / "done"
    archive.mkdir()
    (archive / "po-1.edi").write_bytes(b"taken last week")  # the partner reuses names
    (out / "po-1.edi").write_bytes(order_850("INITECH", 1))
    (out / "po-2.edi").write_bytes(order_850("INITECH", 2))
    partners = partner_folder(tmp_path, sshd, archive=str(archive))
    client = await start(aiohttp_client, tmp_path, partners)
    report = await client.app[GATEWAY].sftp_poller.poll("initech")
    assert report.taken == ["po-1.edi", "po-2.edi"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == []
    assert (archive / "po-2.edi").read_bytes() == order_850("INITECH", 2)
    assert (archive / "po-1.edi").read_bytes() == b"taken last week"  # not replaced
    [renamed] = [p for p in archive.iterdir() if p.name.startswith("po-1.edi.")]
    assert renamed.read_bytes() == order_850("INITECH", 1) and renamed.name.endswith("Z")
    assert [m.transport_id for m in await inbound(client)] == ["po-1.edi", "po-2.edi"]
    # the archive folder inside the inbound folder is not a file to take
    assert (await client.app[GATEWAY].sftp_poller.poll("initech")).taken == []


async def test_a_server_with_another_host_key_is_refused(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    out = sshd.home / "out"
    (out / "po-3.edi").write_bytes(order_850("INITECH", 3))
    _, other = keygen(tmp_path / "other", "not_the_server")
    client = await start(aiohttp_client, tmp_path, partner_folder(tmp_path, sshd, host_key=other))
    gw = client.app[GATEWAY]
    with caplog.at_level(logging.WARNING, logger="gateway.transports.sftp_poll"):
        report = await gw.sftp_poller.poll("initech")
    assert report.refused is not None and "host key refused" in report.refused
    assert any("initech" in r.getMessage() and "host key refused" in r.getMessage() for r in caplog.records)
    assert gw.metrics.sftp_host_key_refused["initech"] >= 1
    assert (out / "po-3.edi").exists() and await inbound(client) == []
    from test_outbound import TOKEN

    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_sftp_host_key_refused_total{partner="initech"}' in metrics


async def test_outbound_files_are_uploaded_then_renamed(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    from test_outbound import TOKEN, invoice

    client = await start(aiohttp_client, tmp_path, partner_folder(tmp_path, sshd))
    resp = await client.post(
        "/api/v1/invoices", json={"partner_id": "initech", "document": invoice()}, headers=TOKEN
    )
    assert resp.status == 202, await resp.text()
    await client.app[DELIVERY].run_until_idle()
    [uploaded] = list((sshd.home / "in").iterdir())
    assert uploaded.name.startswith("810_") and uploaded.read_bytes().startswith(b"ISA*")
    async with client.app[DATABASE].read() as conn:
        [status] = (
            (await conn.execute(select(OutboxItem.status).where(OutboxItem.partner_id == "initech")))
            .scalars()
            .all()
        )
    assert status == "sent"


async def test_outbound_to_a_server_with_another_host_key_is_not_sent(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    from test_outbound import TOKEN, invoice

    _, other = keygen(tmp_path / "other", "not_the_server")
    client = await start(aiohttp_client, tmp_path, partner_folder(tmp_path, sshd, host_key=other))
    await client.post(
        "/api/v1/invoices", json={"partner_id": "initech", "document": invoice()}, headers=TOKEN
    )
    await client.app[DELIVERY].run_until_idle()
    assert list((sshd.home / "in").iterdir()) == []
    async with client.app[DATABASE].read() as conn:
        [status] = (
            (await conn.execute(select(OutboxItem.status).where(OutboxItem.partner_id == "initech")))
            .scalars()
            .all()
        )
    assert status == "pending"  # retried later; dead-lettered by max_attempts if nobody fixes the profile


async def test_poll_tasks_follow_profile_reloads(aiohttp_client: Any, tmp_path: Path, sshd: Sshd) -> None:
    partners = partner_folder(tmp_path, sshd)
    client = await start(aiohttp_client, tmp_path, partners)
    gw = client.app[GATEWAY]
    assert "sftp-poll:initech" in gw.scheduler.tasks
    (partners / "initech" / "profile.toml").write_text(profile_toml("initech", "INITECH", "initech-key"))
    await gw.reload_partners()
    assert "sftp-poll:initech" not in gw.scheduler.tasks
    partner_folder(tmp_path, sshd)
    await gw.reload_partners()
    assert gw.scheduler.tasks["sftp-poll:initech"].interval == 3600


async def test_outbound_to_a_folder_the_server_refuses_is_dead_lettered(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    from test_outbound import TOKEN, invoice

    partners = partner_folder(tmp_path, sshd)
    profile = partners / "initech" / "profile.toml"
    profile.write_text(profile.read_text().replace(str(sshd.home / "in"), str(sshd.home / "missing")))
    client = await start(aiohttp_client, tmp_path, partners)
    await client.post(
        "/api/v1/invoices", json={"partner_id": "initech", "document": invoice()}, headers=TOKEN
    )
    await client.app[DELIVERY].run_until_idle()
    async with client.app[DATABASE].read() as conn:
        [status] = (
            (await conn.execute(select(OutboxItem.status).where(OutboxItem.partner_id == "initech")))
            .scalars()
            .all()
        )
    assert status == "failed"  # permanent: the server refuses that path as configured


def _peak_rss_reset() -> None:
    # Linux: writing 5 resets this process's peak RSS (VmHWM) to its current RSS.
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_a_large_file_is_streamed_to_the_raw_store_with_bounded_memory(
    aiohttp_client: Any, tmp_path: Path, sshd: Sshd
) -> None:
    size = 96 * 1024 * 1024
    hidden = sshd.home / "out" / ".big.edi"  # hidden until the poll below: no scheduled poll takes it
    with hidden.open("wb") as fh:  # not sparse: distinct blocks, so nothing is shared by accident
        block = bytes(range(256)) * 4096
        for i in range(size // len(block)):
            fh.write(i.to_bytes(8, "big") + block[8:])
    settings = make_settings(
        tmp_path, partner_folder(tmp_path, sshd), outbound={"workers": 0}, limits={"max_edi_bytes": 2 * size}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    gw = client.app[GATEWAY]
    await gw.scheduler.stop()  # this test polls by itself
    big = hidden.rename(hidden.with_name("big.edi"))
    before = _rss_bytes()
    _peak_rss_reset()
    report = await gw.sftp_poller.poll("initech")
    growth = _peak_rss_bytes() - before
    assert report.taken == ["big.edi"] and not big.exists()
    [msg] = await inbound(client)
    assert msg.transport_id == "big.edi"
    # Whole-file buffering would grow the peak by the file's size at least.
    assert growth < size // 4, f"peak RSS grew by {growth} bytes for a {size}-byte file"
    async with client.app[DATABASE].read() as conn:
        row = (await conn.execute(select(Message.raw_sha256, Message.raw_size))).one()
    assert row.raw_size == size


async def test_the_poller_against_an_in_process_paramiko_server(aiohttp_client: Any, tmp_path: Path) -> None:
    """The other peer: our own drop box (paramiko, in this process). Partner globex is
    polled on it with acme's login: the file we left in acme's /outbound is taken,
    stored as globex's, and deleted on the server; the pinned key is the box's."""
    from conftest import ACME_KEY, GLOBEX_KEY
    from sftp_peers import free_port, hosted_table

    from gateway.transports.sftp_keys import ensure_host_key

    key, line = keygen(tmp_path / "keys", "acme")
    host_key = ensure_host_key(tmp_path / "var" / "sftp")  # the drop box keeps this key
    port = free_port()
    root = tmp_path / "partners"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "profile.toml").write_text(profile_toml("acme", "ACME", ACME_KEY) + hosted_table(line))
    (root / "globex" / "sftp").mkdir(parents=True)
    shutil.copy(key, root / "globex" / "sftp" / "id_ed25519")
    table = poll_table(
        port=port, username="acme", private_key="sftp/id_ed25519",
        host_key=f"{host_key.get_name()} {host_key.get_base64()}", inbound="/outbound", outbound="/inbound",
    )  # fmt: skip
    (root / "globex" / "profile.toml").write_text(profile_toml("globex", "GLOBEX", GLOBEX_KEY) + table)
    outbound = tmp_path / "var" / "sftp" / "acme" / "outbound"
    outbound.mkdir(parents=True)
    (outbound / "po-5.edi").write_bytes(order_850("GLOBEX", 5))

    settings = make_settings(
        tmp_path, root, sftp={"host": "127.0.0.1", "port": port}, outbound={"workers": 0}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    gw = client.app[GATEWAY]
    await wait_until(lambda: not (outbound / "po-5.edi").exists())  # the scheduled poll at start, or ours
    report = await gw.sftp_poller.poll("globex")
    assert report.refused is None and report.taken == []
    async with client.app[DATABASE].read() as conn:
        rows = (await conn.execute(select(Message.partner_id, Message.transport_id, Message.channel))).all()
    assert [tuple(r) for r in rows] == [("globex", "po-5.edi", "sftp")]


class _ListedServer:
    """A partner's server as paramiko's client sees it, in memory: names a Linux
    sshd cannot hold (over 255 bytes, a NUL) are what another vendor's server may list."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def listdir_attr(self, path: str) -> list[paramiko.SFTPAttributes]:
        found = []
        for name, body in self.files.items():
            attr = paramiko.SFTPAttributes()
            attr.filename, attr.st_mode, attr.st_size, attr.st_mtime = name, 0o100644, len(body), 1
            found.append(attr)
        return found

    def open(self, path: str, mode: str) -> Any:
        body = self.files[path.rsplit("/", 1)[1]]

        class Handle:
            def readv(self, chunks: list[tuple[int, int]]) -> list[bytes]:
                return [body[at : at + size] for at, size in chunks]

            def close(self) -> None:
                pass

        return Handle()

    def remove(self, path: str) -> None:
        del self.files[path.rsplit("/", 1)[1]]


async def test_a_name_the_database_cannot_hold_is_left_alone_and_the_others_are_taken(
    tmp_path: Path, database_url: str | None
) -> None:
    """A remote name is the message's transport id (255 characters at most, no NUL on
    PostgreSQL). Such a file once failed the whole poll's commit on PostgreSQL, every
    poll: now it alone is left on the server, with its reason, and the rest are taken."""
    long_name, nul_name = "p" * 252 + ".edi", "po\x00.edi"
    server = _ListedServer(
        {
            name: order_850("INITECH", n)
            for n, name in enumerate(["po-1.edi", long_name, nul_name, "po-2.edi"])
        }
    )
    sftp = SimpleNamespace(inbound_path="/out", pattern="*", settle_seconds=0, archive_path=None)
    async with running_intake(tmp_path, database_url) as (db, intake):
        poller = Poller(intake, lambda: None, max_bytes=1 << 20)
        report = PollReport()
        await poller._take("initech", sftp, SimpleNamespace(sftp=server), report)
        async with db.read() as conn:
            stored = (await conn.execute(select(Message.transport_id))).scalars().all()
    assert sorted(stored) == report.taken == ["po-1.edi", "po-2.edi"]
    assert sorted(report.unfit) == sorted([long_name, nul_name])
    assert "255 characters" in report.unfit[long_name]
    assert sorted(server.files) == sorted([long_name, nul_name])  # left on the server


def test_every_name_the_drop_box_takes_fits_the_messages_table() -> None:
    """The hosted drop box takes plain names of up to 255 UTF-8 bytes (sftp_jail), so
    never one the transport id column refuses."""
    for name in ("a" * 255, "é" * 127 + "a", "ü" * 85):
        assert jail.plain_name(name) and storable_identifier(name)
    for name in ("a" * 256, "é" * 128, "a\x00b"):
        assert not jail.plain_name(name)
