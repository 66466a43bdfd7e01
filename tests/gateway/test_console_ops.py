"""The console's operator actions and lists over real HTTP (the real app, a fake ERP
and a fake partner endpoint on loopback): a replay whose confirmation offers the
stage, with the stage in the audit log and on the timeline; and the dead letters by
type, kind, partner and age, the same filters on the console page and on
``GET /api/v1/dead-letters``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_console
from conftest import make_settings
from fakes.erp_server import FakeErp
from test_console import PASSWORD, csrf_of, login
from test_erp import Clock, message_row, post_850, run

from gateway import users
from gateway.app import DATABASE, Overrides, build_app

TOKEN = {"Authorization": "Bearer internal-test-token"}
clock, fake_erp, gw = test_console.clock, test_console.fake_erp, test_console.gw  # its fixtures
dead_letters = test_console.dead_letters


async def test_message_replay_offers_the_stage_and_records_it(gw: Any, fake_erp: FakeErp) -> None:
    message_id = await post_850(gw, 601, po="PO-STAGE")
    await run(gw)
    assert (await message_row(gw, message_id)).status == "acknowledged"
    await login(gw, "olivia")
    confirm = await (await gw.get(f"/ui/messages/{message_id}/replay")).text()
    for stage in ("translate", "deliver", "acknowledge"):
        assert f'data-testid="stage-{stage}"' in confirm
    assert 'value="translate" checked' in confirm and 'data-testid="redeliver"' in confirm
    token = csrf_of(confirm)
    # deliver without asking for delivered documents: nothing to send, refused with the reason
    resp = await gw.post(f"/ui/messages/{message_id}/replay", data={"csrf_token": token, "from": "deliver"})
    assert resp.status == 409 and "with the ERP already" in await resp.text()
    resp = await gw.post(
        f"/ui/messages/{message_id}/replay",
        data={"csrf_token": token, "from": "deliver", "redeliver": "1"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/ui/messages/{message_id}"
    await run(gw)
    assert list(fake_erp.accepted.values()) == [2]  # the same key twice: the ERP dedupes
    page = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert "from: deliver" in page and "redeliver: True" in page
    release = await (await gw.get(f"/ui/messages/{message_id}/replay?release=1")).text()
    assert 'data-testid="stage-translate"' in release and 'data-testid="stage-deliver"' not in release
    bogus = await gw.post(f"/ui/messages/{message_id}/replay", data={"csrf_token": token, "from": "parse"})
    assert bogus.status == 422
    entries = [(e.action, e.outcome, e.detail) for e in await users.audit_entries(gw.app[DATABASE])]
    assert ("replay_message", "translated", "from deliver, redeliver") in entries
    assert any(
        a == "replay_message" and o == "refused" and (d or "").startswith("from deliver:")
        for a, o, d in entries
    )
    audit = await (await gw.get("/ui/audit")).text()
    assert "from deliver, redeliver" in audit


async def test_dead_letters_by_type_kind_partner_and_age(dead_letters: Any) -> None:
    client = dead_letters[0]  # an 850 of acme the ERP refused 5 h ago; an 810 to initech a minute ago

    async def listed(query: str) -> list[tuple[str, str, str | None]]:
        resp = await client.get("/api/v1/dead-letters" + query, headers=TOKEN)
        assert resp.status == 200, await resp.text()
        return [(i["type"], i["partner_id"], i["set_id"]) for i in (await resp.json())["items"]]

    erp_doc, delivery = ("erp_document", "acme", "850"), ("partner_delivery", "initech", "810")
    assert await listed("") == [erp_doc, delivery]  # oldest first
    assert await listed("?type=partner_delivery") == [delivery]
    assert await listed("?type=erp_document") == [erp_doc]
    assert await listed("?kind=850") == [erp_doc]
    assert await listed("?kind=order") == [erp_doc]  # the canonical kind works too
    assert await listed("?kind=810") == [delivery]
    assert await listed("?partner=initech") == [delivery]
    assert await listed("?older_than_hours=3") == [erp_doc]
    assert await listed("?older_than_hours=6") == []
    assert await listed("?older_than_hours=0.5&partner=acme&type=erp_document&kind=850") == [erp_doc]
    for bad in ("?type=documents", "?older_than_hours=-1", "?older_than_hours=soon"):
        resp = await client.get("/api/v1/dead-letters" + bad, headers=TOKEN)
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "bad_request"

    await login(client, "victor")
    page = await (await client.get("/ui/dead-letters")).text()
    assert 'data-testid="dead-letter-filters"' in page
    assert '<option value="acme">' in page and '<option value="initech">' in page
    ages = [a.split("<")[0] for a in page.split('data-testid="age">')[1:]]
    assert ages == ["5 h", "1 min"]
    page = await (await client.get("/ui/dead-letters?older_than_hours=3&type=erp_document")).text()
    assert page.count('data-testid="dead-letter"') == 1 and "PO-OLD" in page
    assert '<option value="erp_document" selected>' in page
    page = await (await client.get("/ui/dead-letters?partner=initech&kind=850")).text()
    assert 'data-testid="dead-letter"' not in page and "No dead letters match these filters" in page
    page = await (await client.get("/ui/dead-letters?older_than_hours=x")).text()
    assert "older_than_hours is a number" in page and page.count('data-testid="dead-letter"') == 2


async def test_erp_latency_in_feed_mode_is_stored_to_confirmed(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    client = await aiohttp_client(
        build_app(make_settings(tmp_path, partners_dir, None), overrides=Overrides(clock=clock))
    )  # no [erp] section: feed mode, the ERP pulls and confirms
    await users.add_user(client.app[DATABASE], "victor", "viewer", PASSWORD, now=clock())
    ids = []
    for n in range(3):  # stored 0, 30 and 60 s after the first
        ids.append(await post_850(client, 700 + n, po=f"PO-FEED{n}"))
        await run(client)
        clock.advance(30)
    await login(client, "victor")
    dashboard = await (await client.get("/ui/")).text()
    assert "feed: stored to confirmed" in dashboard and "nothing confirmed from the feed yet" in dashboard
    clock.advance(30)  # confirmed 120, 90 and 60 s after each was stored
    feed = (await (await client.get("/api/v1/feed", headers=TOKEN)).json())["items"]
    assert [i["message_id"] for i in feed] == ids
    resp = await client.post("/api/v1/feed/ack", json={"ids": [i["id"] for i in feed]}, headers=TOKEN)
    assert len((await resp.json())["delivered"]) == 3
    dashboard = await (await client.get("/ui/")).text()
    latency = dashboard.split('data-testid="erp-latency">')[1].split("<")[0]
    assert latency == "1.5 min / 2.0 min"  # median 90 s, p95 120 s
    page = await (await client.get(f"/ui/messages/{ids[0]}")).text()
    assert "erp delivery: confirmed" in page and "confirmed from the feed 120.0 s after it was stored" in page
    assert 'class="error"><time' not in page.split("erp delivery: confirmed")[0].rsplit("<li", 1)[1]
