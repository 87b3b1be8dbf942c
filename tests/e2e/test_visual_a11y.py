"""What the eye and the finger need, measured in the browser: a focus ring that stands out,
header targets a gloved finger can hit on an upright tablet, table columns that say what
they hold, and the accounts page without sideways scrolling."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import expect

from biobank.assays.example import make_plate
from biobank.auth import services as auth
from tests import factories
from tests.assays.test_run_page import with_controls
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.e2e.pages import signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
ADMIN = "a11y.admin"
ACCENT = "rgb(11, 92, 173)"  # #0b5cad
PORTRAIT_TABLET = {"width": 768, "height": 1024}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Accounts as a centre has them: long names and e-mail addresses.
COLLEAGUES = {
    "claire.dupont-moreau": ("technician", "claire.dupont-moreau@chu-limoges.example"),
    "jean-baptiste.lefebvre": ("manager", "jean-baptiste.lefebvre@biobanque-centrale.example"),
    "researcher.vegf.lab": ("researcher", "laboratoire.vegf.recherche@univ-limoges.example"),
}


@dataclasses.dataclass
class Bank:
    stored: dict[tuple[str, str, str], list[str]]
    request_id: int


@pytest.fixture
def bank(seed) -> Bank:
    with seed() as db:
        factories.protocol()
        factories.sites()
        factories.user("admin", name=ADMIN, password=PASSWORD)
        for name, (role, email) in COLLEAGUES.items():
            auth.create_user(name, role, PASSWORD, email=email)
        factories.freezer({})
        stored = stock(db, participants=("LIM-001", "LIM-002"))
        researcher = auth.create_user("a11y.researcher", "researcher", PASSWORD)
        request_id = serum_request(researcher).id
    return Bank(stored, request_id)


@pytest.fixture
def tablet(browser, live_server, bank):
    """An upright tablet, logged in as the administrator (every menu link shown)."""
    with signed_in(browser, live_server, ADMIN, viewport=PORTRAIT_TABLET, has_touch=True) as page:
        yield page


def ring(page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
                   return {id: e.id, visible: e.matches(':focus-visible'), colour: s.outlineColor,
                           style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
    )


def test_the_focus_ring_of_an_input_and_a_select_is_the_accent(tablet):
    tablet.goto("/users")
    tablet.focus("#username")
    tablet.keyboard.press("Shift+Tab")
    tablet.keyboard.press("Tab")  # reached by keyboard
    accent = {"visible": True, "colour": ACCENT, "style": "solid", "width": 3}
    assert ring(tablet) == {"id": "username", **accent}
    tablet.keyboard.press("Tab")
    assert ring(tablet) == {"id": "role", **accent}


def test_the_header_targets_take_a_gloved_finger_on_an_upright_tablet(tablet):
    small = tablet.evaluate(
        """() => Array.from(document.querySelectorAll(
                   '.topbar a, .topbar select, .topbar button'))
                 .map(e => [e.textContent.trim() || e.id, e.getBoundingClientRect()])
                 .filter(([, box]) => box.width > 1 && box.height > 1)
                 .filter(([, box]) => box.width < 44 || box.height < 44)
                 .map(([name, b]) => `${name} ${b.width.toFixed(1)}×${b.height.toFixed(1)}`)"""
    )
    assert small == []
    assert tablet.locator("#lang").bounding_box()["height"] >= 44
    assert tablet.locator(".topbar nav a").count() > 10  # the administrator's whole menu


def empty_headers(page) -> list[str]:
    """The header cells that say nothing, as "table class: column number"."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('th'))
                 .filter(th => !th.textContent.trim() && !th.getAttribute('aria-label'))
                 .map(th => `${th.closest('table').className}: ${th.cellIndex + 1}`)"""
    )


def test_every_table_column_says_what_it_holds_and_a_tick_speaks(tablet, bank):
    low_serum = bank.stored[("LIM-002", "BL", "SER")][0]
    plate = make_plate({bank.stored[("LIM-001", "BL", "SER")][0]: 850.0, low_serum: 5.0})
    tablet.goto("/assays")
    tablet.set_input_files(
        "#reader_file", files=[{"name": "plate.xlsx", "mimeType": XLSX, "buffer": plate.reader}]
    )
    tablet.set_input_files(
        "#plate_map",
        files=[{"name": "map.xlsx", "mimeType": XLSX, "buffer": with_controls(plate.plate_map)}],
    )
    tablet.fill("#read", "450")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="Read and fit").click()
    expect(tablet.locator("table.controls")).to_be_visible()
    assert empty_headers(tablet) == []
    # The QC column's ✓ and ✗ say "yes" and "no" under their "Within limits".
    for table in ("standards", "controls"):
        header = tablet.locator(f"table.{table} thead th").last
        assert header.text_content().strip() == "Within limits"
        marks = [
            text
            for text in tablet.locator(f"table.{table} tbody td").all_text_contents()
            if "✓" in text or "✗" in text
        ]
        assert marks
        for text in marks:
            assert text.replace("✓", "").replace("✗", "").strip() in ("yes", "no"), text
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="Accept the run and record its results").click()

    for page in (
        "/participants/LIM-002",  # its visit schedule and, now, its results
        f"/aliquots/{low_serum}",
        "/users",
        f"/requests/{bank.request_id}/review",
        "/boxes/BX-0001",
        "/sites",
    ):
        tablet.goto(page)
        expect(tablet.locator("h1")).to_be_visible()
        assert empty_headers(tablet) == [], page


def test_the_accounts_page_fits_an_upright_tablet(tablet):
    tablet.goto("/users")
    expect(tablet.locator("table.accounts tbody tr")).to_have_count(len(COLLEAGUES) + 2)
    width = tablet.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PORTRAIT_TABLET["width"]
