"""Password logins, only where a profile asks: the hosted drop box against a
``password_hash`` (OpenSSH's sftp through sshpass, and paramiko), refused for
partners without one, failures rate-limited per partner and address and counted;
``gateway sftp hash-password``; and the poller logging in with a password named by
``password_env``, against our own drop box."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramiko
import pytest
from conftest import ACME_KEY, GLOBEX_KEY, make_settings
from gwsamples import order_850, profile_toml
from sftp_peers import free_port, hosted_table, keygen, need_openssh, poll_table
from sqlalchemy import select
from test_sftp_hosted import gone_from_inbound, messages, start

from gateway.app import DATABASE, GATEWAY, Overrides, build_app
from gateway.db.models import Message
from gateway.passwords import hash_password, verify_password
from gateway.transports.sftp_keys import ensure_host_key

PASSWORD = "correct horse battery"
TOKEN = {"Authorization": "Bearer internal-test-token"}


@pytest.fixture
def partners(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, str]]]:
    """acme: a key and a password_hash; globex: a key only."""
    need_openssh()
    keys = {name: keygen(tmp_path / "keys", name) for name in ("acme", "globex")}
    root = tmp_path / "partners"
    for partner_id, isa, secret, table in (
        ("acme", "ACME", ACME_KEY, hosted_table(keys["acme"][1], password_hash=hash_password(PASSWORD))),
        ("globex", "GLOBEX", GLOBEX_KEY, hosted_table(keys["globex"][1])),
    ):
        (root / partner_id).mkdir(parents=True)
        (root / partner_id / "profile.toml").write_text(profile_toml(partner_id, isa, secret) + table)
    return root, keys


def password_login(port: int, user: str, password: str) -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=user, password=password)
    except BaseException:
        transport.close()
        raise
    return transport


async def test_openssh_sftp_logs_in_with_the_password_and_drops_a_file(
    aiohttp_client: Any, tmp_path: Path, partners: Any
) -> None:
    if shutil.which("sshpass") is None:
        pytest.skip("sshpass is not installed (.ci/run installs it): apt-get install sshpass")
    client = await start(aiohttp_client, tmp_path, partners[0])
    port = client.app[GATEWAY].sftp_server.port
    (tmp_path / "po-81.edi").write_bytes(order_850("ACME", 81))
    (tmp_path / "batch").write_text("cd /inbound\nput po-81.edi\n")

    def run(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            # BatchMode=no before -b (which sets it; ssh keeps the first value), so
            # that sshpass can answer the password prompt.
            ["sshpass", "-e", "sftp", "-o", "BatchMode=no", "-b", "batch", "-P", str(port),
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
             "-o", "LogLevel=ERROR", "acme@127.0.0.1"],
            cwd=tmp_path, env={**os.environ, "SSHPASS": password}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    import asyncio

    wrong = await asyncio.to_thread(run, "not the password")
    await client.app[GATEWAY].sftp_server.settled()  # counted in the drop-box process, told to us
    assert (
        wrong.returncode != 0
        and client.app[GATEWAY].metrics.sftp_login_refused[("acme", "wrong_password")] >= 1
    )
    right = await asyncio.to_thread(run, PASSWORD)
    assert right.returncode == 0, right.stdout + right.stderr
    await gone_from_inbound(tmp_path, "acme")
    [msg] = await messages(client)
    assert (msg.partner_id, msg.channel, msg.transport_id) == ("acme", "sftp", "po-81.edi")


async def test_passwords_are_checked_only_where_the_profile_has_a_hash(
    aiohttp_client: Any, tmp_path: Path, partners: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    caplog.set_level(logging.INFO)
    root, keys = partners
    client = await start(aiohttp_client, tmp_path, root)
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port

    def attempts() -> dict[str, Any]:
        found: dict[str, Any] = {}
        transport = password_login(port, "acme", PASSWORD)  # the password works...
        found["password"] = transport.is_authenticated()
        transport.close()
        transport = paramiko.Transport(("127.0.0.1", port))  # ...and so does acme's key
        transport.connect(username="acme", pkey=paramiko.PKey.from_path(keys["acme"][0]))
        found["key"] = transport.is_authenticated()
        transport.close()
        for user, password in (("acme", "wrong password"), ("globex", PASSWORD), ("nobody", PASSWORD)):
            try:
                password_login(port, user, password).close()
                found[user] = "logged in"
            except paramiko.BadAuthenticationType as exc:
                found[user] = f"only {exc.allowed_types}"
            except paramiko.AuthenticationException:
                found[user] = "refused"
        return found

    found = await asyncio.to_thread(attempts)
    assert found == {
        "password": True,
        "key": True,
        "acme": "refused",
        # A profile without a hash, or no partner at all: the password is refused like
        # a wrong one (the offered methods are the same for every name).
        "globex": "refused",
        "nobody": "refused",
    }
    await gw.sftp_server.settled()
    refused = dict(gw.metrics.sftp_login_refused)
    assert refused == {
        ("acme", "wrong_password"): 1,
        ("globex", "no_password"): 1,
        ("(unknown)", "no_password"): 1,
    }
    metrics = await (await client.get("/metrics", headers=TOKEN)).text()
    assert 'gateway_sftp_password_refused_total{partner="acme",reason="wrong_password"} 1' in metrics
    assert all(
        PASSWORD not in r.getMessage() and "wrong password" not in r.getMessage() for r in caplog.records
    )
    assert any("password login refused for user 'acme'" in r.getMessage() for r in caplog.records)


async def test_the_offered_methods_never_tell_which_names_are_partners_or_take_passwords(
    aiohttp_client: Any, tmp_path: Path, partners: Any
) -> None:
    """OpenSSH offers every name the same methods. A list per name would tell a
    guesser which partner ids exist and which take passwords (its targets), whatever
    the equal scrypt work does for timing."""
    import asyncio

    client = await start(aiohttp_client, tmp_path, partners[0])
    port = client.app[GATEWAY].sftp_server.port

    def offered(user: str) -> list[str]:
        transport = paramiko.Transport(("127.0.0.1", port))
        try:
            transport.start_client(timeout=10)
            try:
                transport.auth_none(user)
            except paramiko.BadAuthenticationType as exc:
                return sorted(exc.allowed_types)
            return ["none"]
        finally:
            transport.close()

    found = {user: await asyncio.to_thread(offered, user) for user in ("acme", "globex", "nobody")}
    assert found == {user: ["password", "publickey"] for user in ("acme", "globex", "nobody")}


async def test_without_a_password_partner_only_keys_are_offered(aiohttp_client: Any, tmp_path: Path) -> None:
    import asyncio

    need_openssh()
    public = keygen(tmp_path / "keys", "globex")[1]
    root = tmp_path / "partners"
    (root / "globex").mkdir(parents=True)
    (root / "globex" / "profile.toml").write_text(
        profile_toml("globex", "GLOBEX", GLOBEX_KEY) + hosted_table(public)
    )
    client = await start(aiohttp_client, tmp_path, root)
    port = client.app[GATEWAY].sftp_server.port
    for user in ("globex", "nobody"):
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            await asyncio.to_thread(password_login, port, user, PASSWORD)
        assert refused.value.allowed_types == ["publickey"]


async def test_wrong_passwords_are_rate_limited_per_partner_and_address(
    aiohttp_client: Any, tmp_path: Path, partners: Any
) -> None:
    import asyncio

    client = await start(aiohttp_client, tmp_path, partners[0])
    gw = client.app[GATEWAY]
    port = gw.sftp_server.port

    def attempts() -> list[str]:
        outcomes = []
        for password in ["guess"] * 5 + [PASSWORD]:
            try:
                password_login(port, "acme", password).close()
                outcomes.append("in")
            except paramiko.AuthenticationException:
                outcomes.append("refused")
        return outcomes

    # After 5 failures from this address even the right password is refused, with the
    # usual authentication failure: the client learns nothing, the log and metrics do.
    assert await asyncio.to_thread(attempts) == ["refused"] * 6
    await gw.sftp_server.settled()
    assert gw.metrics.sftp_login_refused[("acme", "rate_limited")] == 1
    assert gw.metrics.sftp_login_refused[("acme", "wrong_password")] == 5
    # The window passed (as the console's test shows).
    await gw.sftp_server.forget_failures("acme", "127.0.0.1")
    transport = await asyncio.to_thread(password_login, port, "acme", PASSWORD)
    assert transport.is_authenticated()
    transport.close()


def test_hash_password_reads_standard_input_and_prints_a_hash() -> None:
    command = [sys.executable, "-m", "gateway", "sftp", "hash-password"]
    done = subprocess.run(command, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = done.stdout.strip()
    assert stored.startswith("scrypt$") and PASSWORD not in done.stdout + done.stderr
    assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "!", stored)
    short = subprocess.run(command, input="short\n", capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "8 to 1024 characters" in short.stderr and short.stdout == ""


async def test_the_poller_logs_in_with_a_password_from_the_environment(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partner globex is polled on our own drop box, where acme has only a password."""
    host_key = ensure_host_key(tmp_path / "var" / "sftp")
    port = free_port()
    root = tmp_path / "partners"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "profile.toml").write_text(
        profile_toml("acme", "ACME", ACME_KEY)
        + f'[sftp]\nmode = "hosted"\npassword_hash = "{hash_password(PASSWORD)}"\n'
    )
    (root / "globex").mkdir(parents=True)
    table = poll_table(
        port=port, username="acme", private_key="-", host_key=f"{host_key.get_name()} {host_key.get_base64()}",
        inbound="/outbound", outbound="/inbound",
    ).replace('private_key = "-"', 'password_env = "GLOBEX_SFTP_PASSWORD"')  # fmt: skip
    (root / "globex" / "profile.toml").write_text(profile_toml("globex", "GLOBEX", GLOBEX_KEY) + table)
    outbound = tmp_path / "var" / "sftp" / "acme" / "outbound"
    outbound.mkdir(parents=True)
    (outbound / "po-6.edi").write_bytes(order_850("GLOBEX", 6))
    monkeypatch.setenv("GLOBEX_SFTP_PASSWORD", PASSWORD)

    settings = make_settings(
        tmp_path, root, sftp={"host": "127.0.0.1", "port": port}, outbound={"workers": 0}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides()))
    gw = client.app[GATEWAY]
    report = await gw.sftp_poller.poll("globex")
    assert report.refused is None
    assert not (outbound / "po-6.edi").exists()
    async with client.app[DATABASE].read() as conn:
        rows = (await conn.execute(select(Message.partner_id, Message.transport_id))).all()
    assert [tuple(r) for r in rows] == [("globex", "po-6.edi")]

    monkeypatch.setenv("GLOBEX_SFTP_PASSWORD", "not it any more")  # read again at each login
    (outbound / "po-7.edi").write_bytes(order_850("GLOBEX", 7))
    report = await gw.sftp_poller.poll("globex")
    assert report.refused is not None and (outbound / "po-7.edi").exists()


def test_partners_check_refuses_a_password_hash_that_is_not_a_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    folder = tmp_path / "partners" / "acme"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text(
        profile_toml("acme", "ACME", ACME_KEY) + hosted_table(password_hash=PASSWORD)
    )
    assert main(["partners", "check", str(tmp_path / "partners")]) == 1
    out, err = capsys.readouterr()
    assert (
        "sftp.password_hash: must be an scrypt hash (scrypt$N$r$p$salt$hash), never the password itself"
        in err
    )
    assert "gateway sftp hash-password" in err and PASSWORD not in out + err
    (folder / "profile.toml").write_text(
        profile_toml("acme", "ACME", ACME_KEY) + hosted_table(password_hash=hash_password(PASSWORD))
    )
    assert main(["partners", "check", str(tmp_path / "partners")]) == 0
