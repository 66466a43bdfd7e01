"""What the drop box's connection limits cost (not a test): with N real paramiko
sessions logged in, the CPU time of the checks one new connection and one login
run (``startup_refused``, ``login_refused`` over the open sessions, under the drop
box's lock) beside the CPU time of one paramiko key login measured in the same
run (client and server in this process: key exchange, host key, signature).

Usage: python -m bench.bench_sftp_limits [--sessions 200] [--checks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paramiko

from bench.bench_sftp_ceiling import OnePartner
from gateway.transports import sftp_limits
from gateway.transports.sftp_server import DropBox, DropBoxConfig
from gateway.transports.sftp_session import Session


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def login(port: int, key: Path) -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username="bench", pkey=paramiko.PKey.from_path(key))
    return transport


def checks(box: object, count: int) -> float:
    """Seconds of this thread's CPU per (startup check + login check)."""
    lock, sessions, limits = box._lock, box._sessions, box.config.limits  # type: ignore[attr-defined]
    probe = Session(transport=sessions[0].transport)  # a connection that is never stored
    started = time.thread_time()
    for _ in range(count):
        with lock:
            sftp_limits.startup_refused(sessions, limits)
            sftp_limits.login_refused(sessions, probe, "other", None, limits)
    return (time.thread_time() - started) / count


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-sftp-limits-"))
    transports: list[paramiko.Transport] = []
    try:
        key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        line = key.with_suffix(".pub").read_text().strip()
        # The drop box's server class in this process (as in its own process, decision
        # 0017), so that its sessions and lock can be read; nothing is taken.
        partners = OnePartner(" ".join(line.split()[:2]))
        box = DropBox(
            DropBoxConfig(
                host="127.0.0.1",
                port=0,
                root=work / "var" / "sftp",
                max_bytes=10**8,
                idle_timeout=300,
                partners=lambda: partners,
                hand_over=lambda *_: None,
                limits=sftp_limits.Limits(
                    max_connections=args.sessions + 1, max_connections_per_partner=args.sessions + 1
                ),
            )
        )
        box.start()
        try:
            port = box.port
            before, wall = cpu(), time.perf_counter()
            for _ in range(args.sessions):
                transports.append(await asyncio.to_thread(login, port, key))
            login_cpu = (cpu() - before) / args.sessions
            login_wall = (time.perf_counter() - wall) / args.sessions
            per_check = await asyncio.to_thread(checks, box, args.checks)
            print(f"machine: {platform.machine()}, CPython {platform.python_version()}")
            print(f"sessions logged in: {len(transports)} (one partner)")
            print(
                f"one key login:      {login_cpu * 1e3:.2f} ms CPU (client + server), {login_wall * 1e3:.1f} ms wall"
            )
            print(
                f"limit checks:       {per_check * 1e6:.1f} us CPU per connection + login ({args.checks} rounds)"
            )
            print(f"ratio:              {per_check / login_cpu:.4f} of a login's CPU")
        finally:
            box.close()
    finally:
        for transport in transports:
            transport.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200, help="logged-in sessions during the checks")
    parser.add_argument("--checks", type=int, default=2000, help="check rounds timed")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
