"""The Content-Security-Policy in a real browser: the pages with scripts (scan, visit
registration, box map, scan-to-store) work under it without a single violation, and an
injected inline script is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.headers import CONTENT_SECURITY_POLICY
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.csp"
BOX = "BX-0001"
# Recorded before any page script runs (the browser's own channel, which the policy does
# not govern): every violation the page meets.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
window.__printed = 0;
window.print = function () { window.__printed += 1; };
"""


@pytest.fixture
def bench(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({BOX: "Box 1"}, box_type="100-place box", rows=10, cols=10)
        factories.participant("LIM", code="LIM-001")
        factories.participant("LIM", code="LIM-002")
        codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    return codes


@pytest.fixture
def watched(page):
    """The page, with every CSP violation and console complaint recorded."""
    complaints = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    page.complaints = complaints
    return page


def violations(page) -> list[str]:
    return page.evaluate("window.__violations") + page.complaints


def goto(page, url):
    response = page.goto(url)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    return response


def test_the_pages_with_scripts_run_under_the_policy_without_violations(watched, log_in, bench):
    page = watched
    log_in(TECHNICIAN)

    # Scan: scan.js keeps the focus and answers a scan.
    goto(page, "/scan")
    wait_for_focus(page, "code")
    scan(page, bench[0])
    expect(page.locator('.scan-state[data-state="found"]')).to_be_visible()
    wait_for_focus(page, "code")
    assert violations(page) == []

    # Registration: register.js, focus.js, the language menu (controls.js).
    goto(page, "/participants/LIM-002/register")
    page.select_option("#visit", "BL")
    expect(page.locator("fieldset.tube").first).to_be_visible()
    assert violations(page) == []

    # The box map: its wells sized for 10 columns, its print button.
    goto(page, f"/boxes/{BOX}")
    grid = page.locator("#box-map")
    expect(grid).to_have_attribute("data-cols", "10")
    assert grid.evaluate("g => getComputedStyle(g).getPropertyValue('--cols').trim()") == "10"
    page.get_by_role("button", name="Print the box map").click()
    assert page.evaluate("window.__printed") == 1
    assert violations(page) == []

    # Scan-to-store: a box, then a tube, as the scanner types them.
    goto(page, f"/storage/scan?box={BOX}")
    wait_for_focus(page, "code")
    scan(page, bench[1])
    assert path(page) == "/storage/scan"
    expect(page.locator(f"#box-map [data-barcode='{bench[1]}']")).to_have_count(1)
    assert violations(page) == []

    # The language menu sends its form on change, from controls.js.
    with page.expect_navigation():
        page.select_option("#lang", "fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert violations(page) == []


def test_an_injected_inline_script_and_style_are_refused(watched, log_in, bench):
    page = watched
    log_in(TECHNICIAN)
    goto(page, "/scan")
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__ran = true";
        document.body.appendChild(script);
        const div = document.createElement("div");
        div.innerHTML = '<img src="x.png" onerror="window.__ran = true">';
        document.body.appendChild(div);
        document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: red">x</p>');
      }"""
    )
    page.wait_for_function("window.__violations.length >= 2")
    assert page.evaluate("window.__ran") is None
    color = page.locator("#styled").evaluate("p => getComputedStyle(p).color")
    assert color != "rgb(255, 0, 0)"
    found = " ".join(page.evaluate("window.__violations"))
    assert "script-src" in found and "style-src" in found
