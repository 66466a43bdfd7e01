"""The mark of a completed upload: each CLOSE sets ``user.gateway.sha256`` (an
extended attribute) to its file's SHA-256 before renaming it into /inbound, so that a
file found there later can be told from one cut short by a crash (decisions 0012,
0017). Reading files found in /inbound (:func:`read_swept`) is here too, and the
retention of files set aside unmarked (:func:`prune_unconfirmed`, run by
gateway.retention's prune).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import time
from pathlib import Path

from gateway.transports.sftp_wire import SMALL_FILE

log = logging.getLogger(__name__)

MARK = "user.gateway.sha256"
UNCONFIRMED = ".unconfirmed"  # in a partner's box: unmarked files not taken (gateway.transports.sftp_takes)


def read_file(path: Path) -> tuple[bytes | None, str]:
    """(the bytes when small, else None; their SHA-256)."""
    sha = hashlib.sha256()
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        if os.fstat(fh.fileno()).st_size <= SMALL_FILE:
            data = fh.read()
            sha.update(data)
            return data, sha.hexdigest()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return None, sha.hexdigest()


UNMARKED = "unmarked"  # read_swept: no mark where marks are kept


def read_swept(
    path: Path, grace: float, *, require_mark: bool = False
) -> tuple[bytes | None, str] | str | None:
    """:func:`read_file` of a file found in /inbound (not handed over by its CLOSE),
    or None when it carries a mark its bytes do not match: an upload cut short by a
    crash before its CLOSE was answered. Such a file is deleted once unchanged for
    ``grace`` seconds (a younger one may be a CLOSE under way on another instance).
    :data:`UNMARKED` with ``require_mark`` when the file has no mark on a file system
    that keeps them (gateway.transports.sftp_takes says why)."""
    data, sha = read_file(path)
    try:
        mark = os.getxattr(path, MARK, follow_symlinks=False).decode()
    except OSError as exc:
        if require_mark and exc.errno == errno.ENODATA:
            return UNMARKED
        return data, sha  # not marked: sync_uploads off, or no extended attributes here
    if mark == sha:
        return data, sha
    with contextlib.suppress(OSError):
        if time.time() - os.lstat(path).st_ctime > grace:
            os.unlink(path)
            log.warning("sftp: %s does not match its mark: an upload cut short by a crash, discarded", path)
    return None


def mark_file(fd: int, sha: str) -> bool:
    """Set the mark; False where the file system has no extended attributes (the
    CLOSE then syncs the file before the rename and the folder after it)."""
    try:
        os.setxattr(fd, MARK, sha.encode())
    except OSError:
        return False
    return True


def prune_unconfirmed(root: Path, before: float, *, dry_run: bool = False) -> tuple[int, int] | None:
    """Remove the files of every partner's ``.unconfirmed`` folder under ``root`` (the
    drop box's ``<data_dir>/sftp``) set aside (moved there, or changed since) before
    ``before`` (a time): (files, bytes) removed, or that would be with ``dry_run``;
    None when there is no drop-box folder. Only regular files: a symlink or folder an
    operator put there is left alone. Another instance removing the same file meanwhile
    (a shared ``data_dir/sftp``) is not an error."""
    if not root.is_dir():
        return None
    files = size = 0
    for box in os.scandir(root):
        folder = Path(box.path) / UNCONFIRMED
        if box.name.startswith(".") or not box.is_dir(follow_symlinks=False) or not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            with contextlib.suppress(FileNotFoundError):
                found = entry.stat(follow_symlinks=False)
                # ctime: the rename into .unconfirmed (mtime is the upload's last write)
                if not entry.is_file(follow_symlinks=False) or max(found.st_mtime, found.st_ctime) >= before:
                    continue
                if not dry_run:
                    os.unlink(entry.path)
                files, size = files + 1, size + found.st_size
    return files, size
