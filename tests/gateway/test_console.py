"""The operations console over real HTTP (the real app, real SQLite/PostgreSQL, a
fake ERP on loopback): login and its cookie, CSRF refusals, roles, the login rate
limit, the search box, the pages, a dead letter replayed from the console and the
audit log; and `gateway users add` reading the password from stdin.

The same journeys in a real browser are in test_console_browser.py."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fakes.erp_server import FakeErp
from test_erp import SECRET, Clock, message_row, post_850, run

from gateway import passwords, users
from gateway.app import DATABASE, PIPELINE, Overrides, build_app
from gateway.console.x12view import ack_pointers, pointed_segments, segments

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake_erp() -> Any:
    erp = FakeErp(secret=SECRET)
    await erp.start()
    yield erp
    await erp.stop()


@pytest.fixture
async def gw(
    aiohttp_client: Any,
    tmp_path: Path,
    partners_dir: Path,
    clock: Clock,
    fake_erp: FakeErp,
    database_url: str | None,
) -> Any:
    settings = make_settings(
        tmp_path,
        partners_dir,
        database_url,
        erp={
            "mode": "webhook",
            "url": fake_erp.url,
            "secret": SECRET,
            "timeout_seconds": 10,
            "max_attempts": 2,
        },
        console={"login_attempts": 3},
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))
    for name, role in (("olivia", "operator"), ("victor", "viewer"), ("ada", "admin")):
        await users.add_user(client.app[DATABASE], name, role, PASSWORD, now=clock())
    return client


@pytest.fixture
async def dead_letters(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, fake_erp: FakeErp
) -> Any:
    """A gateway (SQLite) with one dead letter of each type: an 850 of acme the ERP
    refused (PO-OLD, stored 5 h and a minute ago) and an 810 to initech whose REST
    endpoint refused it (a minute ago). Yields (client, the 850's message id, the
    810's); olivia is an operator, victor a viewer."""
    from fakes.partner_server import FakePartner
    from test_outbound import add_rest_partner, invoice, send

    from gateway.api.internal import DELIVERY

    partner = FakePartner()
    await partner.start()
    try:
        add_rest_partner(partners_dir, partner.url)
        settings = make_settings(
            tmp_path,
            partners_dir,
            None,
            erp={"mode": "webhook", "url": fake_erp.url, "secret": SECRET, "max_attempts": 2},
            outbound={"workers": 0, "retry_base_seconds": 10, "max_attempts": 3},
        )
        client = await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))
        for name, role in (("olivia", "operator"), ("victor", "viewer")):
            await users.add_user(client.app[DATABASE], name, role, PASSWORD, now=clock())
        fake_erp.fail_next(1, 422, body="refused")
        inbound = await post_850(client, 602, po="PO-OLD")
        await run(client)
        clock.advance(5 * 3600)
        partner.fail_with = [400]
        outbound = (await (await send(client, "invoices", "initech", invoice())).json())["message_id"]
        await client.app[DELIVERY].run_until_idle()
        clock.advance(60)
        yield client, inbound, outbound
    finally:
        await partner.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


async def login(client: Any, name: str, password: str = PASSWORD) -> Any:
    page = await client.get("/ui/")
    assert page.status == 200
    return await client.post(
        "/ui/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(await page.text())},
        allow_redirects=False,
    )


async def test_login_sets_a_strict_httponly_session_and_logout_ends_it(gw: Any) -> None:
    assert 'data-testid="login-username"' in await (await gw.get("/ui/")).text()
    assert (await gw.get("/ui/messages", allow_redirects=False)).headers["Location"].startswith("/ui/?next=")
    resp = await login(gw, "olivia")
    assert resp.status == 303 and resp.headers["Location"] == "/ui/"
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("gw_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http on loopback, no https public_url
    home = await gw.get("/ui/")
    text = await home.text()
    assert "Dashboard" in text and "olivia (operator)" in text
    assert (
        home.headers["X-Frame-Options"] == "DENY"
        and "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    )
    # logging out without the form's token is refused, with it the session is gone
    assert (await gw.post("/ui/logout", data={}, allow_redirects=False)).status == 403
    resp = await gw.post("/ui/logout", data={"csrf_token": csrf_of(text)}, allow_redirects=False)
    assert resp.status == 303
    assert (await gw.get("/ui/messages", allow_redirects=False)).status == 303
    # the API token opens no page, a session opens no API
    assert (
        await gw.get(
            "/ui/messages", headers={"Authorization": "Bearer internal-test-token"}, allow_redirects=False
        )
    ).status == 303


async def test_secure_cookie_behind_an_https_public_url(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock
) -> None:
    settings = make_settings(tmp_path, partners_dir, None, console={"public_url": "https://gw.example"})
    client = await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))
    await users.add_user(client.app[DATABASE], "olivia", "operator", PASSWORD, now=clock())
    page = await client.get("/ui/")
    login_cookie = page.cookies["gw_login_csrf"]
    assert login_cookie["secure"]  # the client keeps Secure cookies for https: sent by hand here
    resp = await client.post(
        "/ui/login",
        data={"username": "olivia", "password": PASSWORD, "csrf_token": csrf_of(await page.text())},
        headers={"Cookie": f"gw_login_csrf={login_cookie.value}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("gw_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_login_form_needs_its_csrf_token_and_failures_are_rate_limited(gw: Any) -> None:
    await gw.get("/ui/")
    resp = await gw.post(
        "/ui/login", data={"username": "olivia", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 403
    for _ in range(3):
        assert (await login(gw, "olivia", "wrong password")).status == 401
    # the fourth try is refused before the password is even looked at, a right one too
    assert (await login(gw, "olivia")).status == 429
    assert (await login(gw, "victor")).status == 303  # another user is not blocked
    entries = await users.audit_entries(gw.app[DATABASE])
    outcomes = [(e.actor, e.action, e.outcome) for e in entries]
    assert ("olivia", "login", "rate_limited") in outcomes and ("olivia", "login", "refused") in outcomes


async def test_dead_letter_replay_from_the_console_with_confirmation_roles_and_audit(
    gw: Any, fake_erp: FakeErp
) -> None:
    fake_erp.fail_next(1, 422, body='{"error": "unknown ship-to 0042"}')
    message_id = await post_850(gw, 301, po="PO-CONSOLE-1")
    await run(gw)
    assert (await message_row(gw, message_id)).status == "failed"

    # a viewer sees the dead letter, no replay button, and is refused when posting anyway
    await login(gw, "victor")
    listing = await (await gw.get("/ui/dead-letters")).text()
    assert "unknown ship-to 0042" in listing and 'data-testid="replay"' not in listing
    dead_id = re.search(r'data-testid="dead-letter">.*?', listing, re.S)
    assert dead_id
    item = re.search(r"/ui/messages/(\w+)", listing)
    assert item and item.group(1) == message_id
    doc_id = (
        await (
            await gw.get("/api/v1/dead-letters", headers={"Authorization": "Bearer internal-test-token"})
        ).json()
    )["items"][0]["id"]
    viewer_csrf = csrf_of(listing)
    resp = await gw.post(
        f"/ui/dead-letters/{doc_id}/replay", data={"csrf_token": viewer_csrf}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await gw.get(f"/ui/dead-letters/{doc_id}/replay")).status == 403
    await gw.post("/ui/logout", data={"csrf_token": viewer_csrf})

    # an operator: button, confirmation page, a post without the token refused, then the replay
    await login(gw, "olivia")
    listing = await (await gw.get("/ui/dead-letters")).text()
    assert f'data-testid="replay" href="/ui/dead-letters/{doc_id}/replay"' in listing
    confirm = await (await gw.get(f"/ui/dead-letters/{doc_id}/replay")).text()
    assert 'data-testid="confirm"' in confirm
    assert (await gw.post(f"/ui/dead-letters/{doc_id}/replay", data={}, allow_redirects=False)).status == 403
    assert (
        await gw.post(
            f"/ui/dead-letters/{doc_id}/replay", data={"csrf_token": "forged"}, allow_redirects=False
        )
    ).status == 403
    assert fake_erp.requests == 1  # nothing was replayed by the refused posts
    resp = await gw.post(
        f"/ui/dead-letters/{doc_id}/replay", data={"csrf_token": csrf_of(confirm)}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/ui/messages/{message_id}"
    await run(gw)
    assert (await message_row(gw, message_id)).status == "acknowledged"
    page = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert page.count('class="attempt"') == 2 and 'data-testid="timeline"' in page
    audit = await (await gw.get("/ui/audit")).text()
    assert "replay_dead_letter" in audit and doc_id in audit
    entries = [(e.actor, e.action, e.outcome) for e in await users.audit_entries(gw.app[DATABASE])]
    assert ("olivia", "replay_dead_letter", "replaying") in entries


async def test_search_finds_po_control_number_and_message_id_and_pages_render(gw: Any, clock: Clock) -> None:
    message_id = await post_850(gw, 777, po="PO-SEARCH")  # its set carries PO-SEARCH-1
    await run(gw)
    await login(gw, "victor")
    results = await (await gw.get("/ui/search", params={"q": "PO-SEARCH-1"})).text()
    assert 'data-testid="result" href="/ui/orders/acme/PO-SEARCH-1"' in results
    assert f'data-testid="result" href="/ui/messages/{message_id}"' in results
    for term in ("777", "000000777", message_id):
        text = await (await gw.get("/ui/search", params={"q": term})).text()
        assert f"/ui/messages/{message_id}" in text, term
    assert "Nothing found" in await (await gw.get("/ui/search", params={"q": "PO-NOPE"})).text()
    order = await (await gw.get("/ui/orders/acme/PO-SEARCH-1")).text()
    assert "PO-SEARCH-1" in order and 'data-testid="order-chain"' in order
    assert (await gw.get("/ui/orders/acme/PO-NOPE")).status == 404
    message = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert (
        "<code>ISA*" in message
        and "BEG*00*SA*PO-SEARCH-1" in message
        and '"po_number": "PO-SEARCH-1"' in message
    )
    listing = await (await gw.get("/ui/messages", params={"partner": "acme", "direction": "in"})).text()
    assert message_id in listing
    assert message_id not in await (await gw.get("/ui/messages", params={"partner": "globex"})).text()
    for path in ("/ui/", "/ui/partners", "/ui/exceptions", "/ui/dead-letters", "/ui/audit"):
        resp = await gw.get(path)
        assert resp.status == 200, path
        assert 'data-testid="search"' in await resp.text(), path
    partners = await (await gw.get("/ui/partners")).text()
    assert partners.count('data-testid="partner"') == 2
    assert (await gw.get("/ui/users")).status == 403  # viewer: no user management


async def test_admin_adds_and_disables_users(gw: Any) -> None:
    await login(gw, "ada")
    page = await (await gw.get("/ui/users")).text()
    token = csrf_of(page)
    resp = await gw.post(
        "/ui/users",
        data={"csrf_token": token, "name": "newbie", "role": "viewer", "password": "long enough pw"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert (
        await gw.post(
            "/ui/users", data={"csrf_token": token, "name": "x", "role": "viewer", "password": "short"}
        )
    ).status == 422
    assert (
        await gw.post(
            "/ui/users/disable", data={"csrf_token": token, "name": "victor"}, allow_redirects=False
        )
    ).status == 303
    names = {u["name"]: u["disabled"] for u in await users.list_users(gw.app[DATABASE])}
    assert names["newbie"] is False and names["victor"] is True
    assert await users.authenticate(gw.app[DATABASE], "victor", PASSWORD) is None


def test_users_add_reads_the_password_from_stdin_and_it_logs_in(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\npartners_dir = "{tmp_path}"\n')
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "users",
        "add",
        "opal",
        "--role",
        "operator",
        "--config",
        str(config),
    ]
    done = subprocess.run(cmd, input="s3cret-enough\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    again = subprocess.run(cmd, input="s3cret-enough\n", capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already" in again.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "gateway", "users", "list", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "opal" in listing.stdout and "operator" in listing.stdout
    db_file = tmp_path / "var" / "gateway.db"
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        stored = conn.execute("select password_hash from users where name = 'opal'").fetchone()[0]
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert passwords.verify_password("s3cret-enough", stored) and not passwords.verify_password(
        "s3cret-enougH", stored
    )


def test_the_997_pointer_highlights_the_segment_it_names() -> None:
    raw = (
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*OURCOMPANY     *240315*1200*U*00401*000000001*0*P*>~"
        "GS*PO*ACME*OURCOMPANY*20240315*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20240315~"
        "PO1*1*X*EA*1.00**VP*A~CTT*1~SE*5*0001~GE*1*1~IEA*1*000000001~"
    )
    ack = (
        "ISA*00*          *00*          *ZZ*OURCOMPANY     *ZZ*ACME           *240315*1201*U*00401*000000002*0*P*>~"
        "GS*FA*OURCOMPANY*ACME*20240315*1201*2*X*004010~ST*997*0001~AK1*PO*1~AK2*850*0001~"
        "AK3*PO1*3**8~AK4*2*330*7*X~AK5*R*5~AK9*R*1*1*0~SE*8*0001~GE*1*2~IEA*1*000000002~"
    )
    assert ack_pointers(ack) == [("850", "0001", "PO1", 3, "8")]
    assert pointed_segments(raw, [ack]) == {5: "PO1 at position 3: error 8"}
    shown, total = segments(raw, [ack], first=4, count=3)
    assert total == 9 and [s.number for s in shown] == [4, 5, 6]
    assert [s.highlighted for s in shown] == [False, True, False]


def test_the_chart_escapes_partner_text_and_scales_to_the_peak() -> None:
    from datetime import date

    from gateway.console.charts import volume_svg

    days = [date(2024, 3, d) for d in range(1, 4)]
    svg = volume_svg("<script>x</script>", days, [0, 10, 5], [0, 10, 1])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert (
        'aria-label="&lt;script&gt;x&lt;/script&gt;: 15 messages, 11 failed over 3 days; peak 10 a day"'
        in svg
    )
    heights = re.findall(r'height="([\d.]+)" fill="#2f6db5"', svg)
    assert [float(h) for h in heights] == [0.0, 66.0, 33.0]  # the peak day fills the plot


async def test_message_replay_asks_first_needs_an_operator_and_is_audited(gw: Any, fake_erp: FakeErp) -> None:
    message_id = await post_850(gw, 402, po="PO-AGAIN")
    await run(gw)
    assert (await message_row(gw, message_id)).status == "acknowledged"
    await login(gw, "victor")
    page = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert 'data-testid="message-replay"' not in page
    resp = await gw.post(f"/ui/messages/{message_id}/replay", data={"csrf_token": csrf_of(page)})
    assert resp.status == 403
    await gw.post("/ui/logout", data={"csrf_token": csrf_of(page)})
    await login(gw, "olivia")
    page = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert f'href="/ui/messages/{message_id}/replay" data-testid="message-replay"' in page
    confirm = await (await gw.get(f"/ui/messages/{message_id}/replay")).text()
    assert 'data-testid="confirm"' in confirm and "Replay message" in confirm
    resp = await gw.post(
        f"/ui/messages/{message_id}/replay", data={"csrf_token": csrf_of(confirm)}, allow_redirects=False
    )
    assert resp.status == 303
    await run(gw)
    timeline = await (await gw.get(f"/ui/messages/{message_id}")).text()
    assert "requested_by: console: olivia" in timeline
    assert sum(fake_erp.accepted.values()) == 1  # delivered once: the replay reused its key
    entries = [(e.actor, e.action, e.target) for e in await users.audit_entries(gw.app[DATABASE])]
    assert ("olivia", "replay_message", message_id) in entries
    assert ("victor", "replay_message", message_id) not in entries
    assert ("victor", "forbidden", f"/ui/messages/{message_id}/replay") in entries


async def test_the_login_limit_is_shared_by_two_instances_on_one_database(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    """Two console processes on one database (PostgreSQL; or one SQLite file, each
    instance with its own data dir) count the same failures: per name and address,
    per address whatever the names, forgotten after the window, cleared by a success."""
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    apps = []
    for name in ("one", "two"):
        settings = make_settings(
            tmp_path / name, partners_dir, url, console={"login_attempts": 2, "login_window_seconds": 60}
        )
        apps.append(await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock))))
    one, two = apps

    async def attempt(app: Any, name: str, password: str = PASSWORD) -> int:
        status = int((await login(app, name, password)).status)
        app.session.cookie_jar.clear()  # logged out again: the next try starts at the form
        return status

    for name in ("olivia", "victor"):
        await users.add_user(one.app[DATABASE], name, "operator", PASSWORD, now=clock())
    assert await attempt(one, "Olivia", "wrong password") == 401
    assert await attempt(two, "olivia", "wrong password") == 401
    # the third try is refused on either instance, a right password too: one count, not two
    for app in (one, two):
        resp = await login(app, "olivia")
        assert resp.status == 429
        assert "Too many failed logins" in await resp.text()
        app.session.cookie_jar.clear()
    assert await attempt(two, "victor") == 303  # another name is not blocked
    clock.advance(61)  # the window slid past both failures
    assert await attempt(one, "olivia") == 303
    # one address trying many names: 2 x 4 failures in all, wherever they land
    for n in range(8):
        assert await attempt((one, two)[n % 2], f"user{n}", "wrong password") == 401
    assert await attempt(one, "someone-else") == 429
    clock.advance(61)
    # a success clears its own count: failures then a success, then two more failures allowed
    assert await attempt(two, "victor", "wrong password") == 401
    assert await attempt(one, "victor") == 303
    assert await attempt(two, "victor", "wrong password") == 401
    assert await attempt(one, "victor") == 303
    entries = [(e.actor, e.outcome) for e in await users.audit_entries(one.app[DATABASE])]
    assert entries.count(("olivia", "rate_limited")) == 2 and ("someone-else", "rate_limited") in entries


async def test_parallel_wrong_passwords_cannot_all_slip_under_the_login_limit(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, clock: Clock, database_url: str | None
) -> None:
    """Guesses sent at once are each counted before their password is checked (the
    check takes the scrypt time): with a limit of 2, at most two of eight are
    answered 401, the rest 429, and the right password is then refused too."""
    settings = make_settings(
        tmp_path, partners_dir, database_url, console={"login_attempts": 2, "login_window_seconds": 60}
    )
    client = await aiohttp_client(build_app(settings, overrides=Overrides(clock=clock)))
    await users.add_user(client.app[DATABASE], "olivia", "operator", PASSWORD, now=clock())
    token = csrf_of(await (await client.get("/ui/")).text())

    async def guess(n: int) -> int:
        form = {"username": "olivia", "password": f"guess {n}", "csrf_token": token}
        return int((await client.post("/ui/login", data=form, allow_redirects=False)).status)

    statuses = await asyncio.gather(*(guess(n) for n in range(8)))
    # at most the limit got a password check (fewer when all were counted before any
    # check ran, as PostgreSQL's commits often make it); the others were refused
    assert set(statuses) <= {401, 429} and statuses.count(401) <= 2 and statuses.count(429) >= 6
    assert (await login(client, "olivia")).status == 429


def test_the_login_limit_counts_per_name_and_per_address_and_forgets_after_the_window() -> None:
    now = [0.0]
    limiter = passwords.LoginLimiter(attempts=2, window=60, clock=lambda: now[0])
    limiter.failed("Olivia", "10.0.0.1")
    assert not limiter.blocked("olivia", "10.0.0.1")
    limiter.failed("olivia", "10.0.0.1")
    assert limiter.blocked("OLIVIA", "10.0.0.1") and not limiter.blocked("olivia", "10.0.0.2")
    for n in range(6):  # one address trying many names: 2 x 4 failures in all
        limiter.failed(f"user{n}", "10.0.0.3")
    assert not limiter.blocked("someone", "10.0.0.3")
    limiter.failed("user6", "10.0.0.3")
    limiter.failed("user7", "10.0.0.3")
    assert limiter.blocked("someone", "10.0.0.3")
    now[0] = 61.0
    assert not limiter.blocked("olivia", "10.0.0.1") and not limiter.blocked("someone", "10.0.0.3")


async def test_cancelling_dead_letters_from_the_console(dead_letters: Any) -> None:
    gw, inbound, outbound = dead_letters
    token = {"Authorization": "Bearer internal-test-token"}
    items = (await (await gw.get("/api/v1/dead-letters", headers=token)).json())["items"]
    assert {i["type"] for i in items} == {"erp_document", "partner_delivery"}

    await login(gw, "olivia")
    listing = await (await gw.get("/ui/dead-letters")).text()
    for item in items:
        assert f'data-testid="cancel" href="/ui/dead-letters/{item["id"]}/cancel"' in listing
        confirm = await (await gw.get(f"/ui/dead-letters/{item['id']}/cancel")).text()
        assert 'data-testid="confirm"' in confirm
        resp = await gw.post(
            f"/ui/dead-letters/{item['id']}/cancel",
            data={"csrf_token": csrf_of(confirm)},
            allow_redirects=False,
        )
        assert resp.status == 303
        again = await gw.post(f"/ui/dead-letters/{item['id']}/cancel", data={"csrf_token": csrf_of(confirm)})
        assert again.status == 409  # not a dead letter any more
    assert (await (await gw.get("/api/v1/dead-letters", headers=token)).json())["items"] == []
    metrics = await (await gw.get("/metrics", headers=token)).text()
    assert 'gateway_dead_letters{target="erp"} 0' in metrics
    for message_id in (inbound, outbound):
        page = await (await gw.get(f"/ui/messages/{message_id}")).text()
        assert "dead_letter_cancelled" in page and "console: olivia" in page
    entries = [(e.action, e.outcome) for e in await users.audit_entries(gw.app[DATABASE])]
    assert entries.count(("cancel_dead_letter", "cancelled")) == 2
    assert entries.count(("cancel_dead_letter", "refused")) == 2
    # a replay of the message still sends the cancelled document: nothing is lost for good
    assert (await message_row(gw, inbound)).status == "failed"
    await gw.app[PIPELINE].replay(inbound, requested_by="test")
    await run(gw)
    assert (await message_row(gw, inbound)).status == "acknowledged"
