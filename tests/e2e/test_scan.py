"""The scan page on a bench tablet, driven as a keyboard-wedge scanner drives it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.samples import barcodes
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.central"


@pytest.fixture
def serum(seed):
    """A registered baseline visit of LIM-001; returns the barcodes of its serum aliquots."""
    with seed():
        factories.protocol()
        factories.sites()
        user = factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.participant("LIM", code="LIM-001")
        registration = factories.visit("LIM-001", "BL", actor=user)
        serum = next(s for s in registration.specimens if s.tube_type == "SST")
        codes = [a.barcode for a in serum.aliquots]
    return codes


@pytest.fixture
def scan_page(page, log_in, serum):
    log_in(TECHNICIAN)
    page.goto("/scan")
    return page


def test_the_scan_input_is_focused_on_load_in_a_large_font(scan_page):
    assert scan_page.viewport_size == {"width": 1024, "height": 768}
    wait_for_focus(scan_page, "code")
    font_px = scan_page.eval_on_selector("#code", "el => parseFloat(getComputedStyle(el).fontSize)")
    assert font_px >= 24


def test_scanning_a_known_barcode_shows_the_aliquot_and_its_latest_custody_events(
    scan_page, serum, screenshot
):
    scan(scan_page, serum[0])

    found = scan_page.locator('.scan-state[data-state="found"]')
    expect(found).to_be_visible()
    facts = found.locator("dl.facts")
    expect(facts.locator("dt:has-text('Barcode') + dd")).to_have_text(serum[0])
    expect(facts.locator("dt:has-text('Participant') + dd")).to_have_text("LIM-001")
    expect(facts.locator("dt:has-text('Visit') + dd")).to_contain_text("BL")
    expect(facts.locator("dt:has-text('Sample type') + dd")).to_have_text("Serum (SER) · 1/5")
    expect(facts.locator("dt:has-text('Volume left') + dd")).to_contain_text("500 µL")
    expect(facts.locator("dt:has-text('Status') + dd")).to_have_text("registered, not yet stored")
    event = found.locator("table.events tbody tr")
    expect(event).to_have_count(1)
    expect(event.locator("td:nth-child(3)")).to_have_text("registered")
    expect(event.locator("td:nth-child(4)")).to_have_text(TECHNICIAN)
    screenshot("scan-found")


def test_after_a_scan_the_input_is_focused_and_empty_for_the_next_one(scan_page, serum):
    scan(scan_page, serum[0])
    expect(scan_page.locator('.scan-state[data-state="found"]')).to_be_visible()

    wait_for_focus(scan_page, "code")
    expect(scan_page.locator("#code")).to_have_value("")

    scan(scan_page, serum[1])  # the next scan goes straight in, without a click
    expect(scan_page.locator("dt:has-text('Barcode') + dd")).to_have_text(serum[1])


def test_an_unknown_valid_barcode_shows_the_not_found_state(scan_page, serum, screenshot):
    unknown = barcodes.new_aliquot_barcode()
    while unknown in serum:
        unknown = barcodes.new_aliquot_barcode()

    scan(scan_page, unknown)

    state = scan_page.locator(".scan-state")
    expect(state).to_have_attribute("data-state", "aliquot.not_found")
    expect(state).to_have_class("scan-state scan-error scan-aliquot-not_found")
    expect(state.locator(".scan-message")).to_have_text(f"No aliquot with barcode {unknown}.")
    expect(state.locator(".scan-code")).to_have_text(unknown)
    wait_for_focus(scan_page, "code")
    screenshot("scan-not-found")


def test_a_wrong_check_character_shows_not_a_valid_barcode(scan_page, serum, screenshot):
    code = serum[0]
    wrong = code[:-1] + next(c for c in "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ" if c != code[-1])

    scan(scan_page, wrong)

    state = scan_page.locator(".scan-state")
    expect(state).to_have_attribute("data-state", "barcode.invalid")
    expect(state.locator(".scan-message")).to_have_text("not a valid barcode (check character)")
    expect(scan_page.locator('.scan-state[data-state="found"]')).to_have_count(0)
    wait_for_focus(scan_page, "code")
    screenshot("scan-invalid-check-character")


def test_a_lowercase_code_with_surrounding_spaces_still_finds_the_aliquot(scan_page, serum):
    scan(scan_page, f"  {serum[2].lower()}  ")

    expect(scan_page.locator('.scan-state[data-state="found"]')).to_be_visible()
    expect(scan_page.locator("dt:has-text('Barcode') + dd")).to_have_text(serum[2])


@pytest.fixture
def box(seed, serum):
    """Box BX-0001 of the central biobank's freezer, where the technician works."""
    with seed():
        factories.freezer({"BX-0001": "Box 1"})
    return "BX-0001"


def test_a_box_barcode_scanned_says_it_is_a_box_and_links_to_its_map(scan_page, box, screenshot):
    scan(scan_page, box.lower())

    state = scan_page.locator(".scan-state")
    expect(state).to_have_attribute("data-state", "barcode.container")
    expect(state.locator(".scan-title")).to_have_text("✗ Not a tube")
    expect(state.locator(".scan-message")).to_have_text(
        "This is box BX-0001, not a tube: scan the barcode on the tube."
    )
    wait_for_focus(scan_page, "code")
    screenshot("scan-box")

    with scan_page.expect_navigation():
        state.get_by_role("link", name="Open the map of box BX-0001").click()
    assert path(scan_page) == "/boxes/BX-0001"
    expect(scan_page.locator("h1")).to_have_text("Box 1 BX-0001")


@pytest.mark.parametrize(
    ("typed", "state", "message"),
    [
        ("7KQ3", "barcode.length", "7KQ3 has 4 characters; an aliquot barcode has 9."),
        (
            "B4",
            "barcode.position",
            "B4 is a position in a box, not a tube: scan the barcode on the tube.",
        ),
    ],
)
def test_a_short_code_or_a_position_is_named_as_such(scan_page, serum, typed, state, message):
    scan(scan_page, typed)

    result = scan_page.locator(".scan-state")
    expect(result).to_have_attribute("data-state", state)
    expect(result.locator(".scan-message")).to_have_text(message)
    wait_for_focus(scan_page, "code")
