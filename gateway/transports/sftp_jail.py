"""The hosted drop box's file layout and the jail that maps a partner's SFTP paths
onto it. No sockets and no SSH here: paths in, places or refusals out.

A partner's view is a fixed tree::

    /            (read-only)
    /inbound     it uploads here; a file is taken when its upload is closed
    /outbound    acks and our documents wait here; it reads and deletes them
    /archive     (only with ``archive = true``) files we took, read-only

On disk, under ``<data_dir>/sftp/<partner id>/``, beside hidden ``.incoming`` and
``.outgoing`` folders for files in transit (never visible over SFTP).

The rule this module keeps: a path names one of those areas and at most one plain
file name inside it. No ``..``, no names starting with ``.``, no deeper paths, no
other partner's tree; anything else is refused before the file system is touched.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from paramiko.sftp import SFTP_NO_SUCH_FILE, SFTP_PERMISSION_DENIED

INBOUND, OUTBOUND, ARCHIVE = "inbound", "outbound", "archive"
INCOMING, OUTGOING, HELD = ".incoming", ".outgoing", ".held"
# An upload under this suffix is held (not taken) until the client renames it to
# its final name: WinSCP's "transfer to temporary filename".
TEMP_SUFFIX = ".filepart"


class Refused(Exception):
    """A path the jail refuses, with the SFTP status code to answer."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved path: the area ("" for the root) and the file name ("" for the area itself)."""

    area: str
    name: str
    path: Path  # on disk

    @property
    def virtual(self) -> str:
        return "/" + "/".join(p for p in (self.area, self.name) if p)


def box_dir(sftp_root: Path, partner_id: str) -> Path:
    return sftp_root / partner_id


def ensure_box(box: Path, *, archive: bool) -> None:
    for area in (INBOUND, OUTBOUND, INCOMING, OUTGOING, HELD, *((ARCHIVE,) if archive else ())):
        (box / area).mkdir(parents=True, exist_ok=True, mode=0o700)


def areas(archive: bool) -> tuple[str, ...]:
    return (INBOUND, OUTBOUND, ARCHIVE) if archive else (INBOUND, OUTBOUND)


def resolve(box: Path, path: str, *, archive: bool) -> Place:
    """Map an SFTP path (absolute, or relative to "/") into ``box``; raise Refused."""
    if "\x00" in path or "\\" in path:
        raise Refused(SFTP_PERMISSION_DENIED, "invalid characters in path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(SFTP_PERMISSION_DENIED, "'..' is not allowed")
    if any(p.startswith(".") for p in parts):
        raise Refused(SFTP_PERMISSION_DENIED, "hidden names are not allowed")
    if not parts:
        return Place("", "", box)
    area = parts[0]
    if area not in areas(archive):
        raise Refused(SFTP_PERMISSION_DENIED, f"only {', '.join('/' + a for a in areas(archive))} exist")
    if len(parts) > 2:
        raise Refused(SFTP_PERMISSION_DENIED, "no sub-folders")
    name = parts[1] if len(parts) == 2 else ""
    if area == INBOUND and name.endswith(TEMP_SUFFIX):
        return Place(area, name, box / HELD / name)
    return Place(area, name, box / area / name if name else box / area)


def plain_name(name: object) -> bool:
    """A name ``resolve`` lets a CLOSE put into /inbound: one path part, not hidden,
    not a held upload's (what the serve process accepts from the drop-box process)."""
    return (
        isinstance(name, str)
        and 0 < len(name.encode("utf-8", "surrogatepass")) <= 255
        and not any(c in name for c in "/\\\x00")
        and not name.startswith(".")
        and not name.endswith(TEMP_SUFFIX)
    )


def regular_file(path: Path) -> os.stat_result:
    """lstat of a plain file in the box; a symlink or anything else is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Refused(SFTP_NO_SUCH_FILE, "no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(SFTP_PERMISSION_DENIED, "not a plain file")
    return st
