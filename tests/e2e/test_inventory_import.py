"""Importing a centre's inventory in the browser: a file with problems is read row by row,
the corrected file is applied, and a tube is then found by the code of its old label."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan
from tests.inventory import aliquot, tube, xlsx
from tests.inventory.conftest import BOX_TYPE, lim_freezer

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.inventory"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def bank(seed, live_app, tmp_path):
    """Limoges's −80 °C freezer with box BX-0001 (9 × 9), and a technician of Limoges."""
    live_app.config["INVENTORY_UPLOAD_FOLDER"] = str(tmp_path / "kept")
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name=TECHNICIAN, password=PASSWORD)
        storage.create_container_type(BOX_TYPE, "box", rows=9, cols=9, actor=None)
        lim_freezer()


def upload(page, rows: list[dict], name: str) -> None:
    page.goto("/inventory/import")
    page.set_input_files("#file", files=[{"name": name, "mimeType": XLSX, "buffer": xlsx(rows)}])
    with page.expect_navigation():
        page.get_by_role("button", name="Check the file").click()


def test_an_inventory_is_corrected_applied_and_its_old_labels_scanned(
    page, log_in, bank, screenshot
):
    log_in(TECHNICIAN)
    page.goto("/")
    with page.expect_navigation():
        page.get_by_role("link", name="Import an inventory").click()
    assert path(page) == "/inventory/import"

    # A file with two problems: a volume over the protocol's, a position outside the box.
    wrong = [aliquot(1), aliquot(2, volume_ul=900), aliquot(3, position="K1")]
    upload(page, wrong, "inventaire.xlsx")
    assert path(page) == "/inventory/import/preview"
    problems = page.locator('table[data-category="errors"] tbody tr')
    expect(problems).to_have_count(2)
    expect(problems.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(problems.nth(0).locator("td").nth(1)).to_have_text("volume_ul")
    expect(problems.nth(0).locator("td").nth(2)).to_contain_text("900 µL")
    expect(problems.nth(1).locator("td").nth(0)).to_have_text("4")
    expect(problems.nth(1).locator("td").nth(1)).to_have_text("position")
    expect(page.get_by_role("button", name="Apply")).to_have_count(0)
    screenshot("inventory-problems")

    # Corrected, the file is applied.
    upload(page, tube(3), "inventaire-corrige.xlsx")
    expect(page.locator('dd[data-count="aliquots"]')).to_have_text("3")
    expect(page.locator('dd[data-count="participants"]')).to_have_text("1")
    expect(page.locator('dd[data-count="positions"]')).to_have_text("3")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply: import 3 aliquots").click()
    assert path(page) == "/inventory/import/done"
    expect(page.locator(".flash-success")).to_contain_text("3 aliquots registered")
    expect(page.locator('dd[data-count="aliquots"]')).to_have_text("3")
    expect(page.get_by_role("link", name="Print the labels")).to_have_attribute(
        "href", "/participants/LIM-101/visits/BL/labels"
    )
    screenshot("inventory-imported")

    # Its old label still finds the tube, until the new one is stuck on.
    page.goto("/scan")
    scan(page, "OLD-0002")
    found = page.locator('.scan-state[data-state="found"]')
    expect(found).to_be_visible()
    expect(found.locator("dt:has-text('Participant') + dd")).to_have_text("LIM-101")
    expect(found.locator("[data-old-label]")).to_contain_text("OLD-0002")
    screenshot("inventory-old-label-scanned")
