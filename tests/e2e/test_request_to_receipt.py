"""One request from the researcher's submission to its receipt at the laboratory, in the
browser: catalogue, request with its live match count, review and approval, picking by
scan (a wrong tube included), packing, dispatch, receipt by scan."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import stock
from tests.e2e.conftest import TABLET, TIMEOUT_MS
from tests.e2e.pages import path, scan, wait_for_focus

pytestmark = pytest.mark.e2e


@pytest.fixture
def bank(seed):
    with seed() as db:
        factories.protocol()
        factories.sites()
        for role in ("researcher", "manager", "technician"):
            factories.user(role, name=f"e2e.{role}", password=PASSWORD)
        factories.freezer({})
        stored = stock(db)
    return stored


@pytest.fixture
def as_user(browser, live_server):
    """A separate browser (own cookies) per person, logged in through the form."""
    opened = []

    def open_as(role: str):
        context = browser.new_context(base_url=live_server, viewport=TABLET, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        page = context.new_page()
        page.goto("/login")
        page.fill("#username", f"e2e.{role}")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form button[type=submit].primary")
        return page

    yield open_as
    for context in opened:
        context.close()


def test_a_request_goes_from_the_researcher_to_the_laboratory(bank, as_user):
    researcher = as_user("researcher")
    researcher.get_by_role("link", name="Catalogue").click()
    # Three participants per combination: every planned combination is listed, each as
    # "< 5" with no aliquot count, the empty ones alike.
    rows = researcher.locator("table.catalogue tbody tr")
    expect(rows.first).to_contain_text("< 5")
    assert rows.count() > 4
    assert all(cells.endswith("< 5\t—") for cells in rows.all_inner_texts())
    researcher.get_by_role("link", name="Request aliquots").click()
    researcher.fill("#title", "VEGF kinetics")
    researcher.fill("#aim", "Serum VEGF at baseline, before lenalidomide")
    researcher.get_by_label("BL — Baseline").check()
    researcher.get_by_label("Serum (SER)", exact=True).check()
    expect(researcher.locator("#match")).to_contain_text("fewer than 5 participants")
    researcher.fill("#receiving_lab", "VEGF laboratory, Limoges")
    researcher.fill("#contact_name", "Dr Lab")
    researcher.fill("#contact_email", "lab@chu.example")
    with researcher.expect_navigation():
        researcher.get_by_role("button", name="Submit the request").click()
    expect(researcher.locator(".big-badge")).to_have_text("submitted")
    request_path = path(researcher)

    manager = as_user("manager")
    manager.goto(request_path)
    manager.get_by_role("button", name="Start the review").click()
    expect(manager.locator("table.data tbody tr")).to_have_count(3)
    manager.get_by_role("button", name="Approve and reserve 3 aliquots").click()
    expect(manager.locator(".big-badge")).to_have_text("approved")

    technician = as_user("technician")
    technician.goto(request_path)
    technician.get_by_role("link", name="Pick list").click()
    wait_for_focus(technician, "code")
    reserved = technician.locator("tr.to-pick").evaluate_all(
        "rows => rows.map(r => r.dataset.barcode)"
    )
    assert len(reserved) == 3
    scan(technician, bank[("LIM-001", "M2", "SER")][0])
    expect(technician.locator(".scan-error .scan-title")).to_contain_text("Wrong tube")
    expect(technician.locator("#left")).to_contain_text("3 tubes left")
    for code in reserved:
        wait_for_focus(technician, "code")
        scan(technician, code)
        expect(technician.locator(".scan-ok")).to_contain_text(code)
    expect(technician.locator(".flash-success")).to_contain_text("Every tube is picked")

    technician.goto(request_path)
    technician.get_by_role("button", name="Pack a shipment").click()
    for code in reserved:
        wait_for_focus(technician, "code")
        scan(technician, code)
    expect(technician.locator("table.manifest tbody tr")).to_have_count(3)
    technician.fill("#carrier", "World Courier")
    technician.fill("#tracking_number", "WC-0042")
    technician.fill("#dry_ice_kg", "5")
    technician.fill("#logger_id", "TL-7")
    technician.get_by_role("button", name="Dispatch 3 tubes").click()
    expect(technician.locator(".big-badge")).to_have_text("dispatched")
    researcher.reload()
    expect(researcher.locator(".big-badge")).to_have_text("shipped")

    technician.get_by_role("link", name="Receive").click()
    for code in reserved:
        wait_for_focus(technician, "code")
        scan(technician, code)
        expect(technician.locator(".scan-ok")).to_contain_text(code)
    expect(technician.locator("#count-received")).to_have_text("3")
    technician.fill("#condition", "Dry ice left, tubes frozen")
    technician.get_by_role("button", name="Record the receipt").click()
    expect(technician.locator(".big-badge")).to_have_text("received")

    researcher.reload()
    expect(researcher.locator(".big-badge")).to_have_text("received")
    steps = researcher.locator("ol.timeline li strong").all_inner_texts()
    assert steps == [
        "submitted",
        "under review",
        "approved",
        "being prepared",
        "shipped",
        "received",
    ]
