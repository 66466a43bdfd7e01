"""The raw store's journal: small bodies are durable through one append, and a
crash that loses (or truncates) their final files is repaired on the next start."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gateway.rawstore import RawStore


async def publish(store: RawStore, *bodies: bytes) -> list[str]:
    async def one(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    refs = [await store.stage(one(b), limit=1 << 20) for b in bodies]
    await store.publish(refs)
    return [r.sha256 for r in refs]


def crash(store: RawStore) -> None:
    """What dying does to the store: the segment is left as it is, its lock released."""
    segment = store._segment
    assert segment is not None
    os.close(segment.fd)
    store._segment = None
    store._pool.shutdown(wait=True)


async def test_lost_and_truncated_files_are_restored_from_the_journal(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    store = RawStore(root)
    store.open_store()
    shas = await publish(store, b"ISA*one~", b"ISA*two~", b"ISA*three~")
    with store.open(shas[0]) as fh:
        assert fh.read() == b"ISA*one~"
    # While the writer lives, another store on the same directory leaves its segment alone.
    neighbour = RawStore(root)
    neighbour.open_store()
    neighbour.close()
    assert len(os.listdir(root / "journal")) == 1
    crash(store)
    store.path_for(shas[0]).unlink()
    store.path_for(shas[1]).write_bytes(b"ISA*tw")  # torn by the crash
    with (root / "journal" / os.listdir(root / "journal")[0]).open("ab") as fh:
        fh.write(b"RAW1 " + b"0" * 64 + b" 100\nISA*never-acknow")  # a torn last record

    again = RawStore(root)
    again.open_store()
    try:
        for sha, body in zip(shas, (b"ISA*one~", b"ISA*two~", b"ISA*three~"), strict=True):
            assert again.path_for(sha).read_bytes() == body
            assert hashlib.sha256(body).hexdigest() == sha
        assert os.listdir(root / "journal") == []
    finally:
        again.close()


async def test_segments_rotate_and_are_deleted_once_synced(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw", journal_bytes=200)
    store.open_store()
    try:
        for n in range(10):
            await publish(store, f"ISA*body {n}~".encode() * 5)
    finally:
        store.close()
    assert store.checkpoints >= 2
    assert os.listdir(tmp_path / "raw" / "journal") == []
