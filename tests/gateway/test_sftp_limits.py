"""Connection limits of the hosted drop box, with real clients: paramiko
connections beyond a cap are refused (at login, or closed at once before it)
while another partner still logs in and uploads with OpenSSH's sftp; closing
connections frees the slots; connections that never log in are closed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from conftest import ACME_KEY, make_settings
from gwsamples import order_850, profile_toml
from sftp_peers import hosted_table, keygen, need_openssh, sftp_batch
from test_sftp_hosted import messages, put_then_gone, write_hosted_partners
from test_sftp_password import PASSWORD, password_login

from gateway.app import GATEWAY, Overrides, build_app
from gateway.passwords import hash_password

TOKEN = {"Authorization": "Bearer internal-test-token"}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    need_openssh()
    return {name: keygen(tmp_path / "keys", name) for name in ("acme", "globex")}


async def start(aiohttp_client: Any, tmp_path: Path, partners: Path, **sftp: Any) -> Any:
    settings = make_settings(tmp_path, partners, sftp={"host": "127.0.0.1", "port": 0, **sftp})
    return await aiohttp_client(build_app(settings, overrides=Overrides()))


def login(port: int, user: str, key: Path) -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=user, pkey=paramiko.PKey.from_path(key))
    except BaseException:
        transport.close()
        raise
    return transport


def logins(port: int, user: str, key: Path, count: int) -> tuple[list[paramiko.Transport], int]:
    """``count`` logins one after the other: (the transports logged in, how many refused)."""
    done, refused = [], 0
    for _ in range(count):
        try:
            done.append(login(port, user, key))
        except paramiko.AuthenticationException:
            refused += 1
    return done, refused


@contextlib.contextmanager
def closing(transports: list[paramiko.Transport]) -> Iterator[list[paramiko.Transport]]:
    try:
        yield transports
    finally:
        for transport in transports:
            transport.close()


async def login_soon(port: int, user: str, key: Path) -> paramiko.Transport:
    """A login once the server noticed closed connections (their slots free)."""
    for _ in range(50):
        with contextlib.suppress(paramiko.AuthenticationException):
            return await asyncio.to_thread(login, port, user, key)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user} could not log in again")


async def upload(port: int, user: str, key: Path, tmp_path: Path, number: int) -> None:
    await put_then_gone(port, user, key, tmp_path, f"{user}-{number}.edi", order_850(user.upper(), number))


async def metrics_text(client: Any) -> str:
    return str(await (await client.get("/metrics", headers=TOKEN)).text())


async def test_a_partner_beyond_its_default_cap_is_refused_while_another_uploads(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client, tmp_path, write_hosted_partners(tmp_path, keys, globex_archive=False)
    )
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port
    acme_key = keys["acme"][0]
    done, refused = await asyncio.to_thread(logins, port, "acme", acme_key, 14)
    with closing(done):
        assert (len(done), refused) == (10, 4)  # max_connections_per_partner = 10 by default
        assert all(t.is_authenticated() for t in done)
        await upload(port, "globex", keys["globex"][0], tmp_path, 1)  # globex is not starved
        await gw.sftp_server.settled()  # counted in the drop-box process, told to us
        assert gw.metrics.sftp_connections_refused["max_connections_per_partner"] == 4
        text = await metrics_text(client)
        assert 'gateway_sftp_connections_refused_total{reason="max_connections_per_partner"} 4' in text
        done.pop().close()  # a closed connection frees its slot
        again = await login_soon(port, "acme", acme_key)
        done.append(again)
        assert again.is_authenticated()
    [msg] = await messages(client)
    assert (msg.partner_id, msg.transport_id) == ("globex", "globex-1.edi")


async def test_the_profiles_max_connections_overrides_the_per_partner_default(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client,
        tmp_path,
        write_hosted_partners(tmp_path, keys, globex_archive=False, acme_cap=2),
        max_connections_per_partner=3,
    )
    port = client.app[GATEWAY].sftp_server.port
    acme, refused = await asyncio.to_thread(logins, port, "acme", keys["acme"][0], 4)
    globex, globex_refused = await asyncio.to_thread(logins, port, "globex", keys["globex"][0], 4)
    with closing(acme + globex):
        assert (len(acme), refused) == (2, 2)  # its profile's max_connections = 2
        assert (len(globex), globex_refused) == (3, 1)  # gateway.toml's max_connections_per_partner = 3


async def test_the_global_cap_refuses_any_partner_and_frees_on_close(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client,
        tmp_path,
        write_hosted_partners(tmp_path, keys, globex_archive=False),
        max_connections=3,
    )
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port
    acme, refused = await asyncio.to_thread(logins, port, "acme", keys["acme"][0], 4)
    with closing(acme):
        assert (len(acme), refused) == (3, 1)
        run = await sftp_batch(port, "globex", keys["globex"][0], ["ls /inbound"], tmp_path)
        assert run.returncode != 0  # all partners together: refused at login
        assert "Permission denied" in run.output, run.output
        await gw.sftp_server.settled()  # counted in the drop-box process, told to us
        assert gw.metrics.sftp_connections_refused["max_connections"] >= 2
        acme.pop().close()
        await asyncio.sleep(0.3)  # the server sees the close
        await upload(port, "globex", keys["globex"][0], tmp_path, 2)


def raw_connection(port: int) -> socket.socket:
    """A TCP connection that reads the server's banner and never logs in."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    banner = conn.recv(256)
    assert banner.startswith(b"SSH-2.0-"), banner
    return conn


def closed_by_server(conn: socket.socket) -> bool:
    """Reads what the server sends (its banner, key exchange) until it closes."""
    try:
        while conn.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


async def test_connections_not_logged_in_are_capped_and_timed_out(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client,
        tmp_path,
        write_hosted_partners(tmp_path, keys, globex_archive=False),
        max_startups=3,
        auth_timeout_seconds=1.5,
    )
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port
    acme = await asyncio.to_thread(login, port, "acme", keys["acme"][0])  # logged in: not a startup
    waiting = [await asyncio.to_thread(raw_connection, port) for _ in range(3)]
    try:
        extra = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 5)
        with extra:  # closed at once, without even a banner
            assert await asyncio.to_thread(closed_by_server, extra)
        await gw.sftp_server.settled()  # counted in the drop-box process, told to us
        assert gw.metrics.sftp_connections_refused["max_startups"] == 1
        assert acme.is_active()
        # Not logged in within auth_timeout_seconds: closed, and the slots are free again.
        for conn in waiting:
            conn.settimeout(10)
            assert await asyncio.to_thread(closed_by_server, conn)
        await asyncio.sleep(0.1)
        await upload(port, "globex", keys["globex"][0], tmp_path, 3)
        assert acme.is_active()  # a logged-in session is not under the login timeout
    finally:
        for conn in waiting:
            conn.close()
        acme.close()


async def test_logins_at_the_same_moment_never_take_more_than_the_cap(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client,
        tmp_path,
        write_hosted_partners(tmp_path, keys, globex_archive=False),
        max_connections_per_partner=3,
        max_startups=40,
    )
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port
    results = await asyncio.gather(
        *(asyncio.to_thread(logins, port, "acme", keys["acme"][0], 1) for _ in range(12)),
        return_exceptions=True,
    )
    done = [t for r in results if not isinstance(r, BaseException) for t in r[0]]
    with closing(done):
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert len(done) == 3  # the slots are claimed under one lock
        await gw.sftp_server.settled()  # counted in the drop-box process, told to us
        assert gw.metrics.sftp_connections_refused["max_connections_per_partner"] == 9


async def test_a_password_login_beyond_the_cap_is_refused_too(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    root = tmp_path / "partners"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "profile.toml").write_text(
        profile_toml("acme", "ACME", ACME_KEY)
        + hosted_table(keys["acme"][1], password_hash=hash_password(PASSWORD), max_connections=1)
    )
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port
    first = await asyncio.to_thread(password_login, port, "acme", PASSWORD)
    with closing([first]):
        with pytest.raises(paramiko.AuthenticationException):
            await asyncio.to_thread(password_login, port, "acme", PASSWORD)
        await gw.sftp_server.settled()  # counted in the drop-box process, told to us
        assert gw.metrics.sftp_connections_refused["max_connections_per_partner"] == 1
        assert gw.metrics.sftp_login_refused == {}  # the password was right: not counted as a wrong one


class WrongSignature(paramiko.Ed25519Key):
    """A partner's public key (public keys are not secret) with another key's
    signature: the drop box accepts the key before paramiko checks the signature."""

    other: paramiko.PKey

    def sign_ssh_data(self, data: bytes, algorithm: str | None = None) -> Any:
        return self.other.sign_ssh_data(data, algorithm)


async def test_a_public_key_without_its_private_key_cannot_keep_the_partners_slots(
    aiohttp_client: Any, tmp_path: Path, keys: Any
) -> None:
    client = await start(
        aiohttp_client, tmp_path, write_hosted_partners(tmp_path, keys, globex_archive=False, acme_cap=1)
    )
    port = client.app[GATEWAY].sftp_server.port
    impostor = WrongSignature(filename=str(keys["acme"][0]))
    impostor.other = paramiko.PKey.from_path(keys["globex"][0])
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        await asyncio.to_thread(transport.start_client)
        for attempt in range(2):  # the second would renew the first's claim
            if attempt:
                await asyncio.sleep(2.2)
            with pytest.raises(paramiko.AuthenticationException):
                await asyncio.to_thread(transport.auth_publickey, "acme", impostor)
        assert transport.is_active()  # still connected, still claiming
        genuine = await asyncio.to_thread(login, port, "acme", keys["acme"][0])
        with closing([genuine]):
            assert genuine.is_authenticated()
    finally:
        transport.close()
