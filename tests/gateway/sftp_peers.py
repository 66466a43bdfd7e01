"""Real SFTP peers for the SFTP tests: keys from ssh-keygen, OpenSSH's ``sftp``
client in batch mode, a throwaway OpenSSH ``sshd`` on a loopback port, and
profile tables for hosted and polled partners."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def need_openssh() -> None:
    if shutil.which("sftp") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH client (sftp, ssh-keygen) is not installed: apt-get install openssh-client")


def need_sshd() -> None:
    need_openssh()
    if not SSHD.exists():
        pytest.skip("/usr/sbin/sshd is missing: apt-get install openssh-server (.ci/run does it)")
    if os.geteuid() != 0:
        pytest.skip("the test sshd runs as root (it logs in as root with its own config)")


def keygen(directory: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    """(private key path, public key line) of a fresh key without a passphrase."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path, (directory / f"{name}.pub").read_text().strip()


def hosted_table(
    *keys: str,
    archive: bool = False,
    delivery: bool = True,
    password_hash: str | None = None,
    max_connections: int | None = None,
) -> str:
    lines = ["[sftp]", 'mode = "hosted"', "authorized_keys = [" + ", ".join(f'"{k}"' for k in keys) + "]"]
    if max_connections is not None:
        lines.append(f"max_connections = {max_connections}")
    if password_hash is not None:
        lines.append(f'password_hash = "{password_hash}"')
    if archive:
        lines.append("archive = true")
    if delivery:
        lines += ["[delivery]", 'channel = "sftp"']
    return "\n".join(lines) + "\n"


def poll_table(
    *,
    port: int,
    username: str,
    private_key: str,
    host_key: str,
    inbound: str,
    outbound: str,
    settle: float = 0.2,
    archive: str | None = None,
) -> str:
    return (
        "\n".join(
            [
                "[sftp]",
                'mode = "poll"',
                'host = "127.0.0.1"',
                f"port = {port}",
                f'username = "{username}"',
                f'private_key = "{private_key}"',
                f'host_key = "{host_key}"',
                f'inbound_path = "{inbound}"',
                f'outbound_path = "{outbound}"',
                f"settle_seconds = {settle}",
                *([f'archive_path = "{archive}"'] if archive else []),
                "interval_seconds = 3600",
                "[delivery]",
                'channel = "sftp"',
            ]
        )
        + "\n"
    )


@dataclass
class SftpRun:
    returncode: int
    output: str


async def sftp_batch(
    port: int, user: str, key: Path, commands: list[str], workdir: Path, *options: str
) -> SftpRun:
    """Run OpenSSH ``sftp -b`` with ``commands`` (without blocking the event loop,
    which the drop box needs to store the files); ``options`` go to ``sftp`` first."""
    batch = workdir / f"batch-{time.monotonic_ns()}"
    batch.write_text("\n".join(commands) + "\n")
    proc = await asyncio.create_subprocess_exec(
        "sftp", *options, "-b", str(batch), "-i", str(key), "-P", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
        f"{user}@127.0.0.1",
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return SftpRun(proc.returncode or 0, out.decode(errors="replace"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    port: int
    host_key_line: str  # its ed25519 host key, as a profile pins it
    client_key: Path  # the key our gateway logs in with
    user: str
    home: Path  # absolute paths on the server are real paths (no chroot)


def _key(directory: Path, name: str) -> tuple[Path, str]:
    if (directory / name).exists():  # a restarted server keeps its keys
        return directory / name, (directory / f"{name}.pub").read_text().strip()
    return keygen(directory, name)


@contextlib.contextmanager
def running_sshd(directory: Path, *, port: int | None = None, sftp_args: str = "") -> Iterator[Sshd]:
    """A real OpenSSH sshd on a loopback port, running as root with its own config,
    host key and authorized keys; sftp via internal-sftp (``sftp_args``, e.g.
    ``-P remove`` to refuse deletes). Started again in the same ``directory`` it
    keeps its keys and files."""
    need_sshd()
    directory.mkdir(parents=True, exist_ok=True)
    host_key, host_line = _key(directory, "ssh_host_ed25519_key")
    client_key, client_line = _key(directory, "gateway_client")
    authorized = directory / "authorized_keys"
    authorized.write_text(client_line + "\n")
    home = directory / "home"
    home.mkdir(exist_ok=True)
    port = port or free_port()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {directory / 'sshd.pid'}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin yes",
                f"Subsystem sftp internal-sftp {sftp_args}".rstrip(),
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"sshd did not start: {err}")
            time.sleep(0.05)
        yield Sshd(port, host_line, client_key, "root", home)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
