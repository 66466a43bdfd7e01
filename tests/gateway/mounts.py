"""File systems mounted for a test: a tmpfs of a given size, a ramfs (no user
extended attributes), a loop-mounted ext4 with or without a journal. Mounting needs
root on Linux: without it, or where the mount fails, the test is skipped."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KINDS = ("tmpfs", "ramfs", "ext4", "ext4-nojournal")


@contextlib.contextmanager
def mounted(where: Path, kind: str, size: str = "16m") -> Iterator[Path]:
    """Mount a fresh ``kind`` file system on the new folder ``where`` (mode 0700;
    ``size`` for a tmpfs, an ext4 image is 32 MiB); unmounted at the end."""
    assert kind in KINDS, kind
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip(f"mounting a {kind} needs root on Linux")
    where.mkdir()
    if kind in ("tmpfs", "ramfs"):
        options = f"size={size},mode=0700" if kind == "tmpfs" else "mode=0700"
        command = ["mount", "-t", kind, "-o", options, kind, str(where)]
    else:
        if shutil.which("mkfs.ext4") is None:
            pytest.skip("no mkfs.ext4")
        image = where.with_suffix(".img")
        with open(image, "wb") as fh:
            fh.truncate(32 << 20)
        features = [] if kind == "ext4" else ["-O", "^has_journal"]
        subprocess.run(["mkfs.ext4", "-q", "-F", *features, str(image)], check=True, capture_output=True)
        command = ["mount", "-o", "loop", str(image), str(where)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {kind} here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
