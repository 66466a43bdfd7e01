"""What a started ``gateway serve`` / ``gateway worker`` holds for life is frozen out of
the cyclic collector's walks (gateway.heap): a full collection then walks only what
the running service allocated, not the ~150,000 objects start-up built."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, auth
from gwsamples import order_850

from gateway import heap
from gateway.bootstrap import run_worker
from gateway.config import Settings
from gateway.service_cli import serve_app

STARTED = 20_000  # far fewer objects than a started service holds, far more than pytest's own churn


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Each test starts with nothing frozen and leaves nothing frozen (the suite runs on)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_freezes_what_survives_a_collection(unfrozen: None) -> None:
    kept = [[n] for n in range(1000)]
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() >= len(kept)
    # a collection no longer walks them: only objects made after the freeze are tracked
    assert len(gc.get_objects()) < frozen
    del kept


async def test_serve_freezes_its_heap_once_started_and_still_accepts(
    unfrozen: None, aiohttp_client: Any, settings: Settings
) -> None:
    app = serve_app(settings, allow_empty=False)
    assert gc.get_freeze_count() == 0  # built, not started: nothing frozen yet
    client = await aiohttp_client(app)
    assert gc.get_freeze_count() > STARTED
    resp = await client.post(
        "/partners/acme/edi",
        data=order_850("ACME", 1),
        headers={**auth(ACME_KEY), "Content-Type": "application/edi-x12"},
    )
    assert resp.status == 202, await resp.text()


async def test_worker_freezes_its_heap_once_started(
    unfrozen: None, tmp_path: Path, settings: Settings
) -> None:
    task = asyncio.create_task(run_worker(settings))
    try:
        for _ in range(400):
            if gc.get_freeze_count() > STARTED or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done(), task.exception()
        assert gc.get_freeze_count() > STARTED
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
