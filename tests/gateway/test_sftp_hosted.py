"""The hosted SFTP drop box, driven by OpenSSH's sftp client and by paramiko:
files dropped in /inbound are stored durably, reach the pipeline and disappear;
the jail refuses everything outside the partner's own tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko
import pytest
from conftest import ACME_KEY, GLOBEX_KEY, make_settings
from gwsamples import order_850, profile_toml
from sftp_peers import hosted_table, keygen, need_openssh, sftp_batch
from sqlalchemy import select

from gateway.app import DATABASE, GATEWAY, PIPELINE, Overrides, build_app
from gateway.db.models import Message, MessageEvent


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    need_openssh()
    return {name: keygen(tmp_path / "keys", name) for name in ("acme", "globex", "stranger")}


@pytest.fixture
def hosted_partners(tmp_path: Path, keys: dict[str, tuple[Path, str]]) -> Path:
    return write_hosted_partners(tmp_path, keys)


def write_hosted_partners(
    tmp_path: Path,
    keys: dict[str, tuple[Path, str]],
    *,
    globex_archive: bool = True,
    acme_cap: int | None = None,
) -> Path:
    """Hosted partners acme and globex (with /archive unless ``globex_archive`` is
    False), logging in with ``keys``; acme's own max_connections ``acme_cap``."""
    root = tmp_path / "partners"
    for partner_id, isa, key, table in (
        ("acme", "ACME", ACME_KEY, hosted_table(keys["acme"][1], max_connections=acme_cap)),
        ("globex", "GLOBEX", GLOBEX_KEY, hosted_table(keys["globex"][1], archive=globex_archive)),
    ):
        (root / partner_id).mkdir(parents=True)
        (root / partner_id / "profile.toml").write_text(profile_toml(partner_id, isa, key) + table)
    return root


async def start(
    aiohttp_client: Any, tmp_path: Path, partners: Path, database_url: str | None = None, **sections: Any
) -> Any:
    settings = make_settings(
        tmp_path, partners, database_url, sftp={"host": "127.0.0.1", "port": 0}, **sections
    )
    return await aiohttp_client(build_app(settings, overrides=Overrides()))


async def messages(client: Any) -> list[Any]:
    async with client.app[DATABASE].read() as conn:
        rows = await conn.execute(
            select(
                Message.id,
                Message.partner_id,
                Message.channel,
                Message.transport_id,
                Message.status,
                Message.reason,
            )
            .where(Message.direction == "in")
            .order_by(Message.received_at)
        )
        return list(rows.all())


def box(tmp_path: Path, partner: str) -> Path:
    return tmp_path / "var" / "sftp" / partner


async def gone_from_inbound(tmp_path: Path, partner: str) -> None:
    """Files leave /inbound once stored durably."""
    import asyncio

    for _ in range(200):
        if not any((box(tmp_path, partner) / "inbound").iterdir()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"files still in /inbound: {list((box(tmp_path, partner) / 'inbound').iterdir())}")


async def put_then_gone(port: int, partner: str, key: Path, tmp_path: Path, name: str, body: bytes) -> None:
    """``partner`` puts ``body`` as /inbound/``name`` with OpenSSH's sftp (exit 0), and
    the file leaves /inbound (stored durably)."""
    (tmp_path / name).write_bytes(body)
    run = await sftp_batch(port, partner, key, [f"put {name} /inbound/{name}"], tmp_path)
    assert run.returncode == 0, run.output
    await gone_from_inbound(tmp_path, partner)


async def test_openssh_drops_an_850_that_reaches_the_pipeline(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any, database_url: str | None
) -> None:
    client = await start(aiohttp_client, tmp_path, hosted_partners, database_url)
    port = client.app[GATEWAY].sftp_server.port
    (tmp_path / "po-77.edi").write_bytes(order_850("ACME", 77))
    run = await sftp_batch(port, "acme", keys["acme"][0], ["cd /inbound", "put po-77.edi"], tmp_path)
    assert run.returncode == 0, run.output
    await gone_from_inbound(tmp_path, "acme")
    assert list((box(tmp_path, "acme") / ".incoming").iterdir()) == []
    [msg] = await messages(client)
    assert (msg.partner_id, msg.channel, msg.transport_id) == ("acme", "sftp", "po-77.edi")
    await client.app[PIPELINE].run_until_idle()
    [msg] = await messages(client)
    assert msg.status in ("delivered", "translated", "acknowledged", "available"), msg


async def test_the_same_file_uploaded_twice_is_one_message(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    for _ in range(2):
        await put_then_gone(port, "acme", keys["acme"][0], tmp_path, "po.edi", order_850("ACME", 78))
    assert len(await messages(client)) == 1


async def test_archive_keeps_taken_files_readable(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    await put_then_gone(port, "globex", keys["globex"][0], tmp_path, "g.edi", order_850("GLOBEX", 5))
    run = await sftp_batch(
        port, "globex", keys["globex"][0], ["ls -1 /archive", "get /archive/g.edi back.edi"], tmp_path
    )
    assert run.returncode == 0, run.output
    assert (tmp_path / "back.edi").read_bytes() == order_850("GLOBEX", 5)
    assert list((box(tmp_path, "globex") / "inbound").iterdir()) == []


async def test_empty_and_non_x12_files_are_stored_and_failed_with_a_record(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    (tmp_path / "empty.edi").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"hello, this is not X12\n")
    run = await sftp_batch(
        port, "acme", keys["acme"][0], ["put empty.edi /inbound/", "put notes.txt /inbound/"], tmp_path
    )
    assert run.returncode == 0, run.output
    await gone_from_inbound(tmp_path, "acme")
    await client.app[PIPELINE].run_until_idle()
    found = {m.transport_id: m for m in await messages(client)}
    assert set(found) == {"empty.edi", "notes.txt"}
    for msg in found.values():
        assert msg.status in ("failed", "quarantined"), msg
        assert msg.reason, msg
    async with client.app[DATABASE].read() as conn:
        states = (
            (
                await conn.execute(
                    select(MessageEvent.state).where(MessageEvent.message_id == found["notes.txt"].id)
                )
            )
            .scalars()
            .all()
        )
    assert "received" in states and len(states) >= 2


def paramiko_sftp(port: int, user: str, key: Path) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username=user, pkey=paramiko.PKey.from_path(key))
    sftp = paramiko.SFTPClient.from_transport(transport)
    assert sftp is not None
    return transport, sftp


async def test_the_jail_refuses_everything_outside_the_partners_tree(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    import asyncio

    client = await start(aiohttp_client, tmp_path, hosted_partners, limits={"max_edi_bytes": 10_000})
    port = client.app[GATEWAY].sftp_server.port
    (box(tmp_path, "globex") / "outbound").mkdir(parents=True)
    (box(tmp_path, "globex") / "outbound" / "theirs.edi").write_text("globex only")
    (box(tmp_path, "acme") / "outbound").mkdir(parents=True)
    (box(tmp_path, "acme") / "outbound" / "link.edi").symlink_to("/etc/passwd")

    def attempts() -> dict[str, Any]:
        transport, sftp = paramiko_sftp(port, "acme", keys["acme"][0])
        seen: dict[str, Any] = {}
        try:
            for label, action in (
                ("dotdot", lambda: sftp.open("/inbound/../../globex/outbound/theirs.edi").read()),
                ("dotdot_put", lambda: sftp.open("/inbound/../x.edi", "w").write(b"x")),
                ("absolute", lambda: sftp.open("/etc/passwd").read()),
                ("other_partner", lambda: sftp.listdir("/globex/outbound")),
                ("symlink", lambda: sftp.symlink("/etc/passwd", "/inbound/p")),
                ("readlink", lambda: sftp.readlink("/outbound")),
                ("mkdir", lambda: sftp.mkdir("/inbound/sub")),
                ("write_outbound", lambda: sftp.open("/outbound/x.edi", "w").write(b"x")),
                ("hidden", lambda: sftp.listdir("/.incoming")),
                ("follow_symlink", lambda: sftp.open("/outbound/link.edi").read()),
            ):
                try:
                    action()
                    seen[label] = "allowed"
                except OSError as exc:
                    seen[label] = exc.errno if exc.errno is not None else str(exc)
            with sftp.open("/inbound/big.edi", "w") as fh:
                try:
                    fh.write(b"x" * 20_000)
                    fh.flush()
                    seen["oversized"] = "allowed"
                except OSError as exc:
                    seen["oversized"] = str(exc)
            seen["root"] = sorted(sftp.listdir("/"))
        except OSError as exc:
            seen.setdefault("oversized", str(exc))
        finally:
            transport.close()
        return seen

    seen = await asyncio.to_thread(attempts)
    for label in (
        "dotdot",
        "dotdot_put",
        "absolute",
        "other_partner",
        "mkdir",
        "write_outbound",
        "hidden",
        "follow_symlink",
    ):
        assert seen[label] == 13, (label, seen)  # EACCES: SFTP permission denied
    assert seen["symlink"] == seen["readlink"] == "Operation unsupported", seen
    assert seen["oversized"] == "file larger than the limit of 10000 bytes: refused", seen
    assert seen["root"] == ["inbound", "outbound"]
    assert await messages(client) == []
    assert list((box(tmp_path, "acme") / ".incoming").iterdir()) == []
    # A key that is not in the profile, or another partner's key, is refused at login.
    for user, key in (("acme", keys["stranger"][0]), ("acme", keys["globex"][0])):
        with pytest.raises(paramiko.AuthenticationException):
            await asyncio.to_thread(paramiko_sftp, port, user, key)


async def test_a_dropped_connection_mid_upload_stores_nothing(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    import asyncio

    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port

    def partial() -> None:
        transport, sftp = paramiko_sftp(port, "acme", keys["acme"][0])
        fh = sftp.open("/inbound/half.edi", "w")
        fh.write(order_850("ACME", 9)[:100])
        fh.flush()
        transport.close()  # no CLOSE of the file

    await asyncio.to_thread(partial)
    for _ in range(50):
        if not list((box(tmp_path, "acme") / ".incoming").iterdir()):
            break
        await asyncio.sleep(0.05)
    assert list((box(tmp_path, "acme") / ".incoming").iterdir()) == []
    assert await messages(client) == []


async def test_outbound_documents_wait_in_outbound_until_the_partner_collects_them(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    from test_outbound import TOKEN, invoice

    from gateway.app import DELIVERY
    from gateway.db.models import OutboxItem

    client = await start(aiohttp_client, tmp_path, hosted_partners, outbound={"workers": 0})
    port = client.app[GATEWAY].sftp_server.port
    resp = await client.post(
        "/api/v1/invoices", json={"partner_id": "acme", "document": invoice()}, headers=TOKEN
    )
    assert resp.status == 202, await resp.text()
    await client.app[DELIVERY].run_until_idle()
    [name] = [p.name for p in (box(tmp_path, "acme") / "outbound").iterdir()]
    assert name.startswith("810_") and name.endswith(".edi"), name
    assert list((box(tmp_path, "acme") / ".outgoing").iterdir()) == []
    async with client.app[DATABASE].read() as conn:
        [status] = (
            (await conn.execute(select(OutboxItem.status).where(OutboxItem.partner_id == "acme")))
            .scalars()
            .all()
        )
    assert status == "sent"
    # The partner lists, fetches and deletes it; globex never sees it.
    run = await sftp_batch(
        port,
        "acme",
        keys["acme"][0],
        ["ls -1 /outbound", f"get /outbound/{name} got.edi", f"rm /outbound/{name}"],
        tmp_path,
    )
    assert run.returncode == 0, run.output
    assert (tmp_path / "got.edi").read_bytes().startswith(b"ISA*")
    assert list((box(tmp_path, "acme") / "outbound").iterdir()) == []
    run = await sftp_batch(port, "globex", keys["globex"][0], ["ls -1 /outbound"], tmp_path)
    assert run.returncode == 0 and name not in run.output


async def test_close_after_store_answers_the_close_only_once_stored(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    settings = make_settings(
        tmp_path, hosted_partners, sftp={"host": "127.0.0.1", "port": 0, "close_after_store": True}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    port = client.app[GATEWAY].sftp_server.port
    (tmp_path / "po.edi").write_bytes(order_850("ACME", 31))
    run = await sftp_batch(
        port, "acme", keys["acme"][0], ["put po.edi /inbound/", "ls -1 /inbound"], tmp_path
    )
    assert run.returncode == 0, run.output
    assert "po.edi" not in run.output.split("ls -1 /inbound", 1)[1]
    assert [m.transport_id for m in await messages(client)] == ["po.edi"]


async def test_files_left_in_inbound_are_taken_at_start_once(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    """A crash after the CLOSE (file in /inbound, not stored) and a crash after the
    commit but before the removal (file stored, still in /inbound): the next start
    takes the first and only removes the second."""
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    await put_then_gone(port, "acme", keys["acme"][0], tmp_path, "stored.edi", order_850("ACME", 41))
    await client.close()

    inbound = box(tmp_path, "acme") / "inbound"
    (inbound / "stored.edi").write_bytes(order_850("ACME", 41))  # the removal never happened
    (inbound / "waiting.edi").write_bytes(order_850("ACME", 42))  # closed, never taken
    for name in ("stored.edi", "waiting.edi"):  # marked, as their CLOSE marks them
        mark(inbound / name)
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    await gone_from_inbound(tmp_path, "acme")
    assert sorted(m.transport_id for m in await messages(client)) == ["stored.edi", "waiting.edi"]


def mark(path: Path) -> None:
    import hashlib
    import os

    from gateway.transports.sftp_marks import MARK

    os.setxattr(path, MARK, hashlib.sha256(path.read_bytes()).hexdigest().encode())


@pytest.mark.parametrize("sync_uploads", [True, False])
async def test_an_unmarked_file_in_inbound_is_taken_only_without_sync_uploads(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, sync_uploads: bool
) -> None:
    """Every CLOSE marks its file. With ``sync_uploads`` a file in /inbound without a
    mark was never answered OK (a power cut between the rename and the sync can leave
    a cut file with no mark): it is moved to ``.unconfirmed``, never stored. Without
    ``sync_uploads`` (the operator chose OpenSSH's behaviour) it is taken."""
    import asyncio

    inbound = box(tmp_path, "acme") / "inbound"
    inbound.mkdir(parents=True)
    (inbound / "cut.edi").write_bytes(order_850("ACME", 61)[:90])  # no mark: its CLOSE never answered
    settings = make_settings(
        tmp_path,
        hosted_partners,
        sftp={"host": "127.0.0.1", "port": 0, "sync_uploads": sync_uploads},
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    for _ in range(100):
        if not (inbound / "cut.edi").exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # a take, had it started, has committed
    aside = box(tmp_path, "acme") / ".unconfirmed" / "cut.edi"
    stored = [m.transport_id for m in await messages(client)]
    assert not (inbound / "cut.edi").exists()
    text = await (
        await client.get("/metrics", headers={"Authorization": "Bearer internal-test-token"})
    ).text()
    if sync_uploads:
        assert aside.read_bytes() == order_850("ACME", 61)[:90] and stored == []
        assert 'gateway_sftp_unconfirmed_total{partner="acme"} 1' in text
    else:
        assert not aside.exists() and stored == ["cut.edi"]
        assert "gateway_sftp_unconfirmed_total{" not in text


async def test_a_synced_upload_cut_short_by_a_crash_is_never_taken(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    """With sync_uploads the CLOSE marks the upload with its SHA-256, renames it into
    /inbound and then syncs it (one journal commit). A power cut before that sync can
    leave the name with other bytes: such a file is never stored, and is deleted once
    unchanged for twice the idle limit; a file matching its mark is stored."""
    import asyncio
    import hashlib
    import os

    from gateway.transports.sftp_marks import MARK

    settings = make_settings(
        tmp_path,
        hosted_partners,
        sftp={"host": "127.0.0.1", "port": 0, "sync_uploads": True, "idle_timeout_seconds": 0.5},
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    port = client.app[GATEWAY].sftp_server.port
    await put_then_gone(port, "acme", keys["acme"][0], tmp_path, "po-51.edi", order_850("ACME", 51))
    await client.close()

    inbound = box(tmp_path, "acme") / "inbound"
    whole, cut = order_850("ACME", 52), order_850("ACME", 53)
    for name, body, marked in (("whole.edi", whole, whole), ("cut.edi", cut[:100], cut)):
        (inbound / name).write_bytes(body)
        os.setxattr(inbound / name, MARK, hashlib.sha256(marked).hexdigest().encode())
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    for _ in range(150):  # the sweep at start, then every 5 s
        if not any(inbound.iterdir()):
            break
        await asyncio.sleep(0.1)
    assert not any(inbound.iterdir())
    assert sorted(m.transport_id for m in await messages(client)) == ["po-51.edi", "whole.edi"]


@pytest.mark.parametrize("sync_uploads", [False, True])
async def test_many_files_from_several_sessions_share_commits(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any, sync_uploads: bool
) -> None:
    """Also with ``sync_uploads``: the CLOSEs of concurrent sessions share /inbound's syncs."""
    import asyncio

    settings = make_settings(
        tmp_path, hosted_partners, sftp={"host": "127.0.0.1", "port": 0, "sync_uploads": sync_uploads}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    gw = client.app[GATEWAY]
    before = (gw.intake.batches, gw.intake.accepted)
    for session in range(3):
        folder = tmp_path / f"s{session}"
        folder.mkdir()
        for n in range(20):
            (folder / f"s{session}-{n:02d}.edi").write_bytes(order_850("ACME", 1000 + session * 100 + n))
    runs = await asyncio.gather(
        *(
            sftp_batch(gw.sftp_server.port, "acme", keys["acme"][0], [f"put s{s}/* /inbound/"], tmp_path)
            for s in range(3)
        )
    )
    assert all(r.returncode == 0 for r in runs), [r.output for r in runs]
    await gone_from_inbound(tmp_path, "acme")
    assert gw.intake.accepted - before[1] == 60
    assert gw.intake.batches - before[0] < 60  # group commits
    assert len(await messages(client)) == 60


async def test_idle_sessions_are_closed(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    import asyncio

    settings = make_settings(
        tmp_path, hosted_partners, sftp={"host": "127.0.0.1", "port": 0, "idle_timeout_seconds": 0.5}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    port = client.app[GATEWAY].sftp_server.port
    transport, sftp = await asyncio.to_thread(paramiko_sftp, port, "acme", keys["acme"][0])
    try:
        assert await asyncio.to_thread(sftp.listdir, "/") == ["inbound", "outbound"]
        for _ in range(60):
            if not transport.is_active():
                break
            await asyncio.sleep(0.1)
        assert not transport.is_active()
    finally:
        transport.close()


async def test_a_filepart_upload_is_taken_when_renamed_to_its_final_name(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    """WinSCP's "transfer to temporary filename": upload x.filepart, then rename."""
    import asyncio

    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port

    def upload() -> dict[str, Any]:
        transport, sftp = paramiko_sftp(port, "acme", keys["acme"][0])
        try:
            with sftp.open("/inbound/po.edi.filepart", "w") as fh:
                fh.write(order_850("ACME", 51))
            seen: dict[str, Any] = {
                "size": sftp.stat("/inbound/po.edi.filepart").st_size,
                "listed": sftp.listdir("/inbound"),
            }
            for label, old, new in (
                ("to_outbound", "/inbound/po.edi.filepart", "/outbound/po.edi"),
                ("plain", "/inbound/a.edi", "/inbound/b.edi"),
            ):
                try:
                    sftp.rename(old, new)
                    seen[label] = "allowed"
                except OSError as exc:
                    seen[label] = exc.errno
            sftp.rename("/inbound/po.edi.filepart", "/inbound/po.edi")
            return seen
        finally:
            transport.close()

    seen = await asyncio.to_thread(upload)
    assert seen["size"] == len(order_850("ACME", 51)) and seen["listed"] == []
    assert seen["to_outbound"] == seen["plain"] == 13
    await gone_from_inbound(tmp_path, "acme")
    assert [m.transport_id for m in await messages(client)] == ["po.edi"]
    assert list((box(tmp_path, "acme") / ".held").iterdir()) == []


async def test_openssh_put_f_syncs_the_upload_with_fsync_at_openssh_com(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    """``put -f`` asks the server to fsync each file before closing it; the drop box
    announces ``fsync@openssh.com`` and answers it."""
    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    (tmp_path / "f1.edi").write_bytes(order_850("ACME", 51))
    (tmp_path / "f2.edi").write_bytes(order_850("ACME", 52, sets=30))
    run = await sftp_batch(port, "acme", keys["acme"][0], ["put -f f?.edi /inbound/"], tmp_path, "-vv")
    assert run.returncode == 0, run.output
    # The client sends the extension only to a server that announced it (else it skips it silently).
    assert run.output.count("Sending SSH2_FXP_EXTENDED(fsync@openssh.com)") == 2, run.output
    assert "Couldn't sync" not in run.output, run.output
    await gone_from_inbound(tmp_path, "acme")
    assert sorted(m.transport_id for m in await messages(client)) == ["f1.edi", "f2.edi"]


async def test_fsync_at_openssh_com_answers_per_handle(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    """The extension on an upload, on a download and on a handle that does not exist."""
    from paramiko.sftp import CMD_EXTENDED

    client = await start(aiohttp_client, tmp_path, hosted_partners)
    port = client.app[GATEWAY].sftp_server.port
    (box(tmp_path, "acme") / "outbound").mkdir(parents=True, exist_ok=True)
    (box(tmp_path, "acme") / "outbound" / "997.edi").write_bytes(b"ISA*...~")

    def session() -> list[str]:
        transport, sftp = paramiko_sftp(port, "acme", keys["acme"][0])
        found = []
        try:
            with sftp.open("/inbound/synced.edi", "wb") as fh:
                fh.write(order_850("ACME", 53))
                sftp._request(CMD_EXTENDED, "fsync@openssh.com", fh.handle)
                found.append("upload synced")
            with sftp.open("/outbound/997.edi", "rb") as fh:
                sftp._request(CMD_EXTENDED, "fsync@openssh.com", fh.handle)
                found.append("download synced")
            try:
                sftp._request(CMD_EXTENDED, "fsync@openssh.com", b"no-such-handle")
            except OSError as exc:
                found.append(f"refused: {exc}")
        finally:
            transport.close()
        return found

    import asyncio

    found = await asyncio.to_thread(session)
    assert found[:2] == ["upload synced", "download synced"]
    assert found[2].startswith("refused") and "Invalid handle" in found[2], found
    await gone_from_inbound(tmp_path, "acme")
    assert [m.transport_id for m in await messages(client)] == ["synced.edi"]
