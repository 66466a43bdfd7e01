"""Whether a CLOSE needs one disk flush or two (decision 0020).

With ``sync_uploads`` a CLOSE renames the marked upload into ``/inbound`` and then
fsyncs it (gateway.transports.sftp_session). POSIX promises the new name only after an
fsync of the folder too. Some file systems make it durable with the file's fsync:

- ext3/ext4 with a journal: the rename changes the file's inode (its ctime) in the
  running transaction; the file's fsync commits that transaction, and jbd2 commits in
  order, so the rename is on disk when the fsync returns;
- XFS: the rename logs the file's inode too; the fsync forces the log up to it.

There the folder's fsync is a second flush that adds nothing, and it is skipped.
Everywhere else (ext4 without a journal, as on the machine the benchmarks ran on;
btrfs, tmpfs, network file systems, anything this module cannot tell) both are done.
Read from ``/proc/self/mountinfo`` and ``/proc/fs/jbd2`` once per folder; never
raises (unknown means two flushes).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

JOURNALED = frozenset({"ext3", "ext4"})  # durable with the file's fsync when the journal is on
LOGGED = frozenset({"xfs"})  # always


def mount_type(mountinfo: str, major: int, minor: int) -> str | None:
    """The file system type of the device ``major:minor`` in a ``/proc/self/mountinfo``
    text (its third field; the type is the first field after the ``-``)."""
    wanted = f"{major}:{minor}"
    for line in mountinfo.splitlines():
        mine, sep, theirs = line.partition(" - ")
        fields = mine.split()
        if sep and len(fields) > 2 and fields[2] == wanted and theirs.split():
            return theirs.split()[0]
    return None


def one_flush(fstype: str | None, journal: bool) -> bool:
    """True when the fsync of a file just renamed makes its new name durable too."""
    return fstype in LOGGED or (fstype in JOURNALED and journal)


def has_journal(major: int, minor: int, proc: Path = Path("/proc"), sys: Path = Path("/sys")) -> bool:
    """An ext3/ext4 on this device keeps its journal on it (jbd2 lists ``<device>-8``)."""
    try:
        name = (sys / "dev" / "block" / f"{major}:{minor}").resolve(strict=True).name
    except OSError:
        return False
    return (proc / "fs" / "jbd2" / f"{name}-8").is_dir()


def names_durable_with_file(folder: Path) -> bool:
    """Whether an upload renamed into ``folder`` needs only its own fsync (module doc)."""
    try:
        dev = os.stat(folder).st_dev
        mountinfo = Path("/proc/self/mountinfo").read_text(errors="replace")  # odd bytes in mount points
    except OSError:
        return False
    major, minor = os.major(dev), os.minor(dev)
    fstype = mount_type(mountinfo, major, minor)
    journal = fstype in JOURNALED and has_journal(major, minor)
    one = one_flush(fstype, journal)
    log.info(
        "sftp: %s is on %s%s: %s per CLOSE with sync_uploads",
        folder,
        fstype or "an unknown file system",
        " with a journal" if journal else "",
        "one disk flush (the file's fsync)" if one else "two disk flushes (the file and its folder)",
    )
    return one
