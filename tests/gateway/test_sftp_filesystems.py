"""The drop box's own folder (data_dir/sftp) on other file systems. Needs root to
mount them; skipped otherwise.

- A tiny tmpfs that fills up during an upload: a write the disk could take only in
  part, or not at all, is never answered OK, and an upload cut short that way is
  never taken, even when the client then sends its CLOSE (OpenSSH's and paramiko's
  clients both close the handle after a failed write).
- ramfs, which has no user extended attributes (as tmpfs before Linux 6.6): with
  ``sync_uploads`` the CLOSE cannot mark the upload and falls back to sync, rename,
  sync; the file is stored, unmarked."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import paramiko
import pytest
from mounts import mounted
from test_disk_full import TMPFS_SIZE, fill
from test_sftp_hosted import box, gone_from_inbound, hosted_partners, keys, messages, start

from gateway.app import GATEWAY

__all__ = ["hosted_partners", "keys"]  # fixtures

FREE = 40 * 1024  # left free on the drop box's file system: ten tmpfs pages
CHUNK = 32 * 1024  # paramiko's largest SFTP write


def upload(port: int, key: Path, name: str, body: bytes) -> str:
    """Write ``body`` in CHUNK-sized writes, then close: "ok" or the first error."""
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username="acme", pkey=paramiko.PKey.from_path(key))
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        handle = sftp.open(f"/inbound/{name}", "wb")
        outcome = "ok"
        try:
            for start_at in range(0, len(body), CHUNK):
                handle.write(body[start_at : start_at + CHUNK])
        except OSError as exc:
            outcome = f"write refused: {exc}"
        try:
            handle.close()
        except OSError as exc:
            outcome = outcome if outcome != "ok" else f"close refused: {exc}"
        return outcome
    finally:
        transport.close()


async def upload_is_stored_once(client: Any, tmp_path: Path, keys: Any, name: str, body: bytes) -> None:
    """acme uploads ``body`` as ``name``: the CLOSE is answered OK, the file leaves
    /inbound, and one message of that name is stored."""
    port = client.app[GATEWAY].sftp_server.port
    assert await asyncio.to_thread(upload, port, keys["acme"][0], name, body) == "ok"
    await gone_from_inbound(tmp_path, "acme")
    assert len([m for m in await messages(client) if m.transport_id == name]) == 1


@pytest.mark.parametrize(
    "size",
    [
        FREE + 8 * 1024,  # the last write fits only in part: a short write
        3 * CHUNK,  # a short write, then a write refused with ENOSPC
    ],
)
async def test_an_upload_the_disk_cannot_hold_is_refused_and_never_taken(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any, size: int
) -> None:
    (tmp_path / "var").mkdir()
    with mounted(tmp_path / "var" / "sftp", "tmpfs", TMPFS_SIZE):
        client = await start(aiohttp_client, tmp_path, hosted_partners)
        gw = client.app[GATEWAY]
        fill(tmp_path / "var" / "sftp" / "filler", FREE)
        body = bytes(range(256)) * (size // 256)
        outcome = await asyncio.to_thread(upload, gw.sftp_server.port, keys["acme"][0], "big.edi", body)
        await asyncio.sleep(0.5)  # a take, had one been scheduled
        stored = [m for m in await messages(client) if m.transport_id == "big.edi"]
        assert outcome != "ok"
        assert stored == []
        assert not any((box(tmp_path, "acme") / "inbound").iterdir())
        await client.close()


async def test_without_extended_attributes_a_synced_upload_is_stored_unmarked(
    aiohttp_client: Any, tmp_path: Path, hosted_partners: Path, keys: Any
) -> None:
    (tmp_path / "var").mkdir()
    with mounted(tmp_path / "var" / "sftp", "ramfs") as root:
        probe = root / "probe"
        probe.touch()
        with pytest.raises(OSError):
            os.setxattr(probe, "user.probe", b"1")  # what the fallback is for
        probe.unlink()
        client = await start(aiohttp_client, tmp_path, hosted_partners)  # sync_uploads: the default
        await upload_is_stored_once(client, tmp_path, keys, "plain.edi", b"ISA*not parsed here" * 100)
        await client.close()
