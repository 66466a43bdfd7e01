"""SFTP drop box benchmark (not a test): how fast OpenSSH's ``sftp`` client can
drop files into the hosted box, beside the same upload into a local OpenSSH sshd.

Each round, one ``sftp -b`` session (key auth, one ``put`` of N files of ~5 KB)
uploads into:

- the gateway's drop box (gateway.bootstrap.running in this process, SQLite, a
  temporary data dir): timed until the client exits, at which point every file has
  been stored durably through the intake (raw file synced, row committed) and is
  gone from /inbound (checked: the inbound folder is empty and N messages exist);
- a throwaway OpenSSH sshd (internal-sftp) on another loopback port, writing the
  same files to a folder (sshd never fsyncs; our box makes each file durable).

Files per second are given for both and the ratio gateway / sshd, and the CPU time
(user + sys) each server spent per file: all threads of this process plus the
drop-box process it starts (gateway.transports.sftp_child; printed apart) for the drop
box, the sshd and its session processes for sshd; on a shared machine the CPU
figures vary less than the rates. ``--workers``
sets ``[pipeline] workers`` (0: accept only; otherwise the pipeline translates the
files while they arrive, on the same CPUs).

Needs root (sshd), /usr/sbin/sshd, sftp and ssh-keygen.
``--clients N`` splits the files over N concurrent ``sftp`` sessions (both sides).

Usage: python -m bench.bench_sftp [--files 300] [--size 5000] [--rounds 3] [--workers 0] [--clients 1]
       [--close-after-store] [--sync-uploads]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

from gwsamples import order_850, profile_toml  # noqa: E402

SSHD = Path("/usr/sbin/sshd")


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def write_files(folder: Path, count: int, size: int, first_control: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    one_set = len(order_850("BENCH", 1, sets=2)) - len(order_850("BENCH", 1, sets=1))
    sets = max(1, size // one_set)
    for n in range(count):
        (folder / f"po-{first_control + n:09d}.edi").write_bytes(
            order_850("BENCH", first_control + n, sets=sets)
        )


async def upload(
    port: int,
    user: str,
    key: Path,
    files: Path,
    target: str,
    work: Path,
    until_empty: Path | None = None,
    clients: int = 1,
) -> float:
    """Seconds from starting the clients until they exit and, when given,
    ``until_empty`` is empty. With several clients each puts its share of the files
    (every ``clients``-th name) in a session of its own, all at once."""
    names = sorted(p.name for p in files.iterdir())
    batches = []
    for n in range(clients):
        batch = work / f"batch-{n}"
        share = names[n::clients]
        lines = [f"put {files}/* {target}"] if clients == 1 else [f"put {files}/{x} {target}" for x in share]
        batch.write_text("\n".join(lines) + "\n")
        batches.append(batch)
    started = time.perf_counter()
    procs = [await _sftp(port, user, key, batch) for batch in batches]
    for proc in procs:
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"sftp failed ({proc.returncode}): {err.decode(errors='replace')}")
    if until_empty is not None and "--verbose" in sys.argv:
        print(f"  client exited after {time.perf_counter() - started:.2f}s")
    while until_empty is not None and any(until_empty.iterdir()):
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def _sftp(port: int, user: str, key: Path, batch: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sftp", "-q", "-b", str(batch), "-i", str(key), "-P", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
        f"{user}@127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_cpu() -> float:
    """CPU seconds (user + sys) of this process, all threads: the gateway runs here."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (sshd and its sessions)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sshd(work: Path, client_line: str) -> Iterator[tuple[int, int]]:
    host_key = work / "ssh_host_ed25519_key"
    keygen(host_key)
    (work / "authorized_keys").write_text(client_line + "\n")
    port = free_port()
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {work / 'authorized_keys'}\n"
        f"PidFile {work / 'sshd.pid'}\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n"
        "PermitRootLogin yes\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=5)


async def run(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from gateway.bootstrap import running
    from gateway.config import Settings
    from gateway.db.models import Message

    work = Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    try:
        key = work / "client_key"
        line = keygen(key)
        partners = work / "partners"
        (partners / "bench").mkdir(parents=True)
        (partners / "bench" / "profile.toml").write_text(
            profile_toml("bench", "BENCH", "unused-rest-key")
            + f'[sftp]\nmode = "hosted"\nauthorized_keys = ["{line}"]\n'
        )
        settings = Settings.model_validate(
            {
                "data_dir": str(work / "var"),
                "partners_dir": str(partners),
                "identity": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "OURCOMPANY",
                    "group_id": "OURCOMPANY",
                },
                "api": {"token": "bench"},
                "pipeline": {"workers": args.workers},
                "storage": {"prune_interval_minutes": 0},
                "sftp": {
                    "host": "127.0.0.1",
                    "port": 0,
                    "close_after_store": args.close_after_store,
                    "sync_uploads": args.sync_uploads,
                    # --clients N sessions of one partner log in at once: within the limits.
                    "max_connections_per_partner": max(10, args.clients),
                    "max_startups": max(20, args.clients),
                },
            }
        )
        ours: list[float] = []
        theirs: list[float] = []
        our_cpu: list[float] = []  # ms per file, both processes
        serve_cpu: list[float] = []  # of the serve process (this one)
        box_cpu: list[float] = []  # of the drop-box process
        commits: list[float] = []  # intake commits per file
        their_cpu: list[float] = []
        files = work / "files"
        (work / "sshd").mkdir()
        target = work / "sshd" / "drop"
        async with running(settings, role="serve") as gw:
            with sshd(work / "sshd", line) as (sshd_port, sshd_pid):
                for round_no in range(args.rounds):
                    write_files(files, args.files, args.size, 1 + round_no * args.files)
                    inbound = work / "var" / "sftp" / "bench" / "inbound"
                    child = getattr(gw.sftp_server, "pid", 0)  # 0: main before decision 0017
                    cpu, batches = own_cpu(), gw.intake.batches
                    child_cpu = process_cpu(child) if child else 0.0
                    took = await upload(
                        gw.sftp_server.port, "bench", key, files, "/inbound/", work, inbound, args.clients
                    )
                    async with gw.db.read() as conn:
                        stored = (await conn.execute(select(func.count()).select_from(Message))).scalar_one()
                    assert stored == args.files * (round_no + 1), stored
                    serve_cpu.append((own_cpu() - cpu) * 1000 / args.files)
                    box_cpu.append(((process_cpu(child) - child_cpu) if child else 0.0) * 1000 / args.files)
                    our_cpu.append(serve_cpu[-1] + box_cpu[-1])
                    commits.append((gw.intake.batches - batches) / args.files)
                    ours.append(args.files / took)
                    shutil.rmtree(target, ignore_errors=True)
                    target.mkdir()
                    cpu = process_cpu(sshd_pid)
                    took = await upload(
                        sshd_port, "root", key, files, f"{target}/", work, clients=args.clients
                    )
                    await asyncio.sleep(0.3)  # sshd reaps its session process (CPU counted then)
                    their_cpu.append((process_cpu(sshd_pid) - cpu) * 1000 / args.files)
                    theirs.append(args.files / took)
                    print(
                        f"round {round_no + 1}: drop box {ours[-1]:.0f} files/s, sshd {theirs[-1]:.0f} files/s; "
                        f"CPU per file: drop box {our_cpu[-1]:.2f} ms (serve {serve_cpu[-1]:.2f} + "
                        f"drop-box process {box_cpu[-1]:.2f}), sshd {their_cpu[-1]:.2f} ms"
                    )
        size = (files / sorted(p.name for p in files.iterdir())[0]).stat().st_size
        a, b = statistics.median(ours), statistics.median(theirs)
        print(
            f"files: {args.files} x {size} bytes, {args.clients} sftp session(s) at once, "
            f"pipeline workers {args.workers}, "
            f"close_after_store {args.close_after_store}, sync_uploads {args.sync_uploads}"
        )
        print(
            f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
        )
        print(f"gateway drop box: {a:.0f} files/s (median of {args.rounds})")
        print(f"OpenSSH sshd:     {b:.0f} files/s (median of {args.rounds})")
        ratios = sorted(o / t for o, t in zip(ours, theirs, strict=True))
        print(f"ratio:            {a / b:.2f}x sshd (medians); per round {ratios[0]:.2f}-{ratios[-1]:.2f}x")
        c, d = statistics.median(our_cpu), statistics.median(their_cpu)
        print(f"CPU per file:     drop box {c:.2f} ms, sshd {d:.2f} ms (medians; the client's not counted)")
        e, f = statistics.median(serve_cpu), statistics.median(box_cpu)
        print(f"                  drop box: serve process {e:.2f} ms + drop-box process {f:.2f} ms")
        print(f"intake commits:   {statistics.median(commits):.2f} per file (median)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--clients", type=int, default=1, help="concurrent sftp sessions sharing the files")
    parser.add_argument("--verbose", action="store_true", help="also print when the client exits")
    parser.add_argument(
        "--close-after-store", action="store_true", help="[sftp] close_after_store = true (strict CLOSE)"
    )
    parser.add_argument(
        "--sync-uploads",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="[sftp] sync_uploads (the default, fsync before the CLOSE's answer); --no-sync-uploads as OpenSSH",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
