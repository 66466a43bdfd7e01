"""One disk flush per CLOSE or two (gateway.transports.sftp_flush, decision 0020): told
from real file systems mounted for the test (loop-mounted ext4 with and without a
journal, tmpfs; needs root, skipped otherwise), and a CLOSE on a journaled ext4 still
stores its file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from mounts import mounted
from test_sftp_filesystems import upload_is_stored_once
from test_sftp_hosted import hosted_partners, keys, start

from gateway.transports.sftp_flush import mount_type, names_durable_with_file, one_flush

__all__ = ["hosted_partners", "keys"]  # fixtures

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683772k
46 27 7:0 / /mnt/with\\040space rw,relatime shared:1 - xfs /dev/loop0 rw
"""


def test_the_mount_of_a_device_is_read_from_mountinfo() -> None:
    assert mount_type(MOUNTINFO, 254, 0) == "ext4"
    assert mount_type(MOUNTINFO, 0, 23) == "tmpfs"
    assert mount_type(MOUNTINFO, 7, 0) == "xfs"  # optional fields before the "-"
    assert mount_type(MOUNTINFO, 7, 1) is None


def test_only_a_journal_or_xfs_saves_the_folder_sync() -> None:
    assert one_flush("ext4", journal=True)
    assert one_flush("xfs", journal=False)
    assert not one_flush("ext4", journal=False)  # ext4 created without a journal
    assert not one_flush("btrfs", journal=False)
    assert not one_flush("tmpfs", journal=False)
    assert not one_flush(None, journal=True)


@pytest.mark.parametrize(("kind", "one"), [("ext4", True), ("ext4-nojournal", False), ("tmpfs", False)])
def test_the_folder_sync_is_skipped_only_where_the_journal_carries_the_rename(
    tmp_path: Path, kind: str, one: bool
) -> None:
    with mounted(tmp_path / "fs", kind) as where:
        (where / "inbound").mkdir()
        assert names_durable_with_file(where / "inbound") is one


async def test_a_close_on_a_journaled_ext4_stores_its_file_with_one_flush(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any, caplog: Any
) -> None:
    (tmp_path / "var").mkdir()
    caplog.set_level(logging.INFO)
    with mounted(tmp_path / "var" / "sftp", "ext4"):
        client = await start(aiohttp_client, tmp_path, hosted_partners)  # sync_uploads: the default
        await upload_is_stored_once(client, tmp_path, keys, "one.edi", b"ISA*stored after one fsync" * 100)
        assert any("one disk flush" in r.getMessage() for r in caplog.records)  # the drop box's choice
        await client.close()
