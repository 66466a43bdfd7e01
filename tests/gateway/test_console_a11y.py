"""The console's accessibility, measured in a real browser (Debian's Chromium driven
by Playwright, against a real ``gateway serve`` on loopback; the set-up of
test_console_browser.py):

- contrast: on the main pages (login, dashboard, messages, a message, an order, dead
  letters, partners) every visible text's computed colour against its effective
  background (the first ancestor with a background that is not transparent, blended
  down to the page's) has the WCAG 2.1 contrast ratio of at least 4.5:1, 3:1 for large
  text (24 px, or 18.66 px bold);
- the keyboard alone: the login form and the dead-letter replay flow (the list, the
  confirmation with its stage, the confirm button) are reached with Tab, chosen with
  the arrow keys and done with Enter, and each focused control shows a focus ring
  (an outline or a box-shadow, :focus-visible).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import test_console_browser as browser
from conftest import ACME_KEY
from fakes.erp_server import FakeErp
from gwsamples import order_850
from test_console_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, PO, api, log_in, wait_for

pytestmark = browser.pytestmark
served, artefacts = browser.served, browser.artefacts  # its fixtures

# Every element with its own visible text (and every filled field), and what it
# measures: [description, ratio, needed]. Colours with alpha are blended over the
# background beneath them.
CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const lum = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.visibility === "hidden" || s.display === "none" || Number(s.opacity) === 0) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") || el.closest("[hidden]")) continue;
    const field = (el.tagName === "INPUT" && el.type !== "hidden" && el.value) || el.tagName === "SELECT";
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if ((!own && !field) || !visible(el)) continue;
    const s = getComputedStyle(el);
    const bg = background(el);
    const fg = over(parse(s.color), bg);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    const what = el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + ": " +
      (el.value || el.textContent).trim().slice(0, 40) + " (" + s.color + " on rgb(" + bg.slice(0, 3).join(", ") + "))";
    out.push([what, Math.round(ratio * 100) / 100, large ? 3 : 4.5]);
  }
  return out;
}
"""

FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const ring = el.matches(":focus-visible") &&
    ((s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== "none");
  return {testid: el.getAttribute("data-testid"), tag: el.tagName.toLowerCase(), text: (el.textContent || "").trim(),
          value: el.value || null, checked: el.checked === true, ring: ring};
}
"""


def post_refused_order(base: str, erp: FakeErp) -> tuple[str, dict[str, Any]]:
    """An 850 whose document the ERP refuses once: a message, an order and a dead letter."""
    erp.refuse(PO, 422, body='{"error": "unknown ship-to 0042"}', times=1)
    request = urllib.request.Request(
        base + "/partners/acme/edi",
        data=order_850("ACME", 4343, po="PO-BROWSER"),
        headers={"Authorization": f"Bearer {ACME_KEY}", "Content-Type": "application/edi-x12"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        message_id = json.loads(resp.read())["message_id"]
    dead = wait_for(lambda: api(base, "/api/v1/dead-letters")["items"])[0]
    return message_id, dead


def launch(pw: Any, profile: Path) -> Any:
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1280, "height": 860},
    )


def test_text_contrast_on_the_main_pages(
    served: tuple[str, FakeErp], artefacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, erp = served
    message_id, _dead = post_refused_order(base, erp)
    failures: list[str] = []
    report: list[tuple[str, str, float, float]] = []  # kept as contrast.json among the artefacts
    measured = 0
    with sync_playwright() as pw:
        context = launch(pw, tmp_path / "profile")
        try:
            page = context.new_page()
            page.goto(base + "/ui/")
            page.get_by_test_id("login-username").fill("olivia")  # a filled field is measured too
            found = page.evaluate(CONTRAST_JS)
            measured += len(found)
            report += [("login", w, r, n) for w, r, n in found]
            failures += [f"login: {w} is {r}:1, needs {n}:1" for w, r, n in found if r < n]
            page.screenshot(path=str(artefacts / "contrast-login.png"), full_page=True)
            log_in(page, base, "olivia")
            for name, path in (
                ("dashboard", "/ui/"),
                ("messages", "/ui/messages"),
                ("message", f"/ui/messages/{message_id}"),
                ("order", f"/ui/orders/acme/{PO}"),
                ("dead-letters", "/ui/dead-letters"),
                ("partners", "/ui/partners"),
            ):
                page.goto(base + path)
                page.wait_for_load_state()
                found = page.evaluate(CONTRAST_JS)
                assert len(found) > 5, f"{name}: almost no text measured"
                measured += len(found)
                report += [(name, w, r, n) for w, r, n in found]
                failures += [f"{name}: {w} is {r}:1, needs {n}:1" for w, r, n in found if r < n]
                page.screenshot(path=str(artefacts / f"contrast-{name}.png"), full_page=True)
        finally:
            context.close()
        lowest = sorted(report, key=lambda r: r[2])[:15]
        (artefacts / "contrast.json").write_text(
            json.dumps({"measured": measured, "lowest": lowest}, indent=1)
        )
    assert measured > 200
    assert not failures, "\n".join(failures)


def test_login_and_dead_letter_replay_with_the_keyboard_only(
    served: tuple[str, FakeErp], artefacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, erp = served
    message_id, dead = post_refused_order(base, erp)
    with sync_playwright() as pw:
        context = launch(pw, tmp_path / "profile")
        try:
            page = context.new_page()
            seen: list[dict[str, Any]] = []

            def tab_to(check: Any, limit: int = 60) -> dict[str, Any]:
                """Press Tab until ``check`` holds for the focused element; each one
                passed on the way must show its focus ring."""
                for _ in range(limit):
                    page.keyboard.press("Tab")
                    focused = page.evaluate(FOCUS_JS)
                    if focused is None:
                        continue
                    seen.append(focused)
                    assert focused["ring"], f"no visible focus on {focused}"
                    if check(focused):
                        return dict(focused)
                raise AssertionError(f"never reached; focus went through {seen[-limit:]}")

            page.goto(base + "/ui/")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            tab_to(lambda f: f["testid"] == "login-username")
            page.keyboard.type("olivia")
            tab_to(lambda f: f["testid"] == "login-password")
            page.keyboard.type(PASSWORD)
            tab_to(lambda f: f["testid"] == "login-submit")
            page.screenshot(path=str(artefacts / "keyboard-login.png"))
            page.keyboard.press("Enter")
            page.wait_for_selector("h1:has-text('Dashboard')")

            tab_to(lambda f: f["tag"] == "a" and f["text"] == "Dead letters")
            page.keyboard.press("Enter")
            page.wait_for_url("**/ui/dead-letters")
            tab_to(lambda f: f["testid"] == "replay")
            page.screenshot(path=str(artefacts / "keyboard-dead-letters.png"))
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/ui/dead-letters/{dead['id']}/replay")
            stage = tab_to(lambda f: f["tag"] == "input" and f["value"] in ("translate", "deliver"))
            assert stage["value"] == "translate" and stage["checked"]  # the default
            page.keyboard.press("ArrowDown")  # the next stage of the radio group: deliver
            assert page.evaluate(FOCUS_JS)["value"] == "deliver" and page.evaluate(FOCUS_JS)["checked"]
            tab_to(lambda f: f["testid"] == "confirm")
            page.screenshot(path=str(artefacts / "keyboard-confirm.png"))
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/ui/messages/{message_id}")
            expect(page.get_by_test_id("message-status")).to_have_text("acknowledged", timeout=30_000)
            expect(page.get_by_test_id("timeline")).to_contain_text("from: deliver")
        finally:
            context.close()
    assert erp.accepted and max(erp.accepted.values()) == 1  # delivered once, under its key
    entries = api(base, "/api/v1/messages/" + message_id)["timeline"]
    assert any((e["detail"] or {}).get("from") == "deliver" for e in entries)
