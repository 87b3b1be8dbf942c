"""The pages a technician uses: scan, aliquot, visit registration and its result."""

from __future__ import annotations

import html
import re

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


def test_pages_name_the_sample_type_in_words_with_its_code_beside(bench):
    text = html.unescape(bench.get(f"/scan?code={bench.aliquot}").get_data(as_text=True))
    assert "Serum (SER)" in text
    bench.post("/language", data={"lang": "fr", "next": "/"})
    text = html.unescape(bench.get(f"/aliquots/{bench.aliquot}").get_data(as_text=True))
    assert "Sérum (SER)" in text


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
    "tubes-1-not_collected_reason": "failed_draw",
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


# --- what the scan page says of a code that finds no tube ---------------------------------


@pytest.fixture
def freezer(bench, db):
    factories.freezer({"BX-0001": "Box 1"})  # at the central biobank
    db.session.commit()
    return bench


def scan_state(page) -> str:
    return re.search(r'data-state="([^"]+)"', page.get_data(as_text=True)).group(1)


@pytest.mark.parametrize(
    ("typed", "status", "state", "message"),
    [
        ("ABC12", 400, "barcode.length", "ABC12 has 5 characters; an aliquot barcode has 9."),
        ("b4", 400, "barcode.position", "B4 is a position in a box, not a tube"),
        ("A01", 400, "barcode.position", "A01 is a position in a box, not a tube"),
        ("FR-0001", 400, "barcode.container", "This is freezer FR-0001, not a tube"),
    ],
)
def test_the_scan_page_says_what_a_code_that_is_no_tube_is(freezer, typed, status, state, message):
    page = freezer.get(f"/scan?code={typed}")
    assert page.status_code == status
    assert scan_state(page) == state
    assert message in html.unescape(page.get_data(as_text=True))


def test_a_box_scanned_on_the_scan_page_links_to_its_map(freezer):
    page = freezer.get("/scan?code=bx-0001")
    text = html.unescape(page.get_data(as_text=True))
    assert scan_state(page) == "barcode.container"
    assert "This is box BX-0001, not a tube: scan the barcode on the tube." in text
    assert '<a href="/boxes/BX-0001">Open the map of box BX-0001</a>' in text
    assert freezer.get("/boxes/BX-0001").status_code == 200


def test_another_centres_tube_is_said_to_be_so_and_nothing_more(bench, login_as):
    paris = login_as("technician", site="PAR")
    page = paris.get(f"/scan?code={bench.aliquot}")
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 403
    assert scan_state(page) == "aliquot.other_centre"
    assert f"{bench.aliquot} is registered at another centre" in text
    for fact in ("LIM-001", "LIM", "BL", "SER", "500"):
        assert fact not in text.split('id="scan-result"')[1]


# --- visit windows on the registration page ------------------------------------------------

CHECK_DATE = " Check the date the blood was drawn."
EARLY = {key: value.replace("2026-03-02", "2025-12-22") for key, value in FORM.items()}


def test_a_visit_before_its_window_is_refused_on_the_form_and_nothing_is_written(bench):
    text = refused(bench, bench.post("/participants/LIM-001/register", data=EARLY))
    message = (
        "Visit M2 (Month 2 (after 2 cycles)) cannot be collected on 2025-12-22, study day "
        "-14: its window runs from study day 49 to study day 63, so its earliest date is "
        "2026-02-23."
    )
    assert message in text
    shown = f"Blood drawn at: {message}{CHECK_DATE}"  # the field named, as every message
    assert field_errors(text, "SST") == {"tubes-0-collected_at": [shown]}
    assert 'value="2025-12-22T08:30"' in text  # what was typed comes back to be corrected
    assert bench.get("/participants/LIM-001/visits/M2").status_code == 404


def test_a_visit_after_its_window_is_registered_and_flagged(bench):
    late = {key: value.replace("2026-03-02", "2026-03-10") for key, value in FORM.items()}
    response = bench.post("/participants/LIM-001/register", data=late)
    assert response.status_code == 303
    page = html.unescape(bench.get(response.headers["Location"]).get_data(as_text=True))
    assert (
        "outside its protocol window (collected on study day 64, window study days 49 to 63); "
        "it is flagged." in page
    )
    assert "out of window" in page


# --- Post/Redirect/Get on the registration form --------------------------------------------

BOTH_TUBES = {
    **FORM,
    **{key.replace("tubes-0-", "tubes-1-"): value for key, value in FORM.items() if "-0-" in key},
    "tubes-1-tube_type": "EDTA",
    "tubes-1-not_collected_reason": "failed_draw",
}


def field_errors(text: str, tube: str) -> dict[str, list[str]]:
    """The messages shown on the fields of ``tube``'s section, by input id."""
    section = re.search(rf'<fieldset class="tube" data-tube="{tube}">(.*?)</fieldset>', text, re.S)
    found = {}
    blocks = re.findall(r'<div class="field[^"]*has-error">(.*?)</div>', section.group(1), re.S)
    for block in blocks:
        field_id = re.search(r'<(?:input|select)[^>]* id="([^"]+)"', block).group(1)
        found[field_id] = re.findall(r'<p class="field-error" id="[^"]+">(.*?)</p>', block)
    return found


def test_a_refused_rule_of_the_second_tube_is_shown_on_that_tubes_field(bench):
    # The plasma frozen before it was spun, for a Month 4 visit.
    data = {**BOTH_TUBES, "visit": "M4", "tubes-1-frozen_at": "2026-03-02T09:00"}
    response = bench.post("/participants/LIM-001/register", data=data)
    text = refused(bench, response)

    message = "Tube EDTA: the freezing time is before the centrifugation time. Check the times."
    assert field_errors(text, "EDTA") == {"tubes-1-frozen_at": [f"Aliquots frozen at: {message}"]}
    assert field_errors(text, "SST") == {}
    assert re.search(r'<input [^>]*id="tubes-1-frozen_at" [^>]*value="2026-03-02T09:00"', text)
    assert '<option selected value="M4">' in text

    again = html.unescape(bench.get(response.location).get_data(as_text=True))  # a reload
    assert field_errors(again, "EDTA") == {} and message not in again
    assert bench.get("/participants/LIM-001/visits/M4").status_code == 404


def test_a_field_left_empty_on_the_second_tube_is_shown_on_that_tubes_field(bench):
    data = {**BOTH_TUBES, "tubes-1-spun_at": ""}
    text = refused(bench, bench.post("/participants/LIM-001/register", data=data))
    assert field_errors(text, "EDTA") == {
        "tubes-1-spun_at": ["Centrifugation started at (tube EDTA): Required for a collected tube."]
    }
    assert field_errors(text, "SST") == {}
    assert bench.get("/participants/LIM-001/visits/M2").status_code == 404


def test_registering_both_tubes_then_reloading_the_result_writes_nothing_more(bench):
    response = bench.post("/participants/LIM-001/register", data=BOTH_TUBES)
    assert response.status_code == 303
    for _ in range(2):
        page = bench.get(response.headers["Location"]).get_data(as_text=True)
        assert page.count('class="mono"><a href="/aliquots/') == 10
