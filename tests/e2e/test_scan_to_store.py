"""Storing tubes on a bench tablet: a box scanned, then its tubes, as a keyboard-wedge
scanner types them (the code, then Enter), without touching the screen between scans."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from biobank.storage import services as storage
from biobank.study import services as study
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e
TECHNICIAN = "tech.store"
BOX = "BX-0001"
OTHER_BOX = "BX-0002"


class Bench:
    def __init__(self, codes: list[str], elsewhere: str, withdrawn: str):
        self.codes = codes  # LIM-001's aliquots, not yet stored
        self.elsewhere = elsewhere  # an aliquot of LIM-001 stored in OTHER_BOX at A1
        self.withdrawn = withdrawn  # an aliquot of LIM-002, whose consent was withdrawn


@pytest.fixture
def bench(seed) -> Bench:
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({code: f"Box {code[-1]}" for code in (BOX, OTHER_BOX)})
        factories.participant("LIM", code="LIM-001")
        codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
        storage.store(codes[-1], OTHER_BOX, "A1", actor=None)
        factories.participant("LIM", code="LIM-002")
        withdrawn = factories.visit("LIM-002", "BL").aliquots[0].barcode
        study.withdraw_consent("LIM-002", date(2026, 2, 1), actor=None)
    return Bench(codes[:-1], codes[-1], withdrawn)


@pytest.fixture
def box_page(page, log_in, bench):
    """The technician opens "Store tubes" from the freezers page and scans BOX."""
    log_in(TECHNICIAN)
    page.goto("/storage")
    with page.expect_navigation():
        page.get_by_role("link", name="Store tubes").click()
    assert path(page) == "/storage/scan"
    wait_for_focus(page, "box")
    scan(page, BOX)
    expect(page).to_have_title(f"Store tubes · {BOX} · Biobank")
    wait_for_focus(page, "code")
    return page


def well(page, position):
    return page.locator(f'.box-grid td[data-position="{position}"]')


def test_scanned_tubes_go_to_the_next_free_positions_without_a_click(box_page, bench, screenshot):
    for position, code in zip(("A1", "A2", "A3"), bench.codes, strict=False):
        scan(box_page, code)
        expect(box_page.locator(".flash-success")).to_have_text(f"{code} stored at {position}.")
        expect(well(box_page, position)).to_have_attribute("data-barcode", code)
        expect(well(box_page, position)).to_have_class(
            "well well-available well-found"
        )  # the last tube stored is highlighted
        wait_for_focus(box_page, "code")
        expect(box_page.locator("#code")).to_have_value("")
    expect(box_page.locator(".box-grid td[data-barcode]")).to_have_count(3)
    expect(box_page.get_by_text("78 free positions")).to_be_visible()
    screenshot("scan-to-store-three-tubes")


def test_a_position_scanned_first_receives_the_next_tube(box_page, bench):
    scan(box_page, "c5")
    expect(box_page.locator("label[for=code]")).to_have_text("Scan the tube for position C5")
    expect(well(box_page, "C5")).to_have_class("well well-empty well-target")
    wait_for_focus(box_page, "code")

    scan(box_page, bench.codes[0])
    expect(well(box_page, "C5")).to_have_attribute("data-barcode", bench.codes[0])
    expect(well(box_page, "A1")).not_to_have_attribute("data-barcode", bench.codes[0])

    scan(box_page, bench.codes[1])  # the target was for one tube only
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", bench.codes[1])


def test_a_tube_stored_in_another_box_is_moved_when_scanned_again(
    box_page, bench, page, screenshot
):
    scan(box_page, bench.elsewhere)
    question = box_page.locator(".scan-confirm")
    expect(question).to_contain_text(
        f"{bench.elsewhere} is stored at Freezer −80 n°1 › Shelf 1 › Box 2 ({OTHER_BOX}) › A1."
    )
    expect(question).to_contain_text("Scan it again to move it here.")
    expect(box_page.locator("label[for=code]")).to_have_text(
        f"Scan {bench.elsewhere} again to move it here, or scan the next tube"
    )
    # The scan input keeps the focus: the Move button is one tap away, never one Enter.
    wait_for_focus(box_page, "code")
    expect(
        box_page.get_by_role("button", name=f"Move {bench.elsewhere} into this box")
    ).not_to_be_focused()
    expect(box_page.locator(".box-grid td[data-barcode]")).to_have_count(0)
    screenshot("scan-to-store-confirm-move")

    scan(box_page, bench.elsewhere)
    expect(box_page.locator(".flash-success")).to_have_text(
        f"{bench.elsewhere} moved to A1 (it was at Freezer −80 n°1 › Shelf 1 › Box 2 "
        f"({OTHER_BOX}) › A1)."
    )
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", bench.elsewhere)
    wait_for_focus(box_page, "code")

    page.goto(f"/boxes/{OTHER_BOX}")
    expect(page.locator(".box-grid td[data-barcode]")).to_have_count(0)


def test_the_move_button_confirms_on_a_tap(box_page, bench):
    scan(box_page, bench.elsewhere)
    with box_page.expect_navigation():
        box_page.get_by_role("button", name=f"Move {bench.elsewhere} into this box").click()
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", bench.elsewhere)
    wait_for_focus(box_page, "code")


def test_leaving_a_tube_where_it_is_stores_nothing(box_page, bench):
    scan(box_page, bench.elsewhere)
    with box_page.expect_navigation():
        box_page.get_by_role("link", name="Leave it where it is").click()
    wait_for_focus(box_page, "code")
    expect(box_page.locator(".box-grid td[data-barcode]")).to_have_count(0)


def test_a_tube_whose_consent_was_withdrawn_is_refused(box_page, bench, screenshot):
    scan(box_page, bench.withdrawn)
    refusal = box_page.locator('.scan-state.scan-error[data-state="consent.withdrawn"]')
    expect(refusal.locator(".scan-message")).to_have_text(
        f"Biobank consent of LIM-002 was withdrawn: {bench.withdrawn} cannot be stored."
    )
    expect(refusal.locator(".scan-code")).to_have_text(bench.withdrawn)
    expect(box_page.locator(f'.box-grid td[data-barcode="{bench.withdrawn}"]')).to_have_count(0)
    wait_for_focus(box_page, "code")
    screenshot("scan-to-store-consent-withdrawn")

    scan(box_page, bench.codes[0])  # the next tube goes in as usual
    expect(well(box_page, "A1")).to_have_attribute("data-barcode", bench.codes[0])
