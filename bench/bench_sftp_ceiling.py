"""The drop box's ceiling (not a test): the hosted SFTP server alone (its process and
the serve process's side of it, gateway.transports.sftp_process), with a take
that reads each file and stores nothing (no intake, no database, no raw store),
beside a local OpenSSH sshd, with the same client, files and rounds as
``bench.bench_sftp``. What is left between this and bench_sftp is the cost of storing;
what is left between this and sshd is paramiko and, with ``--sync-uploads``, the
flush per CLOSE.

Needs root (sshd), /usr/sbin/sshd, sftp and ssh-keygen.

Usage: python -m bench.bench_sftp_ceiling [--files 300] [--rounds 5] [--sync-uploads]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import bench_sftp as bench
from gateway.transports.sftp_limits import Limits
from gateway.transports.sftp_process import ChildSettings, DropBoxProcess

PARTNER = "bench"


class OnePartner:
    """The one hosted partner, as gateway.partners.PartnerDirectory answers for it."""

    def __init__(self, key_line: str) -> None:
        sftp = SimpleNamespace(
            mode="hosted", archive=False, password_hash=None, authorized_keys=[key_line], max_connections=None
        )
        self._entry = SimpleNamespace(transport=SimpleNamespace(sftp=sftp))
        self.entries = {PARTNER: self._entry}

    def entry(self, partner_id: str) -> Any:
        return self._entry if partner_id == PARTNER else None


async def read_only(partner_id: str, name: str, body: AsyncIterator[bytes], key: str) -> None:
    async for _ in body:
        pass


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sftp-ceiling-"))
    key = work / "client_key"
    line = bench.keygen(key)
    partners = OnePartner(" ".join(line.split()[:2]))
    box = DropBoxProcess(
        ChildSettings(
            host="127.0.0.1",
            port=0,
            root=work / "var" / "sftp",
            max_bytes=10**8,
            idle_timeout=300,
            close_after_store=False,
            sync_uploads=args.sync_uploads,
            limits=Limits(),
        ),
        partners=lambda: partners,
        accept=read_only,
    )
    await box.start()
    ours: list[float] = []
    theirs: list[float] = []
    (work / "sshd").mkdir()
    try:
        with bench.sshd(work / "sshd", line) as (port, _):
            for n in range(args.rounds):
                files = work / "files"
                bench.write_files(files, args.files, 5000, 1 + n * args.files)
                inbound = work / "var" / "sftp" / PARTNER / "inbound"
                ours.append(
                    args.files / await bench.upload(box.port, PARTNER, key, files, "/inbound/", work, inbound)
                )
                target = work / "sshd" / "drop"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                theirs.append(args.files / await bench.upload(port, "root", key, files, f"{target}/", work))
                print(
                    f"round {n + 1}: drop box (nothing stored) {ours[-1]:.0f} files/s, sshd {theirs[-1]:.0f} files/s"
                )
    finally:
        await box.aclose()
        shutil.rmtree(work, ignore_errors=True)
    ratios = sorted(o / t for o, t in zip(ours, theirs, strict=True))
    print(f"sync_uploads {args.sync_uploads}, {args.files} files of ~5 KB, one sftp session")
    print(f"drop box, nothing stored: {statistics.median(ours):.0f} files/s (median of {args.rounds})")
    print(f"OpenSSH sshd:             {statistics.median(theirs):.0f} files/s")
    print(
        f"ratio per round:          median {statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--sync-uploads", action="store_true", help="[sftp] sync_uploads = true (the default)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
