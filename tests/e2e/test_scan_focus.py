"""Storage scan pages on a bench tablet with a touch screen and a keyboard-wedge scanner:
a second scan of the same tube, an Enter on whatever has the focus, a tap anywhere, a scan
arriving with no field focused. Each ends with a true record and a clear message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from biobank.custody import services as custody
from biobank.samples import services as samples
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.conftest import TABLET
from tests.e2e.pages import focused_id, path, scan, signed_in, wait_for_focus

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.focus"
BOX = "BX-0001"
OTHER_BOX = "BX-0002"


class Bench:
    def __init__(self, codes: list[str], elsewhere: str):
        self.codes = codes  # LIM-001's serum aliquots 1 to 4, not yet stored
        self.elsewhere = elsewhere  # its fifth serum aliquot, stored in OTHER_BOX at A1


@pytest.fixture
def bench(seed) -> Bench:
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({BOX: "Box 1", OTHER_BOX: "Box 2"})
        factories.participant("LIM", code="LIM-001")
        codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
        storage.store(codes[4], OTHER_BOX, "A1", actor=None)
    return Bench(codes[:4], codes[4])


@pytest.fixture
def tablet(browser, live_server, bench):
    """A touch tablet, logged in as the technician."""
    with signed_in(browser, live_server, TECHNICIAN, viewport=TABLET, has_touch=True) as page:
        yield page


@pytest.fixture
def box_page(tablet):
    tablet.goto(f"/storage/scan?box={BOX}")
    wait_for_focus(tablet, "code")
    return tablet


@pytest.fixture
def record(live_app):
    """``record(code)``: (where the database has the tube, its custody event kinds)."""

    def read(code: str) -> tuple[str | None, list[str]]:
        with live_app.app_context():
            found = samples.scan_aliquot(code, actor=None)
            aliquot = samples.find_aliquot(code, actor=None)
            return found.location, [e.kind for e in custody.history(aliquot.id)]

    return read


def well(page, position):
    return page.locator(f'.box-grid td[data-position="{position}"]')


def nothing_focused(page) -> None:
    # The page gives the focus back to its scan field when the window regains it: on a
    # loaded machine that event can arrive just after the blur. Blur until nothing stays
    # focused, so that the scan which follows arrives with no focused field.
    for _ in range(20):
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(50)
        if focused_id(page) == "":
            return
    assert focused_id(page) == ""


# --- a second scan, an Enter on a button -----------------------------------------------------


def test_a_tube_scanned_twice_stays_put_and_the_next_tube_is_stored(box_page, bench, record):
    first, second = bench.codes[:2]
    scan(box_page, first)
    expect(box_page.locator(".flash-success")).to_have_text(f"{first} stored at A1.")
    scan(box_page, first)  # the same label read twice
    expect(box_page.locator(".flash-info")).to_have_text(
        f"{first} is already here at A1: nothing was recorded."
    )
    expect(box_page.get_by_role("button", name=f"Move {first} into this box")).to_have_count(0)
    wait_for_focus(box_page, "code")

    scan(box_page, second)
    expect(box_page.locator(".flash-success")).to_have_text(f"{second} stored at A2.")
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", first)
    expect(well(box_page, "A2")).to_have_attribute("data-barcode", second)
    where, kinds = record(first)
    assert where.endswith(f"({BOX}) › A1") and kinds == ["REGISTERED", "STORED"]
    assert record(second)[0].endswith(f"({BOX}) › A2")


def test_a_scan_while_the_move_button_has_the_focus_is_a_new_scan_not_a_confirmation(
    box_page, bench, record
):
    scan(box_page, bench.elsewhere)
    move = box_page.get_by_role("button", name=f"Move {bench.elsewhere} into this box")
    expect(move).to_be_visible()
    move.focus()  # a tap left the focus on it, or a Tab
    expect(move).to_be_focused()

    scan(box_page, bench.codes[0])  # the next tube's code and Enter
    expect(box_page.locator(".flash-success")).to_have_text(f"{bench.codes[0]} stored at A1.")
    expect(box_page.locator(".scan-confirm")).to_have_count(0)
    where, kinds = record(bench.elsewhere)
    assert where.endswith(f"({OTHER_BOX}) › A1") and kinds == ["REGISTERED", "STORED"]
    assert record(bench.codes[0])[0].endswith(f"({BOX}) › A1")


def test_a_reload_of_the_confirmation_asks_nothing_and_moves_nothing(box_page, bench, record):
    scan(box_page, bench.elsewhere)
    expect(box_page.locator(".scan-confirm")).to_be_visible()
    box_page.reload()
    expect(box_page.locator(".scan-confirm")).to_have_count(0)
    wait_for_focus(box_page, "code")
    assert record(bench.elsewhere)[0].endswith(f"({OTHER_BOX}) › A1")


# --- taps and scans with no field focused ------------------------------------------------------


def test_a_tap_on_the_page_gives_the_focus_back_to_the_scan_input(box_page, bench):
    box_page.tap("main > p")  # the box's location line: nothing to act on
    wait_for_focus(box_page, "code")
    scan(box_page, bench.codes[0])
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", bench.codes[0])


def test_a_scan_arriving_with_no_field_focused_is_stored(box_page, bench):
    nothing_focused(box_page)
    scan(box_page, bench.codes[0])
    expect(box_page.locator(".flash-success")).to_have_text(f"{bench.codes[0]} stored at A1.")
    wait_for_focus(box_page, "code")


def test_a_scan_while_a_link_has_the_focus_goes_to_the_scan_input(box_page, bench):
    box_page.get_by_role("link", name="Another box").focus()
    scan(box_page, bench.codes[0])
    assert path(box_page) == "/storage/scan"
    expect(box_page.locator(".flash-success")).to_have_text(f"{bench.codes[0]} stored at A1.")


def test_tapping_a_free_well_sends_the_next_tube_there(box_page, bench, record):
    with box_page.expect_navigation():
        well(box_page, "C5").locator("a").tap()
    expect(box_page.locator("label[for=code]")).to_have_text("Scan the tube for position C5")
    expect(well(box_page, "C5")).to_have_class("well well-empty well-target")
    wait_for_focus(box_page, "code")
    scan(box_page, bench.codes[0])
    expect(well(box_page, "C5")).to_have_attribute("data-barcode", bench.codes[0])
    assert record(bench.codes[0])[0].endswith(f"({BOX}) › C5")


def test_tapping_a_filled_well_shows_the_tube_and_the_next_scan_still_works(box_page, bench):
    scan(box_page, bench.codes[0])
    details = box_page.locator("#tube-A1")
    expect(details).to_be_hidden()
    well(box_page, "A1").locator("a").tap()
    expect(details).to_be_visible()
    expect(details.locator("h2")).to_have_text(f"A1 · {bench.codes[0]}")
    expect(details.locator("dt:has-text('Participant') + dd")).to_have_text("LIM-001")
    expect(details.locator("dt:has-text('Visit') + dd")).to_have_text("BL")
    expect(details.locator("dt:has-text('Sample type') + dd")).to_have_text("Serum (SER)")
    expect(details.locator("dt:has-text('Aliquot') + dd")).to_have_text("n° 1/5")
    expect(details.locator("dt:has-text('Status') + dd")).to_have_text("in storage")
    expect(details.get_by_role("link", name="Open the aliquot page")).to_be_visible()
    expect(details.get_by_role("link", name="Check it out")).to_have_attribute(
        "href", f"/storage/check-out?code={bench.codes[0]}"
    )
    wait_for_focus(box_page, "code")
    scan(box_page, bench.codes[1])
    expect(well(box_page, "A2")).to_have_attribute("data-barcode", bench.codes[1])


# --- the box page ----------------------------------------------------------------------------


def test_the_box_page_shows_each_state_in_words_and_only_tubes_are_tab_stops(
    tablet, bench, seed, tmp_path
):
    with seed():
        storage.store(bench.codes[0], OTHER_BOX, actor=None)
        storage.check_out(bench.codes[0], "ELISA", actor=None)
    tablet.goto(f"/boxes/{OTHER_BOX}")
    expect(well(tablet, "A1")).to_contain_text("LIM-001")
    expect(well(tablet, "A2")).to_contain_text("↗ out")
    wells = ".box-grid a, .box-grid button, .box-grid [tabindex]"
    stops = tablet.evaluate(
        "s => Array.from(document.querySelectorAll(s)).map(e => e.closest('td').dataset.position)",
        wells,
    )
    assert stops == ["A1", "A2"]
    well(tablet, "A2").locator("a").tap()
    details = tablet.locator("#tube-A2")
    expect(details.locator("dt:has-text('Status') + dd")).to_have_text("checked out")
    expect(details.get_by_role("link", name="Return it")).to_be_visible()
    folder = Path(os.environ.get("BIOBANK_E2E_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    tablet.screenshot(path=str(folder / "box-page-tube-details.png"), full_page=True)


# --- the shared scan page -----------------------------------------------------------------------


def test_the_scan_page_takes_a_scan_after_a_tap_or_with_nothing_focused(tablet, bench):
    tablet.goto("/scan")
    wait_for_focus(tablet, "code")
    tablet.tap("label[for=code]")
    tablet.tap("main")
    wait_for_focus(tablet, "code")
    nothing_focused(tablet)
    scan(tablet, bench.codes[0])
    expect(tablet.locator("dt:has-text('Barcode') + dd")).to_have_text(bench.codes[0])


# --- check-out, return, move ----------------------------------------------------------------------


def test_free_text_fields_are_plain_text_and_codes_upper_case_monospace(tablet, bench):
    tablet.goto("/storage/check-out")
    style = """el => { const s = getComputedStyle(el), p = getComputedStyle(el, '::placeholder');
        return [s.textTransform, p.textTransform, s.fontFamily.includes('Mono')]; }"""
    assert tablet.eval_on_selector("#code", style)[0] == "uppercase"
    assert tablet.eval_on_selector("#code", style)[2] is True
    for field in ("#reason", "#destination"):
        assert tablet.eval_on_selector(field, style) == ["none", "none", False], field


def test_a_tube_checked_out_then_returned_with_its_volume_filled_in(tablet, bench, seed, record):
    code = bench.codes[0]
    with seed():
        storage.store(code, BOX, "A1", actor=None)
    tablet.goto("/storage/check-out")
    wait_for_focus(tablet, "code")
    tablet.keyboard.type(code)
    tablet.keyboard.press("Enter")  # the scanner's Enter moves on to the reason
    wait_for_focus(tablet, "reason")
    tablet.keyboard.type("VEGF ELISA run 12")
    with tablet.expect_navigation():
        tablet.keyboard.press("Enter")
    expect(tablet.locator(".flash-success")).to_have_text(f"{code} checked out.")
    with tablet.expect_navigation():
        tablet.get_by_role("link", name=f"Return {code} when it comes back").tap()

    expect(tablet.locator("#volume_ul")).to_have_value("500")
    expect(tablet.locator("#thawed")).to_be_checked()
    wait_for_focus(tablet, "volume_ul")
    tablet.fill("#volume_ul", "320")
    with tablet.expect_navigation():
        tablet.keyboard.press("Enter")
    expect(tablet.locator(".flash-success")).to_contain_text(f"{code} is back at")
    where, kinds = record(code)
    assert kinds[-2:] == ["CHECKED_OUT", "RETURNED"] and where.endswith(f"({BOX}) › A1")


def test_the_return_page_fills_the_volume_once_the_tube_is_scanned(tablet, bench, seed, live_app):
    code = bench.codes[0]
    with seed():
        storage.store(code, BOX, "A1", actor=None)
        storage.check_out(code, "ELISA", actor=None)
    tablet.goto("/storage/return")
    wait_for_focus(tablet, "code")
    scan(tablet, code)
    expect(tablet.locator("#volume_ul")).to_have_value("500")
    expect(tablet.locator("#thawed")).to_be_checked()
    with tablet.expect_navigation():
        tablet.get_by_role("button", name=f"Return {code}").tap()
    expect(tablet.locator(".flash-success")).to_contain_text(f"{code} is back at")
    with live_app.app_context():
        aliquot = samples.scan_aliquot(code, actor=None)
        assert (aliquot.status, aliquot.volume_ul, aliquot.freeze_thaw_count) == (
            "in_storage",
            500,
            1,
        )


def test_moving_a_box_by_two_scans_and_again_records_one_move(tablet, bench, seed, record):
    with seed():
        storage.store(bench.codes[0], BOX, actor=None)
        storage.create_container(
            "shelf", "Shelf 2", parent="FR-0001", barcode="SH-0002", actor=None
        )
    tablet.goto("/storage/move")
    for _ in range(2):
        wait_for_focus(tablet, "container")
        tablet.keyboard.type(BOX)
        tablet.keyboard.press("Enter")  # on to the second field, nothing submitted
        wait_for_focus(tablet, "parent")
        scan(tablet, "SH-0002")
    expect(tablet.locator(".flash-info")).to_have_text(
        f"{BOX} is already in SH-0002: nothing was moved."
    )
    assert record(bench.codes[0])[1] == ["REGISTERED", "STORED", "MOVED"]
