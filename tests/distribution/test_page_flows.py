"""The request and shipment pages replayed as people use them: a scan twice, a form sent
twice (reload, back), a form's address opened by a GET, an approval of a request already
approved, what the researcher reads after a receipt with discrepancies, a missing tube
found from its page, and the language notices are written in."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.support import Translations

from biobank.auth import services as auth
from biobank.distribution import services as requests
from biobank.distribution.models import Reservation, SampleRequest
from biobank.extensions import db as _db
from biobank.notifications.models import OutboxMessage
from biobank.samples import services as samples
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request
from tests.pages import refused

TRANSLATIONS = Path(__file__).resolve().parents[2] / "biobank" / "translations"


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def followed(client, response) -> str:
    """A POST answered by Post/Redirect/Get, success or refusal: the page it leads to."""
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return page(client, response.location)


def custody_counts(barcodes) -> list[int]:
    _db.session.expire_all()
    return [samples.find_aliquot(b, actor=None).custody_count for b in barcodes]


@pytest.fixture
def approved(bank, db, login_as):
    """A request for one serum aliquot per participant at baseline, approved through the
    page by a manager; returns (request id, the aliquots, researcher, manager, technician)."""
    researcher, manager, technician = (
        login_as("researcher"),
        login_as("manager"),
        login_as("technician"),
    )
    request = serum_request(researcher.user)
    db.session.commit()
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager.user).selection.chosen]
    answer = manager.post(f"/requests/{request.id}/approve", data={"aliquots": " ".join(chosen)})
    assert answer.status_code == 303
    return request.id, chosen, researcher, manager, technician


def dispatch_all(technician, request_id, chosen) -> str:
    created = technician.post("/shipments", data={"request_id": str(request_id)})
    url = created.headers["Location"]
    for code in chosen:
        assert technician.post(f"{url}/items", data={"code": code}).status_code == 303
    sent = technician.post(f"{url}/dispatch", data={"carrier": "WC", "tracking_number": "1"})
    assert sent.status_code == 303
    return url


def open_reservations(request_id) -> int:
    return _db.session.execute(
        sa.select(sa.func.count(Reservation.id)).where(
            Reservation.request_id == request_id, Reservation.closed_at.is_(None)
        )
    ).scalar()


# --- B: one approval -----------------------------------------------------------------------


def test_an_approved_request_offers_no_second_approval_and_refuses_one(approved, api_as, db):
    request_id, chosen, _, manager, _ = approved
    review = page(manager, f"/requests/{request_id}/review")
    assert "Approve and reserve" not in review
    assert "there is nothing left to approve or reject" in review
    assert 'name="aliquots"' not in review
    assert "Review" not in page(manager, f"/requests/{request_id}").split("<dl")[0]

    # The stale form sent again with a fresh set (back button, a second tab): refused, said,
    # nothing more reserved.
    others = [c.barcode for c in requests.propose(request_id, actor=manager.user).selection.chosen]
    assert others and not set(others) & set(chosen)
    again = manager.post(f"/requests/{request_id}/approve", data={"aliquots": " ".join(others)})
    shown = followed(manager, again)
    assert again.location.endswith(f"/requests/{request_id}/review")
    assert f"Request R{request_id:05d} was already approved by {manager.user.username}" in shown
    assert open_reservations(request_id) == len(chosen)

    api = api_as("manager")
    response = api.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": chosen})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "request.status"
    assert open_reservations(request_id) == len(chosen)
    events = db.session.get(SampleRequest, request_id).events
    assert [e.status for e in events].count("approved") == 1


# --- C: Post/Redirect/Get, scans twice -------------------------------------------------------


def test_every_form_address_opened_by_a_get_leads_to_its_page(approved, login_as, db):
    request_id, chosen, _, _manager, technician = approved
    url = dispatch_all(technician, request_id, chosen)
    code = url.rsplit("/", 1)[1]
    admin = login_as("admin")
    values = {
        "request_id": request_id,
        "code": code,
        "barcode": chosen[0],
        "fmt": "pdf",
    }
    checked = []
    for rule in admin.application.url_map.iter_rules():
        blueprint = rule.endpoint.partition(".")[0]
        if blueprint not in ("distribution", "shipments", "notifications"):
            continue
        if "POST" not in rule.methods:
            continue
        if rule.rule.startswith("/participants/"):
            values_here = {**values, "code": "LIM-001"}
        else:
            values_here = values
        address = rule.build(values_here, append_unknown=False)[1]
        response = admin.get(address)
        assert response.status_code in (200, 303), (address, response.status_code)
        checked.append(address)
    assert f"/shipments/{code}/receipt" in checked and f"/requests/{request_id}/approve" in checked
    assert admin.get(f"/shipments/{code}/receipt").location.endswith(f"/shipments/{code}/receive")


def test_a_tube_scanned_twice_on_pick_pack_and_receive_is_told_and_recorded_once(approved):
    request_id, chosen, _, _, technician = approved
    first = chosen[0]
    ok = followed(technician, technician.post(f"/requests/{request_id}/pick", data={"code": first}))
    assert "Picked and checked out." in ok
    before = custody_counts([first])
    again = followed(
        technician, technician.post(f"/requests/{request_id}/pick", data={"code": first})
    )
    assert "scan-already" in again and "Already picked" in again
    assert f"{first} is already picked: nothing more was recorded." in again
    assert custody_counts([first]) == before

    created = technician.post("/shipments", data={"request_id": str(request_id)})
    url = created.headers["Location"]
    for code in chosen:
        technician.post(f"{url}/items", data={"code": code, "scan": "1"})
    again = followed(technician, technician.post(f"{url}/items", data={"code": first, "scan": "1"}))
    assert "Already packed" in again and "box 1, position A1" in again
    assert again.count(f'data-barcode="{first}"') == 1
    technician.post(f"{url}/dispatch", data={"carrier": "WC", "tracking_number": "1"})

    scanned = followed(
        technician, technician.post(f"{url}/check-in", data={"code": first, "scan": "1"})
    )
    assert 'data-state="received"' in scanned
    again = followed(
        technician, technician.post(f"{url}/check-in", data={"code": first, "scan": "1"})
    )
    assert "Already checked in" in again and "nothing more was recorded" in again
    assert re.search(r'id="count-received">1<', again)


# --- A: receipt with discrepancies, through the pages ------------------------------------------


def test_after_a_receipt_missing_tubes_show_as_missing_and_the_request_counts_them(approved):
    request_id, chosen, researcher, manager, technician = approved
    url = dispatch_all(technician, request_id, chosen)
    good, cracked, gone = chosen
    technician.post(f"{url}/check-in", data={"code": good})
    technician.post(f"{url}/check-in", data={"code": cracked, "damaged": "1", "note": "cracked"})
    done = followed(technician, technician.post(f"{url}/receipt", data={"condition": "frozen"}))
    assert "Receipt recorded: 1 received, 1 damaged, 1 missing." in done

    receive = page(technician, f"{url}/receive")
    assert "Not scanned yet" not in receive
    assert re.search(r'id="count-missing">1<', receive)
    missing = receive.split('class="missing-list"')[1].split("</ul>")[0]
    assert gone in missing and "missing" in missing
    assert "Record the receipt" not in receive

    # Completion sent again (reload, back): refused, said, nothing recorded twice.
    before = custody_counts(chosen)
    again = followed(technician, technician.post(f"{url}/receipt", data={"condition": "x"}))
    assert f"already recorded by {technician.user.username}" in again
    assert custody_counts(chosen) == before

    for who in (researcher, manager):
        shown = page(who, f"/requests/{request_id}")
        assert "2 arrived" in shown and "1 damaged" in shown and "1 missing" in shown

    found = followed(technician, technician.post(f"{url}/check-in", data={"code": gone}))
    assert 'data-state="found"' in found and "Found and received" in found
    assert "3 arrived" in page(researcher, f"/requests/{request_id}")


def test_a_missing_tube_is_recorded_found_from_its_page(approved):
    request_id, chosen, _, _, technician = approved
    url = dispatch_all(technician, request_id, chosen)
    technician.post(f"{url}/receipt", data={"condition": "frozen"})
    lost = chosen[0]
    aliquot_page = page(technician, f"/aliquots/{lost}")
    assert "missing at the receipt" in aliquot_page and "Record it found" in aliquot_page

    shown = refused(technician, technician.post(f"/aliquots/{lost}/found", data={"where": ""}))
    assert "This field is required." in shown
    assert samples.find_aliquot(lost, actor=None).status == "missing"

    done = followed(
        technician, technician.post(f"/aliquots/{lost}/found", data={"where": "dispatch room"})
    )
    assert f"{lost} recorded found." in done and "Record it found" not in done
    _db.session.expire_all()
    assert samples.find_aliquot(lost, actor=None).status == "checked_out"


# --- F: notices in the reader's language ----------------------------------------------------


def french(message: str, **values) -> str:
    translated = Translations.load(str(TRANSLATIONS), ["fr"]).gettext(message) % values
    assert translated != message % values, f"the French catalogue does not translate {message!r}"
    return translated


def test_notices_are_written_in_each_readers_language(bank, db, login_as):
    researcher = auth.create_user("marie", "researcher", PASSWORD, email="marie@lab.example")
    researcher.locale = "fr"
    manager = login_as("manager")  # an English page: the manager's choice is not the reader's
    db.session.commit()
    request = serum_request(researcher)
    db.session.commit()
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager.user).selection.chosen]
    # The laboratory's contact is told too once a manager has confirmed the address.
    confirmed = manager.post(
        f"/requests/{request.id}/contact/confirm", data={"contact_email": "lab@chu.example"}
    )
    assert confirmed.status_code == 303
    manager.post(f"/requests/{request.id}/approve", data={"aliquots": " ".join(chosen)})

    (told,) = db.session.execute(
        sa.select(OutboxMessage).where(OutboxMessage.event == "request.approved")
    ).scalars()
    assert told.subject == french("Request %(code)s approved", code=request.code)
    assert told.recipients == "marie@lab.example, lab@chu.example"
    assert "approuvée" in told.body


def test_a_notice_to_readers_of_two_languages_is_written_once_in_each(app, db, sites):
    from flask_babel import lazy_gettext as _l

    from biobank.notifications import services as notifications

    readers = [
        notifications.Recipient("en@chu.example", None),
        notifications.Recipient("fr@chu.example", "fr"),
        notifications.Recipient("FR@chu.example", "en"),  # named twice: told once
    ]
    messages = notifications.notify_each(
        "request.approved", readers, _l("Request %(code)s approved", code="R00001"), _l("Status")
    )
    assert [(m.recipients, m.subject) for m in messages] == [
        ("en@chu.example", "Request R00001 approved"),
        ("fr@chu.example", french("Request %(code)s approved", code="R00001")),
    ]
