"""Distribution takes a tube by the code of its old label (a tube of an imported inventory)
as by its barcode: picking, packing and the check-in at receipt, by page, API and rack file;
the pages say to print the new label; another centre's old label is refused as another
centre's barcode is."""

from __future__ import annotations

import html
from io import BytesIO

import pytest

from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.errors import Conflict, Forbidden
from biobank.samples import services as samples
from tests import factories
from tests.answers import error_of, ok
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request

OLD = "LIM-2019-00042"
SPACED = "ab 12/7"
DIGITS = "12345678"
STRANGER_OLD = "LIM-OLD-0099"
PARIS_OLD = "PAR-OLD-7"
DRY_ICE = Dispatch("World Courier", "WC123456", True, 5.0, "TL-42")
NOTICE = f"This tube still carries its old label {OLD}: print its new label."


def label_as_old(db, barcode: str, old_label: str) -> None:
    """What the inventory import leaves on an imported tube: the code of its old label."""
    samples.find_aliquot(barcode, actor=None).legacy_barcode = old_label
    db.session.commit()


@pytest.fixture
def approved(bank, db, sites):
    """A request for one baseline serum tube of each participant, approved; the three
    tubes carry old labels, and so does a stored tube the request does not hold.
    Returns (request, chosen barcodes, the other tube's barcode, a technician)."""
    researcher = factories.user("researcher", password=PASSWORD)
    manager = factories.user("manager", password=PASSWORD)
    technician = factories.user("technician", password=PASSWORD)
    request = serum_request(researcher)
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen]
    requests.approve(request.id, chosen, actor=manager)
    db.session.commit()
    for barcode, old_label in zip(chosen, (OLD, SPACED, DIGITS), strict=True):
        label_as_old(db, barcode, old_label)
    stranger = bank[("LIM-001", "M2", "SER")][0]
    label_as_old(db, stranger, STRANGER_OLD)
    return request, chosen, stranger, technician


def page_after(client, response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    shown = client.get(response.location)
    assert shown.status_code == 200
    return html.unescape(shown.get_data(as_text=True))


# --- picking ------------------------------------------------------------------------------


def test_a_tube_is_picked_by_its_old_label(approved):
    request, chosen, stranger, technician = approved
    picked = shipping.pick(request.id, f" {OLD.lower()}\r\n", actor=technician)
    assert (picked.barcode, picked.old_label) == (chosen[0], OLD)
    assert samples.find_aliquot(chosen[0], actor=None).status == "checked_out"
    with pytest.raises(Conflict) as twice:
        shipping.pick(request.id, chosen[0], actor=technician)
    assert twice.value.code == "pick.already_picked"
    # A tube the request does not hold, by its old label: the wrong tube, put it back.
    with pytest.raises(Conflict) as wrong:
        shipping.pick(request.id, STRANGER_OLD, actor=technician)
    assert wrong.value.code == "pick.wrong_tube" and stranger in str(wrong.value.message)
    assert shipping.pick(request.id, chosen[2], actor=technician).old_label is None


def test_another_centres_old_label_is_refused_at_picking_as_its_barcode(approved, db):
    request, _, _, _ = approved
    factories.participant("PAR", code="PAR-001")
    paris = factories.visit("PAR-001", "BL").aliquots[0].barcode
    db.session.commit()
    label_as_old(db, paris, PARIS_OLD)
    limoges = factories.user("technician", site="LIM", password=PASSWORD)
    for scanned in (paris, PARIS_OLD):
        with pytest.raises(Forbidden) as refused:
            shipping.pick(request.id, scanned, actor=limoges)
        assert refused.value.code == "aliquot.other_centre"
        assert refused.value.fields == {"barcode": scanned}


def test_the_pick_page_and_api_take_the_old_label(approved, login_as, api_as):
    request, chosen, _, _ = approved
    technician = login_as("technician")
    page = page_after(
        technician, technician.post(f"/requests/{request.id}/pick", data={"code": OLD})
    )
    assert "Picked and checked out." in page and NOTICE in page
    assert f'href="/aliquots/{chosen[0]}/labels"' in page
    api = api_as("technician")
    picked = ok(api.post(f"/api/v1/requests/{request.id}/pick", json={"barcode": SPACED}))
    assert (picked["barcode"], picked["old_label"], picked["left"]) == (chosen[1], SPACED, 1)
    wrong = api.post(f"/api/v1/requests/{request.id}/pick", json={"barcode": STRANGER_OLD})
    assert error_of(wrong, 409)["code"] == "pick.wrong_tube"


# --- packing and receipt ----------------------------------------------------------------------


def test_tubes_are_packed_and_checked_in_by_their_old_labels(approved, login_as):
    request, chosen, _, _ = approved
    technician = login_as("technician")
    for code in chosen:
        technician.post(f"/requests/{request.id}/pick", data={"code": code})
    created = technician.post("/shipments", data={"request_id": str(request.id)})
    url = created.headers["Location"]
    packed = page_after(technician, technician.post(f"{url}/items", data={"code": OLD}))
    assert NOTICE in packed
    for code in (SPACED, chosen[2]):
        assert technician.post(f"{url}/items", data={"code": code}).status_code == 303
    again = page_after(
        technician, technician.post(f"{url}/items", data={"code": OLD.lower(), "scan": "1"})
    )
    assert "Already packed" in again
    sent = technician.post(f"{url}/dispatch", data={"carrier": "WC", "tracking_number": "1"})
    assert sent.status_code == 303

    received = page_after(
        technician, technician.post(f"{url}/check-in", data={"code": f"{OLD}\r\n", "scan": "1"})
    )
    assert 'data-state="received"' in received and NOTICE in received
    again = page_after(
        technician, technician.post(f"{url}/check-in", data={"code": chosen[0], "scan": "1"})
    )
    assert "Already checked in" in again and NOTICE not in again


def dispatched(approved) -> str:
    request, chosen, _, technician = approved
    for code in chosen:
        shipping.pick(request.id, code, actor=technician)
    shipment = shipping.create_shipment(request_id=request.id, actor=technician)
    for code in chosen:
        shipping.add_to_shipment(shipment.code, code, actor=technician)
    shipping.dispatch(shipment.code, DRY_ICE, actor=technician)
    return shipment.code


def test_the_check_in_takes_an_old_label_and_says_so(approved):
    _, chosen, stranger, technician = approved
    code = dispatched(approved)
    checked = shipping.check_in(code, OLD.lower(), actor=technician)
    assert (checked.barcode, checked.outcome) == (chosen[0], "received")
    assert checked.old_label == OLD  # the label as it is written, whatever was typed
    with pytest.raises(Conflict) as twice:
        shipping.check_in(code, chosen[0], actor=technician)
    assert twice.value.code == "receipt.already_checked_in"
    assert shipping.check_in(code, chosen[1], actor=technician).old_label is None
    # A tube the manifest does not list, scanned by its old label: noted by its barcode.
    unexpected = shipping.check_in(code, STRANGER_OLD, actor=technician)
    assert (unexpected.barcode, unexpected.outcome) == (stranger, "unexpected")
    assert unexpected.old_label == STRANGER_OLD
    assert shipping.receipt(code, actor=technician).unexpected == [stranger]


def test_a_rack_file_read_at_receipt_takes_old_labels_once(approved):
    _, chosen, _, technician = approved
    code = dispatched(approved)
    shipping.check_in(code, chosen[0], actor=technician)
    # The rack scanner gives codes in capitals: "AB 12/7" is the old label "ab 12/7".
    rack = f"A01,{OLD}\r\nA02,{SPACED.upper()}\r\nA03,{DIGITS}\r\n".encode()
    checked = shipping.check_in_rack(code, rack, actor=technician)
    assert [(c.barcode, c.outcome) for c in checked] == [
        (chosen[1], "received"),
        (chosen[2], "received"),
    ]
    assert set(shipping.receipt(code, actor=technician).received) == set(chosen)


def test_the_check_in_api_answers_the_old_label(approved, api_as):
    _, chosen, _, _ = approved
    code = dispatched(approved)
    api = api_as("technician")
    checked = ok(api.post(f"/api/v1/shipments/{code}/check-in", json={"barcode": DIGITS}))
    assert (checked["barcode"], checked["old_label"]) == (chosen[2], DIGITS)
    files = {"file": (BytesIO(f"A01,{SPACED}\r\n".encode()), "rack.csv")}
    rack = api.post(
        f"/api/v1/shipments/{code}/check-in-rack", data=files, content_type="multipart/form-data"
    )
    assert rack.status_code == 200, rack.get_data(as_text=True)
