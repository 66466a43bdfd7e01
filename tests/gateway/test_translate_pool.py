"""The translate pool: plans computed in worker processes match the in-thread
plans, follow partner reloads, and survive a worker being killed."""

from __future__ import annotations

import os
import signal
import types
from pathlib import Path
from typing import Any

import pytest
from gwsamples import order_850, profile_toml

from gateway.domain.inbound import InboundMessage
from gateway.partners import PartnerDirectory, load_partners
from gateway.rawstore import RawStore
from gateway.translate_pool import TranslatePool, plan_stored
from translators.profile import OurIdentity

IDENTITY = OurIdentity(interchange_qualifier="ZZ", interchange_id="OURCOMPANY", group_id="OURCOMPANY")


def directory(tmp_path: Path, *partners: str) -> PartnerDirectory:
    root = tmp_path / f"partners-{'-'.join(partners) or 'none'}"
    root.mkdir()
    for name in partners:
        (root / name.lower()).mkdir()
        (root / name.lower() / "profile.toml").write_text(profile_toml(name.lower(), name, "key"))
    return load_partners(root, identity=IDENTITY)


async def stored(store: RawStore, body: bytes) -> Any:
    ref = await store.write_bytes(body, limit=1 << 20)
    return types.SimpleNamespace(id="01MESSAGE", partner_id="acme", kind="x12", raw_sha256=ref.sha256)


@pytest.fixture
async def setup(tmp_path: Path) -> Any:
    store = RawStore(tmp_path / "raw")
    store.open_store()
    pool = TranslatePool(1, tmp_path / "raw")
    yield store, pool
    pool.close()
    store.close()


async def test_plan_in_a_process_matches_the_plan_in_a_thread(tmp_path: Path, setup: Any) -> None:
    store, pool = setup
    partners = directory(tmp_path, "ACME")
    message = await stored(store, order_850("ACME", 7, sets=3))
    here = plan_stored(InboundMessage.of(message), partners, store.open)
    there = await pool.plan(message, partners)
    assert there.status == here.status == "translated"
    assert there.documents == here.documents
    # plain row values: ids are issued by the writer, in write order
    assert all("id" not in d for d in there.documents)
    assert [i.profile.id for i in there.interchanges] == ["acme"]


async def test_worker_follows_a_partner_reload(tmp_path: Path, setup: Any) -> None:
    store, pool = setup
    message = await stored(store, order_850("ACME", 8))
    before = await pool.plan(message, directory(tmp_path))
    assert before.status == "quarantined"
    after = await pool.plan(message, directory(tmp_path, "ACME"))
    assert after.status == "translated" and len(after.documents) == 1


async def test_killed_worker_is_replaced_and_the_job_runs(tmp_path: Path, setup: Any) -> None:
    store, pool = setup
    partners = directory(tmp_path, "ACME")
    message = await stored(store, order_850("ACME", 9))
    assert (await pool.plan(message, partners)).status == "translated"
    executor = pool._workers.executor
    assert executor is not None
    for pid in list(executor._processes):  # the worker processes of this pool
        os.kill(pid, signal.SIGKILL)
    plan = await pool.plan(message, partners)
    assert plan.status == "translated"
    assert pool.rebuilds == 1 and pool._workers.executor is not executor


async def test_a_partner_with_as2_certificates_is_planned_in_a_process(tmp_path: Path, setup: Any) -> None:
    # Loaded certificates cannot be pickled: the workers get the partnerships without them.
    from as2peer import add_as2_partner

    import as2

    store, pool = setup
    root = tmp_path / "partners-as2"
    add_as2_partner(root, as2.generate_self_signed("holdretail-pool"))
    partners = load_partners(root, identity=IDENTITY)
    entry = partners.entry("holdretail")
    assert entry is not None and entry.transport.as2 is not None
    assert entry.transport.as2.loaded_certificates()
    message = await stored(store, order_850("HOLDRETAIL", 8))
    plan = await pool.plan(message, partners)
    assert plan.status == "translated"
    assert entry.transport.as2.loaded_certificates()  # the gateway's own copy keeps them


async def test_a_batch_is_planned_in_one_call_per_process_in_order(tmp_path: Path, setup: Any) -> None:
    store, _ = setup
    pool = TranslatePool(2, tmp_path / "raw")
    try:
        partners = directory(tmp_path, "ACME")
        messages = [await stored(store, order_850("ACME", n, sets=n % 3 + 1)) for n in range(20, 25)]
        messages.append(
            types.SimpleNamespace(id="01GONE", partner_id="acme", kind="x12", raw_sha256="0" * 64)
        )
        planned = await pool.plan_many(messages, partners)
        alone = [plan_stored(InboundMessage.of(m), partners, store.open) for m in messages[:-1]]
        assert [p.documents for p in planned[:-1]] == [p.documents for p in alone]  # type: ignore[union-attr]
        assert isinstance(planned[-1], Exception)  # a payload that is gone: that message's error only
        executor = pool._workers.executor
        assert executor is not None
        for pid in list(executor._processes):
            os.kill(pid, signal.SIGKILL)
        again = await pool.plan_many(messages[:2], partners)
        assert [p.documents for p in again] == [p.documents for p in alone[:2]]  # type: ignore[union-attr]
        assert pool.rebuilds == 1  # both chunks saw the pool break: replaced once
    finally:
        pool.close()


async def test_a_payload_kept_in_the_database_travels_in_the_job(tmp_path: Path, setup: Any) -> None:
    """A small payload has no file (decision 0025): its bytes go to the worker with the
    message, alone and in a batch beside a message whose payload is a file."""
    store, pool = setup
    partners = directory(tmp_path, "ACME")
    body = order_850("ACME", 10, sets=2)
    row = types.SimpleNamespace(
        id="01ROW", partner_id="acme", kind="x12", raw_sha256="ab" * 32, raw_data=body
    )
    assert not store.exists(row.raw_sha256)
    plan = await pool.plan(row, partners)
    assert plan.status == "translated" and len(plan.documents) == 2
    assert plan.documents == plan_stored(InboundMessage.of(row), partners, store.open).documents
    filed = await stored(store, order_850("ACME", 11))
    both = await pool.plan_many([row, filed], partners)
    assert [len(p.documents) for p in both] == [2, 1]  # type: ignore[union-attr]
