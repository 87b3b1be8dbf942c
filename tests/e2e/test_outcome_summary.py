"""The trial summary in the browser: reached from the navigation, its per-arm table and
readiness table shown, the waterfall plot loaded, without a single Content-Security-Policy
violation; the participant page's readiness section one click away."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD
from tests.monitoring.test_outcome import trial_of

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.outcome"

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def trial(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        trial_of(
            {
                "LIM-001": ("G1", 2000.0, 800.0),
                "LIM-002": ("G1", 2000.0, None),
                "LIM-011": ("G2", 2000.0, 1000.0),
                "LIM-012": ("G2", 2000.0, 2800.0),
            }
        )


def test_the_summary_shows_the_arms_the_readiness_and_the_waterfall(page, log_in, trial):
    complaints = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    log_in(TECHNICIAN)

    page.get_by_role("link", name="Trial summary").click()
    expect(page.locator("h1")).to_have_text("Trial summary: primary outcome")
    group_2 = page.locator("table.outcome-arms tr[data-arm='G2']")
    expect(group_2.locator("[data-figure='paired_vegf']")).to_have_text("2")
    expect(group_2.locator("[data-figure='vegf_change']")).to_contain_text(
        "-5.0 % (IQR -27.5 % to +17.5 %), n = 2"
    )
    expect(page.locator("table.outcome-participants tbody tr")).to_have_count(4)
    alone = page.locator("tr[data-participant='LIM-002']")
    expect(alone.locator("[data-state='reportable']")).not_to_have_count(0)
    expect(alone).to_contain_text("not assayed")

    picture = page.locator("img.waterfall")
    expect(picture).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 300", arg=picture.element_handle()
    )
    assert page.evaluate("window.__violations") + complaints == []

    page.locator("tr[data-participant='LIM-011'] a", has_text="LIM-011").click()
    section = page.locator("section.outcome-readiness")
    expect(section.locator("tr[data-visit='M2']")).to_contain_text("reportable")
    expect(section.locator("tr[data-visit='M6']")).to_contain_text("not collected")
