"""AS2 messages opened and answered in worker processes (gateway.as2_pool): the
same results as on the event loop (payload, MIC, layers, signer, a signed MDN that
verifies), refusals with their disposition, a partner's new certificate set used at
once, a killed worker costing no answer, and workers that die with the gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from worker_orphans import assert_workers_exit_with_the_gateway

import as2
from gateway.as2_pool import As2Pool
from gateway.as2_receive import Incoming, Opened, Refused, open_and_answer
from gateway.as2_settings import As2Local


@pytest.fixture(scope="module")
def keys() -> dict[str, as2.KeyPair]:
    return {name: as2.generate_self_signed(name) for name in ("us", "them", "them-new", "stranger")}


@pytest.fixture
async def pool(keys: dict[str, as2.KeyPair]) -> AsyncIterator[As2Pool]:
    pool = As2Pool(1, As2Local("GATEWAY", None, (keys["us"],)))
    try:
        yield pool
    finally:
        pool.close()


def message(keys: dict[str, as2.KeyPair], signer: str, payload: bytes, n: int) -> tuple[Incoming, bytes]:
    out = as2.build_message(payload, our_keys=[keys[signer]], partner_certs=[keys["us"].certificate])
    headers = {
        **as2.as2_headers(
            as2_from="THEM",
            as2_to="GATEWAY",
            message_id=f"<m{n}@them>",
            receipt_to="as2@them",
            signed_receipt_micalg="sha-256",
        ),
        **out.headers,
    }
    incoming = Incoming(
        headers,
        f"<m{n}@them>",
        "THEM",
        "GATEWAY",
        require_signature=True,
        require_encryption=True,
        max_decompressed_bytes=1 << 20,
        now=dt.datetime.now(dt.UTC),
    )
    return incoming, out.body


def verified(keys: dict[str, as2.KeyPair], result: Opened | Refused) -> as2.MdnReport:
    report = as2.parse_mdn(result.mdn.headers, result.mdn.body, partner_certs=[keys["us"].certificate])
    assert report.signed and report.signature_verified
    return report


async def test_a_worker_opens_and_answers_like_the_event_loop(
    pool: As2Pool, keys: dict[str, as2.KeyPair]
) -> None:
    incoming, body = message(keys, "them", b"ISA*00*pooled~" * 50, 1)
    certs = (keys["them"].certificate,)
    here = open_and_answer(pool.local, certs, incoming, body)
    there = await pool.open(certs, incoming, body)
    assert isinstance(here, Opened) and isinstance(there, Opened)
    assert there.payload == here.payload == b"ISA*00*pooled~" * 50
    assert (there.mic, there.layers, there.signer, there.signed) == (here.mic, here.layers, here.signer, True)
    assert there.signer == "CN=them"
    report = verified(keys, there)
    assert report.disposition.ok and report.mic is not None and report.mic.matches(there.mic)
    assert there.mdn.headers["AS2-To"] == "THEM" and there.mdn.headers["AS2-From"] == "GATEWAY"
    assert pool.opened == 1


async def test_refusals_come_back_with_their_disposition_and_a_signed_error_mdn(
    pool: As2Pool, keys: dict[str, as2.KeyPair]
) -> None:
    incoming, body = message(keys, "stranger", b"ISA*00*who~", 2)
    refused = await pool.open((keys["them"].certificate,), incoming, body)
    assert isinstance(refused, Refused) and refused.unexpected is None
    assert refused.error.disposition is as2.DispositionModifier.AUTHENTICATION_FAILED
    report = verified(keys, refused)
    assert not report.disposition.ok and report.disposition.modifier == "authentication-failed"

    incoming, body = message(keys, "them", b"ISA*00*cut~", 3)
    refused = await pool.open((keys["them"].certificate,), incoming, body[: len(body) // 2])
    assert isinstance(refused, Refused) and not verified(keys, refused).disposition.ok


async def test_a_new_certificate_set_is_used_at_once(pool: As2Pool, keys: dict[str, as2.KeyPair]) -> None:
    incoming, body = message(keys, "them-new", b"ISA*00*rolled~", 4)
    before = await pool.open((keys["them"].certificate,), incoming, body)
    assert isinstance(before, Refused)  # the worker knows only the old certificate...
    after = await pool.open((keys["them"].certificate, keys["them-new"].certificate), incoming, body)
    assert isinstance(after, Opened) and after.signer == "CN=them-new"  # ...until the reload adds the new one


async def test_a_killed_worker_costs_no_answer(pool: As2Pool, keys: dict[str, as2.KeyPair]) -> None:
    await pool.start()
    assert pool._workers.executor is not None
    for pid in list(pool._workers.executor._processes):
        os.kill(pid, signal.SIGKILL)
    incoming, body = message(keys, "them", b"ISA*00*again~", 5)
    result = await pool.open((keys["them"].certificate,), incoming, body)
    assert isinstance(result, Opened) and result.payload == b"ISA*00*again~"
    assert pool.rebuilds == 1
    result = await pool.open((keys["them"].certificate,), *message(keys, "them", b"ISA*00*next~", 6))
    assert isinstance(result, Opened) and pool.opened == 1  # the rebuilt pool opens the next one


async def test_a_worker_killed_under_many_calls_rebuilds_the_pool_once(keys: dict[str, as2.KeyPair]) -> None:
    """Every call in flight on the broken pool sees it break: only the first replaces
    it, so the pool is rebuilt once and the fresh one is never shut down under the
    calls that use it."""
    pool = As2Pool(2, As2Local("GATEWAY", None, (keys["us"],)), max_batch=1)
    try:
        await pool.start()
        broken = pool._workers.executor
        assert broken is not None
        certs = (keys["them"].certificate,)
        sent = [message(keys, "them", b"ISA*00*%03d~" % n * 20_000, 200 + n) for n in range(12)]
        calls = asyncio.gather(*(pool.open(certs, incoming, body) for incoming, body in sent))
        for _ in range(5):  # dispatched: one worker call per message, all on the same pool
            await asyncio.sleep(0)
        os.kill(next(iter(broken._processes)), signal.SIGKILL)
        results = await calls
        assert all(isinstance(r, Opened) for r in results)  # every call answered (in a thread)
        assert [r.payload for r in results if isinstance(r, Opened)] == [
            b"ISA*00*%03d~" % n * 20_000 for n in range(12)
        ]
        assert pool.opened < 11  # several calls saw the pool break...
        assert pool.rebuilds == 1  # ...and it was replaced once
        fresh = await asyncio.gather(
            *(pool.open(certs, *message(keys, "them", b"ISA*00*x~", 300 + n)) for n in range(4))
        )
        assert all(isinstance(r, Opened) for r in fresh)
        assert pool._workers.executor is not None and pool._workers.executor is not broken
        assert pool.rebuilds == 1 and pool.opened >= 4
    finally:
        pool.close()


async def test_messages_waiting_together_share_a_worker_call_and_each_gets_its_own_answer(
    pool: As2Pool, keys: dict[str, as2.KeyPair]
) -> None:
    await pool.start()
    certs = (keys["them"].certificate,)
    sent = [message(keys, "them" if n % 3 else "stranger", b"ISA*00*%03d~" % n, 100 + n) for n in range(9)]
    results = await asyncio.gather(*(pool.open(certs, incoming, body) for incoming, body in sent))
    for n, ((incoming, _), result) in enumerate(zip(sent, results, strict=True)):
        if n % 3:
            assert isinstance(result, Opened) and result.payload == b"ISA*00*%03d~" % n
        else:
            assert isinstance(result, Refused)  # signed by a stranger: refused, the others unharmed
        report = verified(keys, result)
        assert report.original_message_id == incoming.message_id
    assert pool.opened == 9 and pool.calls < 9


GATEWAY = """
import asyncio
from multiprocessing import forkserver
import as2
from gateway.as2_pool import As2Pool
from gateway.as2_settings import As2Local

async def main():
    pool = As2Pool(2, As2Local("GATEWAY", None, (as2.generate_self_signed("us"),)))
    await pool.start()
    helpers = [forkserver._forkserver._forkserver_pid]  # the forkserver goes too
    print(" ".join(str(pid) for pid in [*pool._workers.executor._processes, *helpers]), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_gateway_is_killed() -> None:
    assert_workers_exit_with_the_gateway(GATEWAY)
