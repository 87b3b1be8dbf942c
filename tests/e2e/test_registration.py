"""Registering a visit in the browser: participant code, tube times, aliquots."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from biobank.extensions import db
from biobank.samples import barcodes
from biobank.samples.models import Specimen
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e
PARTICIPANT = "LIM-001"
# Typed in the centre's time zone (LIM: Europe/Paris), in ISO 8601, which every page reads.
TIMES = {
    "collected_at": "2026-01-05T08:30",
    "received_at": "2026-01-05T08:50",
    "spun_at": "2026-01-05T09:10",
    "frozen_at": "2026-01-05T09:40",
}
# Room temperature < 2 h, 2000 g 10 min 20 °C with brake, no second spin, frozen
# within an hour of spinning, kept at −80 °C.
SPREC = {"SST": "SER-SST-A-B-N-B-D", "EDTA": "PL1-PED-A-B-N-B-D"}
SAMPLE_TYPES = {"SST": "Serum (SER)", "EDTA": "Plasma, single spun (PL1)"}


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
            section.locator(f"input[name$='-{field}']").fill(value)
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


def times_of(section) -> dict[str, str]:
    return {field: section.locator(f"input[name$='-{field}']").input_value() for field in TIMES}


def test_after_a_refused_registration_corrected_times_still_reach_the_other_tube(
    page, log_in, technician_token, live_app, screenshot
):
    log_in("tech.lim")
    page.goto(f"/participants/{PARTICIPANT}/register")
    page.select_option("#visit", "BL")
    serum = page.locator("fieldset.tube[data-tube=SST]")
    plasma = page.locator("fieldset.tube[data-tube=EDTA]")
    frozen = "input[name$='-frozen_at']"
    received = "input[name$='-received_at']"
    # The serum's times typed with a slip (frozen before it was spun); the plasma tube
    # takes them as they are typed, except its reception time, typed by hand.
    for field, value in {**TIMES, "frozen_at": "2026-01-05T08:00"}.items():
        serum.locator(f"input[name$='-{field}']").fill(value)
    plasma.locator(received).fill("2026-01-05T08:55")
    expect(plasma.locator(frozen)).to_have_value("2026-01-05T08:00")

    with page.expect_navigation():
        page.get_by_role("button", name="Register and create aliquots").click()

    assert path(page) == f"/participants/{PARTICIPANT}/register"
    expect(page.locator(".flash-error")).to_contain_text(
        "Tube SST: the freezing time is before the centrifugation time."
    )
    expect(serum.locator(".field.has-error " + frozen)).to_have_count(1)
    expect(plasma.locator(".field.has-error")).to_have_count(0)
    assert times_of(plasma) == {
        **TIMES,
        "received_at": "2026-01-05T08:55",
        "frozen_at": "2026-01-05T08:00",
    }
    screenshot("registration-refused")

    serum.locator(frozen).fill("2026-01-05T09:40")
    serum.locator(received).fill("2026-01-05T08:52")

    expect(plasma.locator(frozen)).to_have_value("2026-01-05T09:40")  # a copy follows
    expect(plasma.locator(received)).to_have_value("2026-01-05T08:55")  # typed: kept
    with page.expect_navigation():
        page.get_by_role("button", name="Register and create aliquots").click()

    assert path(page) == f"/participants/{PARTICIPANT}/visits/BL"
    with live_app.app_context():
        recorded = {
            s.tube_type: (s.received_at, s.frozen_at)
            for s in db.session.execute(sa.select(Specimen)).scalars()
        }
    # Typed in Paris (UTC+1 in January), recorded in UTC.
    assert recorded == {
        "SST": (datetime(2026, 1, 5, 7, 52, tzinfo=UTC), datetime(2026, 1, 5, 8, 40, tzinfo=UTC)),
        "EDTA": (datetime(2026, 1, 5, 7, 55, tzinfo=UTC), datetime(2026, 1, 5, 8, 40, tzinfo=UTC)),
    }
