"""One inbound message is answered with a bounded number of acknowledgment
interchanges, however many interchanges it holds: a post of thousands of bare
ISA..IEA envelopes must not become thousands of outbox rows (and posts to the
partner). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import GLOBEX_KEY
from gwsamples import order_850
from test_service_pipeline import load, post, settle


def bare_interchanges(sender: str, count: int, first: int = 1) -> bytes:
    """``count`` envelopes with nothing inside (ISA, IEA*0), control numbers from ``first``."""
    out = []
    for control in range(first, first + count):
        out.append(
            f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*{'OURCOMPANY':<15}*240315*1402*U*00401*"
            f"{control:09d}*0*P*>~\nIEA*0*{control:09d}~\n"
        )
    return "".join(out).encode()


async def test_thousands_of_bare_interchanges_get_one_bounded_answer(client: Any) -> None:
    # GLOBEX's profile says ta1 = "always": every interchange is due a TA1.
    message_id = await post(client, bare_interchanges("GLOBEX", 5000), "globex", GLOBEX_KEY)
    await settle(client, timeout=120)
    message, events, documents, outbox = await load(client, message_id)
    assert documents == []
    assert len(outbox) == 1  # not 5,000 interchanges to send back
    [ack] = outbox
    assert ack.kind == "TA1"
    assert ack.payload.count("TA1*") == 100  # [pipeline] max_ta1_per_ack
    assert ack.payload.count("ISA*") == 1 and "IEA*0*" in ack.payload
    assert "TA1*000000001*" in ack.payload and "TA1*000000101*" not in ack.payload
    assert "4900 further interchange(s) were not acknowledged individually" in (message.reason or "")
    assert "acks_capped" in events


async def test_several_interchanges_share_one_answer(client: Any) -> None:
    body = order_850("GLOBEX", 501) + order_850("GLOBEX", 502, po="PO-2")
    message_id = await post(client, body, "globex", GLOBEX_KEY)
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert message.status != "failed" and len(documents) == 2
    [ack] = outbox
    text = ack.payload
    assert text.count("ISA*") == 1 and text.count("TA1*") == 2  # GLOBEX: a TA1 for each
    assert "TA1*000000501*" in text and "TA1*000000502*" in text
    assert text.count("ST*997*") == 2 and text.count("GS*FA*") == 1  # one group, two 997 sets
    assert "AK1*PO*501" in text and "AK1*PO*502" in text
    assert "not acknowledged individually" not in (message.reason or "")
