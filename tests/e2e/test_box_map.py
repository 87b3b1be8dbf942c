"""The box map for a technician who cannot see the colours, or holds no mouse: each well
says where it is, which tube and in what state, in words; a tube opens from a tap or the
keyboard, and closing it brings the keyboard back to the well it came from."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path, signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
TECHNICIAN = "tech.boxmap"
BOX = "BX-0001"
PORTRAIT_TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def codes(seed) -> list[str]:
    """LIM-001's first three baseline aliquots at A1, A2 and A3; the one at A2 checked out."""
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({BOX: "Box 1"})
        factories.participant("LIM", code="LIM-001")
        codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots][:3]
        for position, code in zip(("A1", "A2", "A3"), codes, strict=True):
            storage.store(code, BOX, position, actor=None)
        storage.check_out(codes[1], "ELISA", actor=None)
    return codes


@pytest.fixture
def tablet(browser, live_server, codes):
    """A touch tablet held upright, logged in as the technician, on the box page."""
    with signed_in(
        browser, live_server, TECHNICIAN, viewport=PORTRAIT_TABLET, has_touch=True
    ) as page:
        page.goto(f"/boxes/{BOX}")
        yield page


def well(page, position):
    return page.locator(f'#box-map td[data-position="{position}"]')


def luminance(css_colour: str) -> float:
    """WCAG relative luminance of an rgb()/rgba() colour."""
    channels = [int(v) / 255 for v in re.findall(r"\d+", css_colour)[:3]]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_a_well_says_its_position_tube_and_state_in_words(tablet, codes):
    stored, out, _ = codes
    expect(well(tablet, "A1").get_by_role("link")).to_have_accessible_name(
        re.compile(rf"^A1 · {stored} · in storage\b")
    )
    expect(well(tablet, "A2").get_by_role("link")).to_have_accessible_name(
        re.compile(rf"^A2 · {out} · checked out\b")
    )
    # Seen as well as heard: the checked-out well carries a word the stored one lacks.
    assert "OUT" in well(tablet, "A2").inner_text()
    assert "OUT" not in well(tablet, "A1").inner_text()
    fills = [
        well(tablet, p).evaluate("td => getComputedStyle(td).backgroundColor") for p in ("A1", "A2")
    ]
    assert contrast(*fills) >= 3, fills


def test_only_tubes_are_tab_stops_and_enter_or_a_tap_opens_one(tablet, codes):
    stored, out, _ = codes
    tablet.focus("#find")
    stops = []
    for _ in range(30):  # through the form, the map, and out of it
        tablet.keyboard.press("Tab")
        where = tablet.evaluate(
            "() => document.activeElement.closest('#box-map td')?.dataset.position ?? null"
        )
        if where is None and stops:
            break
        if where is not None:
            stops.append(where)
    assert stops == ["A1", "A2", "A3"]  # the empty wells of the map are passed over

    details = tablet.locator("#tube-A2")
    expect(details).to_be_hidden()
    tablet.locator("#box-map").get_by_role("link", name=re.compile(rf"^A2 · {out}")).focus()
    tablet.keyboard.press("Enter")
    expect(details).to_be_visible()
    expect(details.locator("dt:has-text('Status') + dd")).to_have_text("checked out")
    # Closed from the keyboard, the details give the focus back to the well opened.
    details.get_by_role("link", name="Close").focus()
    tablet.keyboard.press("Enter")
    expect(details).to_be_hidden()
    assert tablet.evaluate("document.activeElement.closest('td')?.dataset.position") == "A2"

    well(tablet, "A1").get_by_role("link").tap()
    first = tablet.locator("#tube-A1")
    expect(first).to_be_visible()
    with tablet.expect_navigation():
        first.get_by_role("link", name="Open the aliquot page").tap()
    assert path(tablet) == f"/aliquots/{stored}"
