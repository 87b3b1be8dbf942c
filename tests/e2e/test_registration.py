"""Registering a visit in the browser: participant code, tube times, aliquots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.samples import barcodes
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e
PARTICIPANT = "LIM-001"
# Typed in the centre's time zone (LIM: Europe/Paris), as datetime-local inputs take them.
TIMES = {
    "collected_at": "2026-01-05T08:30",
    "received_at": "2026-01-05T08:50",
    "spun_at": "2026-01-05T09:10",
    "frozen_at": "2026-01-05T09:40",
}
# Room temperature < 2 h, 2000 g 10 min 20 °C with brake, no second spin, frozen
# within an hour of spinning, kept at −80 °C.
SPREC = {"SST": "SER-SST-A-B-N-B-D", "EDTA": "PL1-PED-A-B-N-B-D"}
SAMPLE_TYPES = {"SST": "SER", "EDTA": "PL1"}


@pytest.fixture
def technician_token(seed):
    """A LIM technician (logged in as ``tech.lim``) and a bearer token of theirs."""
    with seed():
        factories.protocol()
        factories.sites()
        user = factories.user("technician", site="LIM", name="tech.lim", password=PASSWORD)
        factories.participant("LIM", code=PARTICIPANT)
        token = factories.token(user)
    return token


def register_baseline(page, screenshot=None) -> None:
    """Go from the home page through "Register a visit" to the visit's result page."""
    page.goto("/")
    page.locator("nav").get_by_role("link", name="Register a visit").click()
    page.wait_for_url("**/register")
    wait_for_focus(page, "participant")
    scan(page, PARTICIPANT)
    assert path(page) == f"/participants/{PARTICIPANT}/register"

    page.select_option("#visit", "BL")
    for tube in SPREC:
        section = page.locator(f"fieldset.tube[data-tube={tube}]")
        for field, value in TIMES.items():
            section.locator(f"input[type=datetime-local][name$='-{field}']").fill(value)
    if screenshot:
        screenshot("registration-form")
    with page.expect_navigation():
        page.get_by_role("button", name="Register and create aliquots").click()


def test_registering_a_visit_lists_its_ten_aliquots_with_their_sprec_codes(
    page, log_in, technician_token, screenshot
):
    log_in("tech.lim")

    register_baseline(page, screenshot)

    assert path(page) == f"/participants/{PARTICIPANT}/visits/BL"
    expect(page.locator(".flash-success")).to_have_text(
        f"Visit BL of {PARTICIPANT} registered: 10 aliquots."
    )
    screenshot("visit-page")
    seen = []
    for tube, sprec_code in SPREC.items():
        section = page.locator("section.specimen").filter(
            has=page.locator("h2", has_text=f"{tube} · ")
        )
        expect(section.locator("h2")).to_have_text(f"{tube} · {SAMPLE_TYPES[tube]} · {sprec_code}")
        rows = section.locator("table.aliquots tbody tr")
        expect(rows).to_have_count(5)
        codes = section.locator("table.aliquots tbody td.mono a").all_inner_texts()
        assert [barcodes.validate(code) for code in codes] == codes
        expect(rows.locator("td:nth-child(2)")).to_have_text([f"{n}/5" for n in range(1, 6)])
        seen += codes
    assert len(set(seen)) == 10


def test_a_registered_visit_is_no_longer_offered_and_the_api_refuses_its_tube(
    page, log_in, api, technician_token
):
    log_in("tech.lim")
    register_baseline(page)
    assert path(page).endswith("/visits/BL")

    page.goto(f"/participants/{PARTICIPANT}/register")
    offered = page.locator("#visit option").evaluate_all("options => options.map(o => o.value)")
    assert offered, "the later visits of the schedule are still offered"
    assert "BL" not in offered

    tube = {
        "tube_type": "SST",
        "collected_at": "2026-01-05T08:30:00+01:00",
        "spun_at": "2026-01-05T09:10:00+01:00",
        "frozen_at": "2026-01-05T09:40:00+01:00",
        "spin": {"temperature_c": 20, "force_g": 2000, "minutes": 10},
    }
    response = api.post(
        "/api/v1/specimens",
        data={"participant": PARTICIPANT, "visit": "BL", "tubes": [tube]},
        headers={"Authorization": f"Bearer {technician_token}"},
    )
    assert response.status == 409, response.text()
    assert response.json()["error"]["code"] == "specimen.duplicate"

    page.goto(f"/participants/{PARTICIPANT}/visits/BL")
    expect(page.locator("table.aliquots tbody tr")).to_have_count(10)  # nothing was added
