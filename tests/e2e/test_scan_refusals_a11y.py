"""The scan pages for a technician who listens as much as they look. Every scan page
refuses a scan the same way: the error tone, the message in a region the field names as
its description (aria-describedby), shown once, and the focus kept in the field for the
next scan (or the field to correct). Each page has its level-one heading; the receipt's
warning about the tubes not scanned is announced."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.samples import barcodes
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.e2e.conftest import TABLET
from tests.e2e.pages import scan, signed_in, wait_for_focus

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
TECHNICIAN = "tech.refusals"
BOX = "BX-0001"
DRY_ICE = Dispatch("World Courier", "WC123456", True, 5.0, "TL-42")
# What scan.js plays for a refusal: two low beeps.
ERROR_TONE = [440, 440]
# The tones the page plays, recorded instead of heard (headless Chromium has no speaker).
RECORD_TONES = """
window.__tones = [];
function FakeAudioContext() { this.currentTime = 0; this.destination = {}; }
FakeAudioContext.prototype.createOscillator = function () {
  var osc = { type: "", frequency: { value: 0 }, connect: function () {}, stop: function () {} };
  osc.start = function () { window.__tones.push(osc.frequency.value); };
  return osc;
};
FakeAudioContext.prototype.createGain = function () {
  return { gain: { value: 0 }, connect: function () {} };
};
window.AudioContext = FakeAudioContext;
window.webkitAudioContext = FakeAudioContext;
"""
DESCRIPTION = """el => (el.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean)
    .map(id => { const d = document.getElementById(id); return d ? d.textContent : ""; })
    .join(" ").replace(/\\s+/g, " ")"""


class Bench:
    def __init__(self, stored, picking: int, packing: str, receiving: str, out: str):
        self.stored = stored  # {(participant, visit, sample type): [barcodes]}, in BX-0001
        self.picking = picking  # an approved request's id
        self.packing = packing  # a shipment being prepared for it
        self.receiving = receiving  # a dispatched shipment
        self.out = out  # a checked-out tube


@pytest.fixture
def bench(seed) -> Bench:
    with seed() as db:
        factories.protocol()
        factories.sites()
        manager = factories.user("manager", password=PASSWORD)
        researcher = factories.user("researcher", password=PASSWORD)
        technician = factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({})
        stored = stock(db)
        picked = serum_request(researcher, per_participant_visit=1)
        chosen = [c.barcode for c in requests.propose(picked.id, actor=manager).selection.chosen]
        requests.approve(picked.id, chosen, actor=manager)
        packing = shipping.create_shipment(request_id=picked.id, actor=technician).code
        sent = serum_request(researcher, visits="M2", per_participant_visit=1)
        chosen = [c.barcode for c in requests.propose(sent.id, actor=manager).selection.chosen]
        requests.approve(sent.id, chosen, actor=manager)
        receiving = shipping.create_shipment(request_id=sent.id, actor=technician).code
        for code in chosen:
            shipping.add_to_shipment(receiving, code, actor=technician)
        shipping.dispatch(receiving, DRY_ICE, actor=technician)
        out = stored[("LIM-003", "BL", "PL1")][0]
        storage.check_out(out, "ELISA", actor=None)
        picking = picked.id
    return Bench(stored, picking, packing, receiving, out)


@pytest.fixture
def tablet(browser, live_server, bench):
    """A tablet logged in as the technician, whose tones are recorded."""
    with signed_in(
        browser, live_server, TECHNICIAN, viewport=TABLET, init_script=RECORD_TONES
    ) as page:
        yield page


@pytest.fixture
def unknown(bench) -> str:
    """A well-formed barcode that no tube carries."""
    known = {code for codes in bench.stored.values() for code in codes}
    code = barcodes.new_aliquot_barcode()
    while code in known:
        code = barcodes.new_aliquot_barcode()
    return code


def refused(page, field: str, message: str, *, emptied: bool = True) -> None:
    """The refusal was given the one way: tone, one alert, described field, focus."""
    assert page.evaluate("window.__tones") == ERROR_TONE, "no error tone"
    alerts = page.locator("[role=alert]", has_text=message)
    expect(alerts).to_have_count(1)  # in the scan's answer, not again in a banner
    expect(alerts.locator(".scan-message")).to_contain_text(message)
    assert message in page.eval_on_selector(f"#{field}", DESCRIPTION), (
        f"#{field} is not described by the message"
    )
    wait_for_focus(page, field)
    if emptied:  # ready for the next scan
        expect(page.locator(f"#{field}")).to_have_value("")


def test_the_scan_page(tablet, unknown):
    tablet.goto("/scan")
    wait_for_focus(tablet, "code")
    scan(tablet, unknown)
    refused(tablet, "code", f"No aliquot with barcode {unknown}.")


def test_scan_to_store_an_unknown_box(tablet):
    tablet.goto("/storage/scan")
    wait_for_focus(tablet, "box")
    scan(tablet, "BX-0999")
    refused(tablet, "box", "BX-0999")


def test_scan_to_store_an_unknown_tube(tablet, unknown):
    tablet.goto(f"/storage/scan?box={BOX}")
    wait_for_focus(tablet, "code")
    scan(tablet, unknown)
    refused(tablet, "code", f"No aliquot with barcode {unknown}.")


def test_check_out_an_unknown_tube(tablet, unknown):
    tablet.goto("/storage/check-out")
    wait_for_focus(tablet, "code")
    tablet.keyboard.type(unknown)
    tablet.keyboard.press("Enter")
    wait_for_focus(tablet, "reason")
    scan(tablet, "ELISA")
    refused(tablet, "code", f"No aliquot with barcode {unknown}.")
    expect(tablet.locator("#reason")).to_have_value("ELISA")


def test_return_a_tube_that_is_not_out(tablet, bench):
    stored = bench.stored[("LIM-001", "BL", "SER")][0]
    tablet.goto("/storage/return")
    wait_for_focus(tablet, "code")
    scan(tablet, stored)
    refused(tablet, "code", f"{stored} is already back in storage")


def test_return_a_volume_larger_than_the_tube_held(tablet, bench):
    tablet.goto(f"/storage/return?code={bench.out}")
    wait_for_focus(tablet, "volume_ul")
    tablet.fill("#volume_ul", "9000")
    with tablet.expect_navigation():
        tablet.keyboard.press("Enter")
    refused(tablet, "volume_ul", "The volume left must be between 0 and", emptied=False)
    expect(tablet.locator("#volume_ul")).to_have_attribute("aria-invalid", "true")


def test_move_an_unknown_container(tablet):
    tablet.goto("/storage/move")
    wait_for_focus(tablet, "container")
    tablet.keyboard.type("BX-0999")
    tablet.keyboard.press("Enter")
    wait_for_focus(tablet, "parent")
    scan(tablet, "SH-0001")
    refused(tablet, "container", "BX-0999")
    expect(tablet.locator("#parent")).to_have_value("SH-0001")


def test_pick_a_tube_not_on_the_list(tablet, bench):
    tablet.goto(f"/requests/{bench.picking}/pick")
    wait_for_focus(tablet, "code")
    wrong = bench.stored[("LIM-001", "M2", "PL1")][0]
    scan(tablet, wrong)
    expect(tablet.locator(".scan-title")).to_contain_text("Wrong tube")
    refused(tablet, "code", wrong)


def test_pack_an_unknown_tube(tablet, bench, unknown):
    tablet.goto(f"/shipments/{bench.packing}")
    wait_for_focus(tablet, "code")
    scan(tablet, unknown)
    refused(tablet, "code", f"No aliquot with barcode {unknown}.")


def test_receive_a_code_that_is_no_barcode(tablet, bench):
    tablet.goto(f"/shipments/{bench.receiving}/receive")
    wait_for_focus(tablet, "code")
    scan(tablet, "7KQ3")
    refused(tablet, "code", "7KQ3 has 4 characters; an aliquot barcode has 9.")


def test_receive_a_tube_not_on_the_manifest(tablet, bench, unknown):
    tablet.goto(f"/shipments/{bench.receiving}/receive")
    wait_for_focus(tablet, "code")
    scan(tablet, unknown)
    refused(tablet, "code", "Set this tube aside and tell the sender.")


@pytest.mark.parametrize(
    "address",
    [
        "/scan",
        "/storage/scan",
        f"/storage/scan?box={BOX}",
        "/storage/check-out",
        "/storage/return",
        "/storage/move",
        "/requests/{picking}/pick",
        "/shipments/{packing}",
        "/shipments/{receiving}/receive",
    ],
)
def test_each_scan_page_has_one_level_one_heading(tablet, bench, address):
    tablet.goto(address.format(**vars(bench)))
    heading = tablet.get_by_role("heading", level=1)
    expect(heading).to_have_count(1)
    expect(heading).to_be_visible()


def test_the_receipt_warning_about_tubes_not_scanned_is_announced(tablet, bench):
    tablet.goto(f"/shipments/{bench.receiving}/receive")
    warning = tablet.get_by_role("status").filter(has_text="not scanned will be recorded")
    expect(warning).to_have_text("3 tubes not scanned will be recorded as missing.")
    record = tablet.get_by_role("button", name="Record the receipt")
    expect(record).to_have_accessible_description(
        "3 tubes not scanned will be recorded as missing."
    )
