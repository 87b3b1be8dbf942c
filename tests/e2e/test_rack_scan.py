"""Importing a rack scan in the browser: upload, preview with its findings, apply."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.racks"
RACK = "BX-0096"


@pytest.fixture
def tubes(seed) -> list[str]:
    """A 96-tube rack (an 8 × 12 box) in a −80 °C freezer holding LIM-001's first two
    aliquots at A01 and A02; the other eight are registered, not stored."""
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({RACK: "Rack 96"}, box_type="96-tube 2D rack", rows=8, cols=12)
        factories.participant("LIM", code="LIM-001")
        codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
        storage.store(codes[0], RACK, "A01", actor=None)
        storage.store(codes[1], RACK, "A02", actor=None)
    return codes


def rack_file(tubes) -> bytes:
    """What the scanner wrote: A01 and A02 swapped, a new tube at A03, A04 unread."""
    lines = [
        "Rack,Position,Tube",
        f"{RACK},A01,{tubes[1]}",
        f"{RACK},A02,{tubes[0]}",
        f"{RACK},A03,{tubes[2]}",
        f"{RACK},A04,NO READ",
        *(f"{RACK},{row}{col:02d},NO TUBE" for row in "BCDEFGH" for col in range(1, 13)),
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_rack_scan_is_previewed_then_applied(page, log_in, tubes, screenshot):
    log_in(TECHNICIAN)
    page.goto("/storage/rack-scan")
    page.set_input_files(
        "#file", files=[{"name": "rack.csv", "mimeType": "text/csv", "buffer": rack_file(tubes)}]
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Compare with the database").click()

    counts = {
        "matched": "0",
        "moved": "3",
        "missing": "0",
        "unexpected": "0",
        "unknown": "0",
        "no_read": "1",
        "errors": "0",
    }
    for name, count in counts.items():
        expect(page.locator(f'dd[data-count="{name}"]')).to_have_text(count)
    grid = page.locator(".rack-grid")
    expect(grid.locator("td[data-position]")).to_have_count(96)
    for position, finding in (("A01", "moved"), ("A03", "moved"), ("A04", "no_read")):
        expect(grid.locator(f'td[data-position="{position}"]')).to_have_attribute(
            "data-finding", finding
        )
    expect(grid.locator('td[data-position="A01"]')).to_have_attribute("data-barcode", tubes[1])
    moved = page.locator('table[data-category="moved"] tbody tr')
    expect(moved).to_have_count(3)
    expect(moved.nth(2)).to_contain_text("not stored")
    screenshot("rack-scan-preview")

    with page.expect_navigation():
        page.get_by_role("button", name="Apply: record 3 tubes where they were read").click()

    assert path(page) == f"/boxes/{RACK}"
    expect(page.locator(".flash-success")).to_have_text(
        f"Rack scan applied to {RACK}: 3 tubes recorded where they were read."
    )
    expect(page.locator(".flash-warning")).to_contain_text("1 not read")
    for position, code in (("A01", tubes[1]), ("A02", tubes[0]), ("A03", tubes[2])):
        expect(page.locator(f'td[data-position="{position}"]')).to_have_attribute(
            "data-barcode", code
        )
    expect(page.locator(".box-grid td[data-barcode]")).to_have_count(3)
    screenshot("rack-scan-applied")


def test_an_unreadable_rack_file_is_named_by_its_line(page, log_in, tubes):
    log_in(TECHNICIAN)
    page.goto("/storage/rack-scan")
    page.set_input_files(
        "#file",
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"Position,Tube\nA01\n"}],
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Compare with the database").click()
    expect(page.locator(".flash-error")).to_contain_text("The rack file cannot be read: line 2")
    expect(page.locator("#file")).to_be_visible()  # the form is there for the next file
