"""The console in a real browser: Debian's Chromium (/usr/bin/chromium, headless,
driven by Playwright; never a downloaded browser) against a real ``gateway serve``
process on loopback, with a fake ERP that refuses one order.

An operator logs in, searches the PO, opens the order and a message, replays the
dead letter (with its confirmation) and sees the new attempt appear; a viewer has no
replay button and is refused (403) when posting the replay form anyway; a form sent
without its CSRF token is refused. Screenshots of the main pages are kept under
``$GATEWAY_TEST_ARTEFACTS`` (default: this test's tmp_path/artefacts).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ACME_KEY
from fakes.erp_server import FakeErp
from gwsamples import order_850

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: apt-get install chromium chromium-driver"
    ),
]
SECRET = "browser-erp-secret"
TOKEN = "browser-test-token"
PASSWORD = "correct horse battery"
PO = "PO-BROWSER-1"  # order_850(po="PO-BROWSER") carries PO-BROWSER-1
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        base + path, data=data, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def served(tmp_path: Path, partners_dir: Path) -> Iterator[tuple[str, FakeErp]]:
    erp = FakeErp(secret=SECRET)
    erp.start_in_thread()
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\npartners_dir = "{partners_dir}"\n'
        f'[server]\nport = {port}\n[api]\ntoken = "{TOKEN}"\n'
        '[identity]\ninterchange_qualifier = "ZZ"\ninterchange_id = "OURCOMPANY"\ngroup_id = "OURCOMPANY"\n'
        "[pipeline]\nworkers = 2\npoll_seconds = 0.1\n"
        f'[erp]\nmode = "webhook"\nurl = "{erp.url}"\nsecret = "{SECRET}"\ntimeout_seconds = 5\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    for name, role in (("olivia", "operator"), ("victor", "viewer")):
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "users", "add", name, "--role", role, "--config", str(config)],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.service_cli",
            "serve",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "gateway did not start listening"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", erp
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        erp.stop_thread()


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("GATEWAY_TEST_ARTEFACTS") or tmp_path / "artefacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


def log_in(page: Any, base: str, name: str) -> None:
    page.goto(base + "/ui/")
    page.get_by_test_id("login-username").fill(name)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("h1:has-text('Dashboard')")


def post_form(page: Any, action: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not offer, as a hand-made HTML form would."""
    page.evaluate(
        """([action, fields]) => {
            const form = document.createElement("form");
            form.method = "post"; form.action = action;
            for (const [k, v] of Object.entries(fields)) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = k; input.value = v; form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();
        }""",
        [action, fields],
    )
    page.wait_for_load_state()


def test_operator_and_viewer_journeys_in_chromium(
    served: tuple[str, FakeErp], artefacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, erp = served
    erp.refuse(PO, 422, body='{"error": "unknown ship-to 0042"}', times=1)
    request = urllib.request.Request(
        base + "/partners/acme/edi",
        data=order_850("ACME", 4242, po="PO-BROWSER"),
        headers={"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/edi-x12"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        message_id = json.loads(resp.read())["message_id"]
    dead = wait_for(lambda: api(base, "/api/v1/dead-letters")["items"])[0]
    assert dead["message_id"] == message_id

    with sync_playwright() as pw:
        operator = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile-operator"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 860},
        )
        viewer = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile-viewer"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 390, "height": 844},  # a phone
        )
        try:
            page = operator.new_page()
            log_in(page, base, "olivia")
            page.screenshot(path=str(artefacts / "dashboard.png"), full_page=True)

            # search the PO: Enter submits, the order is a result; open it
            page.get_by_test_id("search").fill(PO)
            page.get_by_test_id("search").press("Enter")
            results = page.get_by_test_id("result")
            expect(results.first).to_be_visible()
            page.screenshot(path=str(artefacts / "search.png"), full_page=True)
            page.locator(f"[data-testid=result][href='/ui/orders/acme/{PO}']").click()
            expect(page.locator("h1")).to_contain_text(PO)
            expect(page.get_by_test_id("order-chain")).to_contain_text("order")
            page.screenshot(path=str(artefacts / "order.png"), full_page=True)

            # the message: its timeline shows the ERP's refusal
            page.locator(f"a[href='/ui/messages/{message_id}']").first.click()
            expect(page.get_by_test_id("timeline")).to_contain_text("erp delivery: dead")
            expect(page.locator("ol.x12")).to_contain_text("BEG*00*SA*" + PO)
            page.screenshot(path=str(artefacts / "message-dead.png"), full_page=True)

            # the viewer: sees the dead letter but no replay button; posting it anyway is 403
            vpage = viewer.new_page()
            log_in(vpage, base, "victor")
            vpage.goto(base + "/ui/dead-letters")
            expect(vpage.get_by_test_id("dead-letter")).to_have_count(1)
            expect(vpage.get_by_test_id("replay")).to_have_count(0)
            vpage.screenshot(path=str(artefacts / "dead-letters-viewer-phone.png"), full_page=True)
            csrf = vpage.locator("form.logout input[name=csrf_token]").input_value()
            post_form(vpage, f"/ui/dead-letters/{dead['id']}/replay", {"csrf_token": csrf})
            expect(vpage.locator("h1")).to_have_text("Not allowed")
            expect(vpage.locator("p.alert")).to_contain_text("operator role")

            # the operator: a form without its CSRF token is refused, nothing replayed
            page.goto(base + "/ui/dead-letters")
            post_form(page, f"/ui/dead-letters/{dead['id']}/replay", {})
            expect(page.locator("p.alert")).to_contain_text("security token")
            assert api(base, "/api/v1/dead-letters")["items"], "a refused form replayed the dead letter"

            # replay with confirmation; the message page shows the new attempt when it lands
            page.goto(base + "/ui/dead-letters")
            page.screenshot(path=str(artefacts / "dead-letters.png"), full_page=True)
            page.get_by_test_id("replay").click()
            page.screenshot(path=str(artefacts / "confirm.png"))
            page.get_by_test_id("confirm").click()
            page.wait_for_url(f"**/ui/messages/{message_id}")
            expect(page.locator("tr.attempt")).to_have_count(2, timeout=30_000)
            expect(page.locator("tr.attempt").nth(1)).to_contain_text("delivered")
            expect(page.get_by_test_id("message-status")).to_have_text("acknowledged", timeout=30_000)
            page.screenshot(path=str(artefacts / "message.png"), full_page=True)
            page.screenshot(path=str(artefacts / "message-top.png"))

            page.goto(base + "/ui/audit")
            expect(page.get_by_test_id("audit")).to_contain_text("replay_dead_letter")
            page.goto(base + "/ui/partners")
            expect(page.get_by_test_id("partner")).to_have_count(2)
            page.screenshot(path=str(artefacts / "partners.png"), full_page=True)
        finally:
            operator.close()
            viewer.close()
    assert erp.accepted and max(erp.accepted.values()) == 1  # delivered once, under its key
