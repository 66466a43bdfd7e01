"""SFTP poller benchmark (not a test): collecting files from a partner's server.

A throwaway OpenSSH sshd (internal-sftp) on a loopback port plays the partner. Two
measures, each beside a peer in the same run:

- ``--files`` files of ``--size`` bytes (850s) left in the partner's folder: one
  poll (gateway.transports.sftp_poll, in this process, SQLite, the scheduler
  stopped, ``settle_seconds = 0``) lists, downloads, stores each durably through the
  intake and deletes it on the server; beside OpenSSH's own ``sftp`` client
  collecting the same files in one session (``get`` then ``rm``, no durability).
  Files per second for both, and the ratio.
- one file of ``--big-mb`` MiB: one poll streams it into the raw store; the peak
  RSS growth of this process during the poll (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``) against the file's size, and the time beside
  ``sftp get`` of the same file.

Needs root (sshd), /usr/sbin/sshd, sftp and ssh-keygen.
Usage: python -m bench.bench_sftp_poll [--files 1000] [--size 50000] [--rounds 3] [--big-mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_sftp import keygen, sshd, write_files

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

from gwsamples import profile_toml  # noqa: E402
from sftp_peers import poll_table  # noqa: E402


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def sftp_collect(port: int, key: Path, remote: Path, local: Path, work: Path, remove: bool) -> float:
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir()
    batch = work / "get-batch"
    batch.write_text(f"get {remote}/* {local}/\n" + (f"rm {remote}/*\n" if remove else ""))
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "sftp", "-q", "-b", str(batch), "-i", str(key), "-P", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
        "root@127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"sftp failed ({proc.returncode}): {err.decode(errors='replace')}")
    return time.perf_counter() - started


def write_big(path: Path, mib: int) -> None:
    block = bytearray(b"ISA*00*" + bytes(range(256)) * 4096)[: 1 << 20]
    with path.open("wb") as fh:
        for n in range(mib):
            block[:8] = n.to_bytes(8, "big")  # distinct blocks
            fh.write(block)


async def run(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from gateway.bootstrap import running
    from gateway.config import Settings
    from gateway.db.models import Message

    work = Path(tempfile.mkdtemp(prefix="bench-sftp-poll-", dir=args.tmp))
    try:
        key = work / "client_key"
        line = keygen(key)
        (work / "sshd").mkdir()
        with sshd(work / "sshd", line) as port:
            host_key = (work / "sshd" / "ssh_host_ed25519_key.pub").read_text().strip()
            out, inbox = work / "out", work / "in"
            inbox.mkdir()
            partners = work / "partners"
            (partners / "bench" / "sftp").mkdir(parents=True)
            shutil.copy(key, partners / "bench" / "sftp" / "id_ed25519")
            (partners / "bench" / "profile.toml").write_text(
                profile_toml("bench", "BENCH", "unused-rest-key")
                + poll_table(
                    port=port,
                    username="root",
                    private_key="sftp/id_ed25519",
                    host_key=host_key,
                    inbound=str(out),
                    outbound=str(inbox),
                    settle=0,
                )
            )
            big_bytes = args.big_mb << 20
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
                    "pipeline": {"workers": 0},
                    "storage": {"prune_interval_minutes": 0},
                    "limits": {"max_edi_bytes": max(64 << 20, 2 * big_bytes)},
                }
            )
            print(
                f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
            )
            async with running(settings, role="serve") as gw:
                await gw.scheduler.stop()  # the bench polls by itself
                ours: list[float] = []
                theirs: list[float] = []
                stored = 0
                for round_no in range(args.rounds):
                    if args.files:
                        write_files(out, args.files, args.size, 1 + round_no * args.files)
                        took = await sftp_collect(port, key, out, work / "got", work, remove=False)
                        theirs.append(args.files / took)
                        started = time.perf_counter()
                        report = await gw.sftp_poller.poll("bench")
                        took = time.perf_counter() - started
                        assert len(report.taken) == args.files and not any(out.iterdir()), report
                        stored += args.files
                        async with gw.db.read() as conn:
                            count = (
                                await conn.execute(select(func.count()).select_from(Message))
                            ).scalar_one()
                        assert count == stored, count
                        ours.append(args.files / took)
                        print(
                            f"round {round_no + 1}: poller {ours[-1]:.0f} files/s, "
                            f"sftp client {theirs[-1]:.0f} files/s"
                        )
                if ours:
                    size = (work / "got" / sorted(p.name for p in (work / "got").iterdir())[0]).stat().st_size
                    a, b = statistics.median(ours), statistics.median(theirs)
                    ratios = sorted(o / t for o, t in zip(ours, theirs, strict=True))
                    print(f"files: {args.files} x {size} bytes per round, {args.rounds} rounds")
                    print(f"poller (download + durable store + remote delete): {a:.0f} files/s (median)")
                    print(f"OpenSSH sftp client (get only):                      {b:.0f} files/s (median)")
                    print(f"ratio: {a / b:.2f}x (medians); per round {ratios[0]:.2f}-{ratios[-1]:.2f}x")
                if args.big_mb:
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    write_big(out / "big.edi", args.big_mb)
                    peer = await sftp_collect(port, key, out, work / "got", work, remove=False)
                    shutil.rmtree(work / "got", ignore_errors=True)
                    before = status_kb("VmRSS")
                    Path("/proc/self/clear_refs").write_text("5")
                    started = time.perf_counter()
                    report = await gw.sftp_poller.poll("bench")
                    took = time.perf_counter() - started
                    growth = (status_kb("VmHWM") - before) * 1024
                    assert report.taken == ["big.edi"], report
                    mib = big_bytes / (1 << 20)
                    print(f"big file: {big_bytes} bytes")
                    print(
                        f"poller: {took:.1f} s ({mib / took:.0f} MiB/s), peak RSS growth {growth / (1 << 20):.1f} MiB"
                    )
                    print(f"peak RSS growth / file size: {growth / big_bytes:.4f}")
                    print(
                        f"sftp get of the same file: {peer:.1f} s ({mib / peer:.0f} MiB/s); poller / sftp time: {took / peer:.2f}x"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the big file in MiB (0: none)")
    parser.add_argument("--tmp", default=None, help="folder for the temporary data (default: the system's)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
