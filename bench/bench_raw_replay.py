"""Raw journal replay benchmark (not a test): what a start costs after a crash left
``--rows`` small payloads in ``raw_journal`` (decision 0018: up to ~5 s of accepts per
process; since 0025 only rows from before migration 0014, ``kept`` false, are
replayed). Rows are inserted as 0018's intake did, their files placed unsynced; ``--torn`` of them are then truncated (what a power cut may do). The timed
part is ``RawJournal.recover()`` on a fresh store object, as ``gateway serve`` runs it.

The peer measured in the same run: placing the same files unsynced once more (the
work the accepts did), so the ratio says how many accepts' worth of file work a
replayed row costs. Prints wall seconds, wall and CPU (this process) µs per row.

Usage: python bench/bench_raw_replay.py [--rows 10000] [--torn 100] [--size 1500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from gateway.db import schema
from gateway.db.engine import open_database
from gateway.db.models import JournaledPayload
from gateway.raw_journal import RawJournal
from gateway.rawstore import RawRef, RawStore


def place_unsynced(store: RawStore, refs: list[RawRef]) -> None:
    """What 0018's intake did for each small payload before its commit (the raw store
    no longer does it): the file written under a temp name and renamed into place,
    not synced."""
    for ref in refs:
        final = store.path_for(ref.sha256)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        temp = final.with_name(final.name + ".placing")
        temp.write_bytes(ref.data or b"")
        os.replace(temp, final)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        db = open_database(args.database_url or f"sqlite+aiosqlite:///{tmp}/gateway.db")
        await schema.upgrade(db)
        store = RawStore(Path(tmp) / "raw")
        store.open_store()
        journal = RawJournal(db, store)
        refs = []
        for n in range(args.rows):
            data = (b"ISA*%08d*" % n).ljust(args.size, b"x")
            sha = hashlib.sha256(data).hexdigest()
            refs.append(RawRef(sha, len(data), str(store.root), data=data))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        place_unsynced(store, refs)
        place_wall, place_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        for start in range(0, len(refs), 1000):
            async with db.write() as conn:
                rows = [{**r, "kept": False} for r in journal.rows(refs[start : start + 1000])]
                await conn.execute(insert(JournaledPayload), rows)
        for ref in refs[: args.torn]:
            ref.path.write_bytes(b"")
        store.close()

        again = RawStore(Path(tmp) / "raw")
        again.open_store()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        repaired = await RawJournal(db, again).recover()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        again.close()
        await db.close()
    per = 1e6 / args.rows
    print(
        f"rows {args.rows}, torn {args.torn} (rewritten {repaired}), {args.size} B, {'postgresql' if args.database_url else 'sqlite'}"
    )
    print(f"replay: {wall:.2f} s wall, {wall * per:.0f} µs/row wall, {cpu * per:.0f} µs/row CPU")
    print(
        f"peer (placing the files unsynced): {place_wall * per:.0f} µs/row wall, {place_cpu * per:.0f} µs/row CPU"
    )
    print(f"ratio replay/peer: wall {wall / place_wall:.1f}, CPU {cpu / place_cpu:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--torn", type=int, default=100)
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
