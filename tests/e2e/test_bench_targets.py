"""Touch targets of the bench pages (the scan pages, picking, packing, receipt) on a
tablet held upright (768 × 1024): every visible link, button, field, menu, disclosure and
focusable element of the page's own content (`main`; the header is checked with the
header) is at least 44 × 44 CSS px, the size a gloved finger hits (WCAG 2.5.5). A tick box
or a radio button counts with the label that wraps it: a tap on the label ticks it. No link
is exempt as "inline": the ones in a sentence are made targets too."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.e2e.pages import scan, signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
UPRIGHT = {"width": 768, "height": 1024}
MIN_PX = 44
TECHNICIAN = "tech.targets"
BOX = "BX-0001"
OTHER_BOX = "BX-0002"
# The targets under MIN_PX on the page: [description, width, height]. A target is
# measured when shown (its box has a size and it is not visually hidden); a tick box by
# the label that wraps it.
SMALL_TARGETS = """min => {
  const hidden = el => {
    const box = el.getBoundingClientRect();
    if (!box.width && !box.height) return true;
    const style = getComputedStyle(el);
    return style.visibility === "hidden" || style.clip === "rect(0px, 0px, 0px, 0px)";
  };
  const selector =
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
  return Array.from(document.querySelectorAll("main")).flatMap(main =>
    Array.from(main.querySelectorAll(selector)))
    .filter(el => !hidden(el))
    .map(el => {
      const tick = el.matches("input[type=checkbox], input[type=radio]") && el.closest("label");
      const target = tick || el;
      const box = target.getBoundingClientRect();
      const name = (target.getAttribute("aria-label") || target.textContent || el.name || "")
        .replace(/\\s+/g, " ").trim().slice(0, 40);
      return [`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${name}"`,
              Math.round(box.width * 10) / 10, Math.round(box.height * 10) / 10];
    })
    .filter(([, width, height]) => width < min || height < min);
}"""


class Bench:
    def __init__(
        self, request_id: int, packing: str, receiving: str, found: str, elsewhere: str, out: str
    ):
        self.request_id = request_id  # an approved request, tubes left to pick
        self.packing = packing  # its shipment, being packed, one tube in it
        self.receiving = receiving  # a dispatched shipment, no tube scanned yet
        self.found = found  # a tube stored in BOX
        self.elsewhere = elsewhere  # a tube stored in OTHER_BOX
        self.out = out  # a checked-out tube of BOX


@pytest.fixture
def bench(seed) -> Bench:
    with seed() as db:
        factories.protocol()
        factories.sites()
        manager = factories.user("manager", password=PASSWORD)
        researcher = factories.user("researcher", password=PASSWORD)
        technician = factories.user("technician", name=TECHNICIAN, password=PASSWORD)
        factories.freezer({})
        stored = stock(db, participants=("LIM-001", "LIM-002"))  # in BOX
        other = stock(db, participants=("LIM-003",), first_box=2)  # in OTHER_BOX
        factories.participant("LIM", code="LIM-004")
        factories.visit("LIM-004", "BL")  # registered, waiting to be stored
        picking = serum_request(researcher, per_participant_visit=1).id
        chosen = [c.barcode for c in requests.propose(picking, actor=manager).selection.chosen]
        requests.approve(picking, chosen, actor=manager)
        packing = shipping.create_shipment(request_id=picking, actor=technician).code
        shipping.add_to_shipment(packing, chosen[0], actor=technician)
        sent = serum_request(researcher, visits="M2", per_participant_visit=1)
        chosen = [c.barcode for c in requests.propose(sent.id, actor=manager).selection.chosen]
        requests.approve(sent.id, chosen, actor=manager)
        receiving = shipping.create_shipment(request_id=sent.id, actor=technician).code
        for code in chosen:
            shipping.add_to_shipment(receiving, code, actor=technician)
        shipping.dispatch(
            receiving, Dispatch("World Courier", "WC1", True, 5.0, "TL-1"), actor=technician
        )
        out = stored[("LIM-001", "BL", "PL1")][0]
        storage.check_out(out, "ELISA", actor=None)
    return Bench(
        picking,
        packing,
        receiving,
        found=stored[("LIM-001", "BL", "SER")][-1],
        elsewhere=other[("LIM-003", "BL", "PL1")][0],
        out=out,
    )


@pytest.fixture
def tablet(browser, live_server, bench):
    with signed_in(browser, live_server, TECHNICIAN, viewport=UPRIGHT, has_touch=True) as page:
        yield page


def assert_targets_large_enough(page) -> None:
    # What a disclosure holds is a target too, once opened.
    page.evaluate("document.querySelectorAll('main details').forEach(d => { d.open = true; })")
    small = page.evaluate(SMALL_TARGETS, MIN_PX)
    assert not small, f"targets under {MIN_PX} × {MIN_PX} px on {page.url}: " + "; ".join(
        f"{name} {width}×{height}" for name, width, height in small
    )


def test_the_scan_page_with_a_tube_found(tablet, bench):
    tablet.goto(f"/scan?code={bench.found}")
    expect(tablet.get_by_role("link", name="Full history")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_the_scan_page_with_a_box_label_scanned(tablet):
    tablet.goto(f"/scan?code={BOX}")
    expect(tablet.get_by_role("link", name=f"Open the map of box {BOX}")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_the_box_scan_with_tubes_waiting(tablet):
    tablet.goto("/storage/scan")
    expect(tablet.locator("#waiting")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_scan_to_store(tablet):
    tablet.goto(f"/storage/scan?box={BOX}")
    expect(tablet.get_by_role("link", name="Another box")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_scan_to_store_asking_to_move_a_tube(tablet, bench):
    tablet.goto(f"/storage/scan?box={BOX}")
    scan(tablet, bench.elsewhere)
    expect(tablet.locator(".scan-confirm")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_scan_to_store_refusing_a_checked_out_tube(tablet, bench):
    tablet.goto(f"/storage/scan?box={BOX}")
    scan(tablet, bench.out)
    expect(tablet.get_by_role("link", name=f"Return {bench.out}")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_the_pick_list(tablet, bench):
    tablet.goto(f"/requests/{bench.request_id}/pick")
    expect(tablet.locator("#code")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_the_receive_page(tablet, bench):
    tablet.goto(f"/shipments/{bench.receiving}/receive")
    expect(tablet.get_by_role("link", name="Manifest")).to_be_visible()
    assert_targets_large_enough(tablet)


def test_the_shipment_being_packed(tablet, bench):
    tablet.goto(f"/shipments/{bench.packing}")
    expect(tablet.locator("#code")).to_be_visible()
    assert_targets_large_enough(tablet)


@pytest.mark.parametrize("address", ["/storage/check-out?last={out}", "/storage/move"])
def test_check_out_and_move(tablet, bench, address):
    tablet.goto(address.format(out=bench.out))
    assert_targets_large_enough(tablet)


def test_the_return_of_a_tube(tablet, bench):
    tablet.goto(f"/storage/return?code={bench.out}")
    expect(tablet.locator("#volume_ul")).to_be_visible()
    assert_targets_large_enough(tablet)
