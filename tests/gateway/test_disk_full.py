"""A real ``gateway serve`` whose data_dir (SQLite database and raw store) sits on a
tiny tmpfs that fills up: every refused post is a ``503 storage_unavailable``,
never another 5xx; every ``202`` can be read back byte for byte, while the disk is
full, after space is freed and after a restart; ``/healthz`` keeps answering; and
the service takes posts again once space is freed, without a restart.

Needs root (to mount the tmpfs); skipped otherwise. The pipeline workers are off
(``pipeline.workers = 0``): only the intake writes, so how full the disk gets
depends on the posts alone and the run is deterministic. Most of the tmpfs is taken
by a filler file first, so a few dozen posts fill the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ACME_KEY, auth
from gwsamples import order_850
from mounts import mounted
from test_service_process import free_port, start, stop, wait_ready

pytestmark = pytest.mark.slow

TOKEN = "disk-full-test-token"
INTERNAL = {"Authorization": f"Bearer {TOKEN}"}
TMPFS_SIZE = "4m"
HEADROOM = 384 * 1024  # left free next to the filler: what the posts have to fill
SETS = 30  # 850 sets per interchange: bodies of about 5 KB, each a distinct payload
WAVE = 4  # concurrent posts per wave, so group commit batches hit the full disk too


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int) -> None:
    """Write a file taking all but ``leave`` bytes of the file system's free space."""
    size = max(free_bytes(path.parent) - leave, 0)
    with path.open("wb") as fh:
        chunk = b"\0" * (1024 * 1024)
        while size > 0:
            size -= fh.write(chunk[: min(size, len(chunk))])


async def post(session: aiohttp.ClientSession, port: int, body: bytes) -> tuple[int, Any]:
    async with session.post(
        f"http://127.0.0.1:{port}/partners/acme/edi", data=body, headers=auth(ACME_KEY)
    ) as resp:
        answer = await resp.json(content_type=None)
        if resp.status == 503:
            answer["retry_after"] = resp.headers.get("Retry-After")
        return resp.status, answer


async def read_back(session: aiohttp.ClientSession, port: int, accepted: dict[str, bytes]) -> list[str]:
    """What is wrong with reading each accepted message back (empty: nothing)."""
    problems: list[str] = []
    base = f"http://127.0.0.1:{port}/api/v1/messages"
    for message_id, body in accepted.items():
        async with session.get(f"{base}/{message_id}", headers=INTERNAL) as resp:
            if resp.status != 200:
                problems.append(f"{message_id}: GET -> {resp.status} {await resp.text()}")
                continue
            found = await resp.json()
            if found["id"] != message_id or found["size"] != len(body):
                problems.append(f"{message_id}: GET -> {found}")
        async with session.get(f"{base}/{message_id}/raw", headers=INTERNAL) as resp:
            raw = await resp.read()
            if resp.status != 200 or raw != body:
                problems.append(f"{message_id}: /raw -> {resp.status}, {len(raw)} bytes, want {len(body)}")
    return problems


async def status_of(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as resp:
        return resp.status


def test_disk_full_is_503_and_every_202_was_stored(tmp_path: Path, partners_dir: Path) -> None:
    with mounted(tmp_path / "disk", "tmpfs", TMPFS_SIZE) as disk:
        data_dir = disk / "var"
        port = free_port()
        env = {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_PARTNERS_DIR": str(partners_dir),
            "GATEWAY_API__TOKEN": TOKEN,
            # /readyz then says "not ready" exactly when the tmpfs has (almost) no room left
            "GATEWAY_STORAGE__MIN_FREE_MB": "1",
            "GATEWAY_STORAGE__PRUNE_INTERVAL_MINUTES": "0",
        }
        accepted: dict[str, bytes] = {}  # message id -> the bytes that got the 202
        statuses: list[int] = []
        refusals: list[tuple[int, Any]] = []
        control = iter(range(1, 100_000))

        def next_body() -> bytes:
            n = next(control)
            return order_850("ACME", n, po=f"PO-FULL-{n}", sets=SETS)

        proc = start(tmp_path, port, workers=0, extra_env=env)
        try:
            wait_ready(port, proc)
            filler = disk / "filler"

            async def scenario() -> dict[str, Any]:
                seen: dict[str, Any] = {}
                async with aiohttp.ClientSession() as session:
                    body = next_body()
                    status, answer = await post(session, port, body)
                    assert status == 202, answer
                    accepted[answer["message_id"]] = body

                    fill(filler, HEADROOM)
                    consecutive_refused = 0
                    started = time.monotonic()
                    while consecutive_refused < 3 * WAVE:
                        assert time.monotonic() - started < 15, f"disk never filled: {statuses}"
                        bodies = [next_body() for _ in range(WAVE)]
                        answers = await asyncio.gather(*(post(session, port, b) for b in bodies))
                        for body, (status, answer) in zip(bodies, answers, strict=True):
                            statuses.append(status)
                            if status == 202:
                                accepted[answer["message_id"]] = body
                                consecutive_refused = 0
                            else:
                                refusals.append((status, answer))
                                consecutive_refused += 1

                    # Full: still alive, not ready, and every 202 so far reads back.
                    seen["healthz_full"] = await status_of(session, f"http://127.0.0.1:{port}/healthz")
                    seen["readyz_full"] = await status_of(session, f"http://127.0.0.1:{port}/readyz")
                    seen["problems_full"] = await read_back(session, port, accepted)
                    seen["leftover_tmp"] = {
                        p.name: p.stat().st_size for p in (data_dir / "raw" / "tmp").iterdir()
                    }

                    # Space back: posts are taken again by the same process.
                    filler.unlink()
                    tries = 0
                    while True:
                        tries += 1
                        body = next_body()
                        status, answer = await post(session, port, body)
                        if status == 202:
                            accepted[answer["message_id"]] = body
                            break
                        assert status == 503 and tries < 50, (status, answer)
                        await asyncio.sleep(0.1)
                    seen["recovery_tries"] = tries
                    for _ in range(WAVE):
                        body = next_body()
                        status, answer = await post(session, port, body)
                        assert status == 202, (status, answer)
                        accepted[answer["message_id"]] = body
                    seen["readyz_after"] = await status_of(session, f"http://127.0.0.1:{port}/readyz")
                    seen["problems_after"] = await read_back(session, port, accepted)
                return seen

            seen = asyncio.run(scenario())
        finally:
            _, err = stop(proc)

        print(
            f"\n{statuses.count(202)} x 202, {statuses.count(503)} x 503 while filling;"
            f" recovered after {seen.get('recovery_tries')} post(s); {len(accepted)} accepted in all;"
            f" left in raw/tmp while full: {seen.get('leftover_tmp')}"
        )
        assert set(statuses) <= {202, 503}, f"statuses while filling: {statuses}"
        assert refusals, "the disk never filled"
        for _, answer in refusals:
            assert answer["error"]["code"] == "storage_unavailable", answer
            assert answer["error"]["message"] and answer["retry_after"], answer
        assert statuses.count(202) > 0, "the headroom took no post at all: nothing was tested"
        assert seen["healthz_full"] == 200
        assert seen["readyz_full"] == 503
        assert seen["problems_full"] == []
        assert seen["readyz_after"] == 200
        assert seen["problems_after"] == []
        assert "Traceback" not in err and "unhandled error" not in err, err[-3000:]

        # A restart on the same data dir (journal replay, SQLite WAL recovery) keeps them all.
        proc = start(tmp_path, port, workers=0, extra_env=env)
        try:
            wait_ready(port, proc)

            async def after_restart() -> list[str]:
                async with aiohttp.ClientSession() as session:
                    return await read_back(session, port, accepted)

            assert asyncio.run(after_restart()) == []
        finally:
            stop(proc)
        for file in (data_dir / "raw").glob("??/*"):
            assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name
        assert seen["leftover_tmp"] == {}, "a refused write left its partial copy behind"
        # and a restart leaves nothing in raw/tmp either
        assert list((data_dir / "raw" / "tmp").iterdir()) == []
