"""Partner hooks (partners/<id>/hooks.py) in the service: the inbound hook shapes
each translated document before it is stored and forwarded; a failing hook fails
the message, which is replayed once the file is fixed. Runs the real translation
worker processes, so the hook is loaded where translation happens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import test_service_pipeline
from gwsamples import order_850
from test_service_pipeline import RecordingErp, load, post, settle

from gateway.app import PIPELINE

erp, overrides = test_service_pipeline.erp, test_service_pipeline.overrides  # its fixtures (RecordingErp)


HOOK = """
def inbound(document, context):
    segments = context.pop("segments")  # the set as the partner sent it, ST..SE
    assert context == {"partner_id": "acme", "direction": "in", "kind": "order"}
    assert segments[0] == ["ST", "850", "0001"] and segments[-1][0] == "SE"
    if document["document"]["po_number"].startswith("PO-BAD"):
        raise ValueError("store number missing")
    document["document"]["references"].append({"qualifier": "ZZ", "value": "HOOKED", "description": None})
    raw = "|".join(next(s for s in segments if s[0] == "PO1"))
    document["document"]["references"].append({"qualifier": "RS", "value": raw, "description": None})
"""


async def reload(client: Any) -> None:
    resp = await client.post(
        "/api/v1/partners/reload", headers={"Authorization": "Bearer internal-test-token"}
    )
    assert resp.status == 200, await resp.text()


def refs(canonical: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["qualifier"], r["value"]) for r in canonical["document"]["references"]]


async def test_inbound_hook_changes_the_document_the_erp_gets(
    client: Any, erp: RecordingErp, partners_dir: Path
) -> None:
    (partners_dir / "acme" / "hooks.py").write_text(HOOK)
    await reload(client)
    message_id = await post(client, order_850("ACME", 301))
    await settle(client)
    message, _events, documents, _outbox = await load(client, message_id)
    assert message.status == "acknowledged"
    [delivered] = erp.deliveries
    assert ("ZZ", "HOOKED") in refs(delivered.canonical)
    # the hook saw the raw segments of the set
    assert ("RS", "PO1|1|24|EA|3.50|PE|UP|012345678905|VN|WID-100") in refs(delivered.canonical)
    assert ("ZZ", "HOOKED") in refs(json.loads(json.dumps(documents[0].canonical)))


async def test_a_failing_hook_fails_the_message_and_replay_after_the_fix_delivers(
    client: Any, erp: RecordingErp, partners_dir: Path
) -> None:
    hooks = partners_dir / "acme" / "hooks.py"
    hooks.write_text(HOOK)
    await reload(client)
    message_id = await post(client, order_850("ACME", 302, po="PO-BAD"))
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert message.status == "failed"
    assert "inbound hook raised ValueError: store number missing" in message.reason
    assert documents == [] and outbox == [] and erp.deliveries == []

    hooks.write_text(HOOK.replace('startswith("PO-BAD")', 'startswith("NEVER")') + "\n# fixed\n")
    await client.app[PIPELINE].replay(message_id)
    await settle(client)
    message, _events, documents, outbox = await load(client, message_id)
    assert message.status == "acknowledged"
    [delivered] = erp.deliveries
    assert ("ZZ", "HOOKED") in refs(delivered.canonical)
    assert [o.kind for o in outbox] == ["997"]


async def test_a_hook_returning_an_invalid_document_is_refused(
    client: Any, erp: RecordingErp, partners_dir: Path
) -> None:
    (partners_dir / "acme" / "hooks.py").write_text(
        "def inbound(document, context):\n    document['document']['po_date'] = 'not a date'\n"
    )
    await reload(client)
    message_id = await post(client, order_850("ACME", 303))
    await settle(client)
    message, *_ = await load(client, message_id)
    assert message.status == "failed"
    assert "inbound hook returned an invalid document" in message.reason
    assert "po_date" in message.reason
    assert erp.deliveries == []
