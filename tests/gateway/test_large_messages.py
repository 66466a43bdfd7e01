"""A file of many interchanges: the partial outcomes of its interchanges in the
message's reason (a repeated one among fresh ones, TA1 025), its detail a page at a
time instead of one answer as large as the file, and the translation's progress
(sets translated / total) while it runs, all through the real API."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY, GLOBEX_KEY, auth
from gwsamples import order_850
from test_erp import Clock
from test_outbound import TOKEN, app_client

from gateway.app import PIPELINE
from gateway.domain.inbound import InboundMessage, count_sets, plan_inbound
from gateway.partners import load_partners


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def post(client: Any, partner: str, key: str, body: bytes) -> str:
    resp = await client.post(f"/partners/{partner}/edi", data=body, headers=auth(key))
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["message_id"])


async def detail(client: Any, message_id: str, query: str = "") -> dict[str, Any]:
    resp = await client.get(f"/api/v1/messages/{message_id}{query}", headers=TOKEN)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def many(sender: str, interchanges: int, sets: int, first_control: int = 1) -> bytes:
    return b"".join(
        order_850(sender, first_control + n, po=f"PO-{n}", sets=sets) for n in range(interchanges)
    )


async def test_a_repeated_interchange_among_fresh_ones_is_named_in_the_reason_until_acknowledged(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    pipeline = client.app[PIPELINE]
    first = await post(client, "globex", GLOBEX_KEY, order_850("GLOBEX", 202, po="PO-R"))
    await pipeline.run_until_idle()
    body = b"".join(order_850("GLOBEX", n, po=f"PO-{n}") for n in (201, 202, 203))
    second = await post(client, "globex", GLOBEX_KEY, body)
    await pipeline.run_until_idle()

    shown = await detail(client, second)
    expected = f"3 interchanges: 2 accepted, 1 duplicate; 000000202 duplicate of message {first} (TA1 025)"
    assert shown["status"] == "translated" and shown["reason"] == expected
    assert [d["business_number"] for d in shown["documents"]] == ["PO-201-1", "PO-203-1"]
    [translated] = [e for e in shown["timeline"] if e["state"] == "translated"]
    outcomes = translated["detail"]["interchanges"]
    assert outcomes["total"] == 3 and outcomes["accepted"] == 2 and outcomes["duplicate"] == 1
    [repeat] = outcomes["not_accepted"]
    assert repeat["control"] == "000000202" and repeat["duplicate_of"] == first

    # The ERP takes the two documents from the feed: the message is done, and still says what was skipped.
    ids = [d["id"] for d in shown["documents"]]
    resp = await client.post("/api/v1/feed/ack", json={"ids": ids}, headers=TOKEN)
    assert (await resp.json())["delivered"] == ids
    await pipeline.run_until_idle()
    done = await detail(client, second)
    assert done["status"] == "acknowledged" and done["reason"] == expected
    # One ack interchange: the TA1 025 beside the 997s, named by its most specific kind.
    [ack] = done["acks"]["issued"]
    assert ack["kind"] == "997" and ack["status"] in ("pending", "sent")


async def test_detail_of_a_large_message_comes_a_page_at_a_time(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await app_client(aiohttp_client, tmp_path, partners_dir, clock)
    message_id = await post(client, "acme", ACME_KEY, many("ACME", 30, 5))
    await client.app[PIPELINE].run_until_idle()

    first = await detail(client, message_id)
    assert first["counts"]["documents"] == 150 and len(first["documents"]) == 20  # the small default
    assert first["reason"] is None  # 30 interchanges, all accepted: nothing partial to say
    seen = [d["seq"] for d in first["documents"]]
    cursor = first["documents_next"]
    while cursor is not None:
        page = await detail(
            client, message_id, f"?documents_limit=50&documents_cursor={cursor}&events_limit=0"
        )
        assert page["timeline"] == [] and page["counts"]["events"] == first["counts"]["events"]
        seen += [d["seq"] for d in page["documents"]]
        cursor = page["documents_next"]
    assert seen == list(range(1, 151))

    events = await detail(client, message_id, "?documents_limit=0&events_limit=2")
    assert events["documents"] == [] and len(events["timeline"]) == 2 and events["events_next"]
    rest = await detail(client, message_id, f"?documents_limit=0&events_cursor={events['events_next']}")
    states = [e["state"] for e in events["timeline"] + rest["timeline"]]
    assert states[0] == "received" and "translated" in states and len(states) == first["counts"]["events"]

    small = await client.get(f"/api/v1/messages/{message_id}?documents_limit=1", headers=TOKEN)
    whole = await client.get(f"/api/v1/messages/{message_id}?documents_limit=500", headers=TOKEN)
    assert len(await small.read()) * 20 < len(await whole.read())
    assert (
        await client.get(f"/api/v1/messages/{message_id}?documents_limit=501", headers=TOKEN)
    ).status == 400
    assert (await client.get(f"/api/v1/messages/{message_id}?events_cursor=x", headers=TOKEN)).status == 400


@pytest.mark.parametrize("processes", [0, 1], ids=["thread", "worker-process"])
async def test_progress_is_reported_while_a_large_message_is_translated(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, processes: int
) -> None:
    """A partner hook holds the message after its sets are translated (until the test
    lets it go), so the progress is seen whatever the machine's speed; the counts on
    the way are the domain's (test_progress_counts_every_set). With a worker process
    the service's own pipeline worker runs (the translate pool exists only beside
    one), planning its claimed batch in one pool call."""
    release = tmp_path / "release"
    (partners_dir / "acme" / "hooks.py").write_text(
        "import pathlib, time\n"
        "def inbound(document, context):\n"
        "    if document['document']['po_number'] == 'PO-20-1':\n"
        "        deadline = time.monotonic() + 120\n"
        f"        while not pathlib.Path({str(release)!r}).exists() and time.monotonic() < deadline:\n"
        "            time.sleep(0.05)\n"
    )
    client = await app_client(
        aiohttp_client,
        tmp_path,
        partners_dir,
        clock,
        pipeline={"workers": processes, "retry_base_seconds": 0.01, "translate_processes": processes},
    )
    assert (client.app[PIPELINE].translate_pool is not None) == bool(processes)
    message_id = await post(client, "acme", ACME_KEY, many("ACME", 40, 10))
    translating = asyncio.ensure_future(client.app[PIPELINE].run_until_idle() if not processes else _idle())
    try:
        progress = None
        for _ in range(1200):  # a safety stop, not a timing: the hook holds translation meanwhile
            progress = (await detail(client, message_id, "?documents_limit=0"))["progress"]
            if progress is not None:
                break
            await asyncio.sleep(0.1)
        assert progress is not None, "no progress reported while the hook held translation"
        assert progress["step"] == "translate" and progress["sets_total"] == 400
        assert 0 < progress["sets_translated"] <= 400
        while progress["sets_translated"] < 400:  # the last count always comes
            await asyncio.sleep(0.1)
            progress = (await detail(client, message_id, "?documents_limit=0"))["progress"]
        shown = await detail(client, message_id, "?documents_limit=0")
        assert shown["status"] == "received" and shown["next_step"]["step"] == "translate"
    finally:
        release.touch()
        await translating
    done = await detail(client, message_id, "?documents_limit=0")
    for _ in range(1200):  # the service's worker finishes on its own: a safety stop
        if done["status"] != "received":
            break
        await asyncio.sleep(0.1)
        done = await detail(client, message_id, "?documents_limit=0")
    assert done["status"] == "translated" and done["progress"] is None and done["counts"]["documents"] == 400


async def _idle() -> None:
    """Nothing to run: the service's pipeline worker translates by itself."""


def test_progress_counts_every_set_against_the_total_counted_first(partners_dir: Path) -> None:
    payload = many("ACME", 7, 3) + b"\n"
    heard: list[tuple[int, int | None]] = []
    message = InboundMessage("m1", "acme", "x12", "0" * 64)
    partners = load_partners(partners_dir)
    plan = plan_inbound(message, io.BytesIO(payload), partners, progress=lambda d, t: heard.append((d, t)))
    assert plan.status == "translated" and len(plan.documents) == 21
    assert heard == [(n, 21) for n in range(1, 22)]
    assert count_sets(io.BytesIO(b"not x12")) is None
