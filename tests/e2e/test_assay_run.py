"""A plate in the browser: the reader file and its plate map uploaded, the fitted curve
looked at, the run accepted, the results found on the aliquot and participant pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.assays.example import make_plate
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import stock

pytestmark = pytest.mark.e2e
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def plate(seed):
    with seed() as db:
        factories.protocol()
        factories.sites()
        factories.user("manager", name="e2e.manager", password=PASSWORD)
        factories.freezer({})
        stored = stock(db, participants=("LIM-001", "LIM-002"))
    concentrations = {
        stored[("LIM-001", "BL", "SER")][0]: 850.0,
        stored[("LIM-001", "M2", "SER")][0]: 310.0,
        stored[("LIM-002", "BL", "SER")][0]: 5.0,
    }
    return make_plate(concentrations)


def test_a_plate_is_imported_checked_on_its_curve_and_accepted(page, log_in, plate):
    log_in("e2e.manager")
    page.get_by_role("link", name="Assays").click()
    page.set_input_files(
        "#reader_file",
        files=[{"name": "vegf-plate1.xlsx", "mimeType": XLSX, "buffer": plate.reader}],
    )
    page.set_input_files(
        "#plate_map", files=[{"name": "map.xlsx", "mimeType": XLSX, "buffer": plate.plate_map}]
    )
    page.fill("#read", "450")
    page.fill("#reference", "540")
    page.get_by_role("button", name="Read and fit").click()
    expect(page.locator(".big-badge")).to_have_text("preview")

    curve = page.locator("img.curve")
    expect(curve).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 300", arg=curve.element_handle()
    )
    expect(page.locator("table.standards tbody tr")).to_have_count(8)
    low = next(b for b, c in plate.truth.items() if c == 5.0)
    expect(page.locator(f"table.samples tr[data-barcode='{low}']")).to_contain_text("< 15.6")

    page.get_by_role("button", name="Accept the run and record its results").click()
    expect(page.locator(".big-badge")).to_have_text("accepted")

    high = next(b for b, c in plate.truth.items() if c == 850.0)
    page.locator(f"table.samples tr[data-barcode='{high}'] a").click()
    results = page.locator("table.aliquot-results")
    expect(results).to_contain_text("VEGF")
    value = float(results.locator("tbody tr td").nth(1).inner_text())
    assert value == pytest.approx(850.0, rel=0.02)

    page.get_by_role("link", name="LIM-001").first.click()
    expect(page.locator("h2", has_text="Results and biological response")).to_be_visible()
    expect(page.locator("img.time-course")).to_be_visible()
    expect(page.locator("table.responses")).to_contain_text("partial")


def test_a_refused_plate_import_comes_back_filled_and_reloads_safely(page, log_in, plate):
    log_in("e2e.manager")
    page.goto("/assays")
    page.set_input_files(
        "#reader_file",
        files=[{"name": "vegf-plate1.xlsx", "mimeType": XLSX, "buffer": plate.reader}],
    )
    page.set_input_files(
        "#plate_map", files=[{"name": "map.xlsx", "mimeType": XLSX, "buffer": plate.plate_map}]
    )
    page.fill("#read", "45O")  # a letter O typed for a zero
    page.fill("#instrument", "Tecan Sunrise")
    page.fill("#kit_lot", "LOT-42")
    page.select_option("#model", "5PL")
    with page.expect_navigation():
        page.get_by_role("button", name="Read and fit").click()

    expect(page.locator(".flash-error")).to_contain_text("Enter a whole number.")
    expect(page.locator("#read ~ .field-error")).to_have_text(
        "Read (nm or block number): Enter a whole number."
    )
    expect(page.locator("#read")).to_have_value("45O")
    expect(page.locator("#instrument")).to_have_value("Tecan Sunrise")
    expect(page.locator("#kit_lot")).to_have_value("LOT-42")
    expect(page.locator("#model")).to_have_value("5PL")
    expect(page.locator(".kept-files")).to_be_visible()
    expect(page.get_by_text("No run yet.")).to_be_visible()

    posted = []
    page.on("request", lambda request: request.method == "POST" and posted.append(request.url))
    page.reload()
    expect(page.locator("h1")).to_have_text("Assay runs")
    expect(page.locator(".flash-error")).to_have_count(0)
    expect(page.locator("#instrument")).to_have_value("")
    page.go_back()
    expect(page.locator("h1")).to_have_text("Assay runs")
    expect(page.get_by_text("No run yet.")).to_be_visible()
    assert posted == []
