"""The pages a technician uses: scan, aliquot, visit registration and its result."""

from __future__ import annotations

import pytest

from biobank.samples import barcodes
from tests import factories
from tests.pages import refused


@pytest.fixture
def bench(login_as, sites, db):
    factories.participant("LIM", code="LIM-001")
    registration = factories.visit("LIM-001", "BL")
    client = login_as("technician")
    client.aliquot = registration.aliquots[0].barcode
    return client


def test_the_scan_page_shows_the_aliquot_and_its_recent_events(bench):
    page = bench.get(f"/scan?code=%20{bench.aliquot.lower()}%0D%0A")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-state="found"' in text
    for fact in (bench.aliquot, "LIM-001", "BL", "SER", "1/5", "500", "registered"):
        assert fact in text
    assert "autofocus" in text


def test_the_scan_page_says_check_character_for_a_mistyped_code(bench):
    wrong = bench.aliquot[:-1] + ("A" if bench.aliquot[-1] != "A" else "B")
    page = bench.get(f"/scan?code={wrong}")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "scan-barcode-invalid" in text
    assert "not a valid barcode (check character)" in text


def test_the_scan_page_says_not_found_for_an_unknown_code(bench):
    unknown = "ZZZZZZZZ" + barcodes.check_character("ZZZZZZZZ")
    page = bench.get(f"/scan?code={unknown}")
    assert page.status_code == 404
    assert "scan-aliquot-not_found" in page.get_data(as_text=True)


def test_the_aliquot_page_shows_the_pre_analytical_record_and_the_chain(bench):
    text = bench.get(f"/aliquots/{bench.aliquot}").get_data(as_text=True)
    assert "SER-SST-" in text
    assert "Pre-centrifugation delay and temperature" in text
    assert "registered" in text


FORM = {
    "visit": "M2",
    "tubes-0-tube_type": "SST",
    "tubes-0-collected": "y",
    "tubes-0-collected_at": "2026-03-02T08:30",
    "tubes-0-received_at": "2026-03-02T08:50",
    "tubes-0-precentrifugation_temperature": "RT",
    "tubes-0-spun_at": "2026-03-02T09:10",
    "tubes-0-spin_force_g": "2000",
    "tubes-0-spin_minutes": "10",
    "tubes-0-spin_temperature_c": "20,5",
    "tubes-0-spin_braking": "y",
    "tubes-0-postcentrifugation_temperature": "RT",
    "tubes-0-frozen_at": "2026-03-02T09:45",
    "tubes-0-storage_temperature_c": "-80",
    "tubes-1-tube_type": "EDTA",
}


def test_registering_through_the_form_creates_the_aliquots(bench):
    response = bench.post("/participants/LIM-001/register", data=FORM)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/participants/LIM-001/visits/M2"
    page = bench.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count('class="mono"><a href="/aliquots/') == 5
    assert "registered: 5 aliquots" in page


def test_form_times_are_read_in_the_centres_time_zone(bench):
    bench.post("/participants/LIM-001/register", data=FORM)
    body = bench.get("/api/v1/participants/LIM-001").get_json()
    assert body["visits"][1]["collected_on"] == "2026-03-02"
    from biobank.extensions import db
    from biobank.samples.models import Specimen

    specimen = (
        db.session.execute(
            db.select(Specimen).where(Specimen.tube_type == "SST").order_by(Specimen.id.desc())
        )
        .scalars()
        .first()
    )
    assert specimen.collected_at.isoformat() == "2026-03-02T07:30:00+00:00"  # CET is UTC+1
    assert specimen.spin_temperature_c == 20.5


def test_a_missing_time_is_shown_on_its_field_and_nothing_is_written(bench):
    data = {**FORM, "tubes-0-frozen_at": ""}
    text = refused(bench, bench.post("/participants/LIM-001/register", data=data))
    assert "Required for a collected tube." in text
    assert bench.get("/participants/LIM-001/visits/M2").status_code == 404


def test_times_out_of_order_are_shown_and_nothing_is_written(bench):
    data = {**FORM, "tubes-0-frozen_at": "2026-03-02T08:00"}
    text = refused(bench, bench.post("/participants/LIM-001/register", data=data))
    assert "is before" in text
    assert 'value="2026-03-02T08:00"' in text  # the times typed come back to be corrected
    assert bench.get("/participants/LIM-001/visits/M2").status_code == 404


def test_a_registered_visit_is_no_longer_offered(bench):
    page = bench.get("/participants/LIM-001/register").get_data(as_text=True)
    assert 'value="BL"' not in page and 'value="M2"' in page
