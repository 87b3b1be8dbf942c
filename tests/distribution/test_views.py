"""The request and shipment pages, driven through the test client as each role would."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from biobank.extensions import db as _db
from biobank.samples import services as samples
from tests import factories
from tests.distribution.conftest import stock
from tests.pages import refused


@pytest.fixture
def stocked(db, sites):
    factories.freezer({})
    return stock(db)


def submit_request(client, **extra):
    data = {
        "title": "VEGF kinetics",
        "aim": "Serum VEGF",
        "visits": ["BL"],
        "sample_types": ["SER"],
        "per_participant_visit": "1",
        "receiving_lab": "VEGF lab",
        "contact_name": "Dr Lab",
        "contact_email": "lab@chu.example",
        **extra,
    }
    return client.post("/requests/new", data=data)


def test_catalogue_page_shows_counts_and_hides_small_cells(stocked, login_as, app):
    app.config["CATALOGUE_SMALL_CELL"] = 3
    manager = login_as("manager")
    page = manager.get("/catalogue").get_data(as_text=True)
    assert "<td>3</td><td>15</td><td>7,500</td>" in page.replace("\u202f", ",")
    researcher = login_as("researcher")
    page = researcher.get("/catalogue").get_data(as_text=True)
    assert "<td>3–7</td><td>13–17</td>\n" in page and "7,500" not in page
    app.config["CATALOGUE_SMALL_CELL"] = 5
    page = researcher.get("/catalogue?visits=BL").get_data(as_text=True)
    assert "<td>&lt; 5</td><td>—</td>" in page and "<td>15</td>" not in page


def test_request_form_counts_matches_and_refuses_bad_input(stocked, login_as, app):
    researcher = login_as("researcher")
    page = researcher.get("/requests/new?visits=BL&sample_types=SER&per_participant_visit=2")
    assert "fewer than 5 participants" in page.get_data(as_text=True)
    app.config["CATALOGUE_SMALL_CELL"] = 3
    page = researcher.get("/requests/new?visits=BL&sample_types=SER&per_participant_visit=2")
    assert "3–7 participants, 3–7 aliquots" in page.get_data(as_text=True)
    manager = login_as("manager")
    page = manager.get("/requests/new?visits=BL&sample_types=SER&per_participant_visit=2")
    assert "3 participants, 6 aliquots" in page.get_data(as_text=True)
    page = refused(researcher, submit_request(researcher, contact_email="nobody"))
    assert "e-mail" in page
    assert 'value="VEGF lab"' in page  # what was typed comes back


def test_a_request_goes_from_researcher_to_lab_through_the_pages(stocked, login_as):
    researcher, manager, technician = (
        login_as("researcher"),
        login_as("manager"),
        login_as("technician"),
    )
    response = submit_request(researcher)
    assert response.status_code == 303
    request_url = response.headers["Location"]
    request_id = int(request_url.rsplit("/", 1)[1])
    assert "submitted" in researcher.get(request_url).get_data(as_text=True)

    manager.post(f"/requests/{request_id}/start-review")
    review = manager.get(f"/requests/{request_id}/review").get_data(as_text=True)
    chosen = re.search(r'name="aliquots" value="([^"]+)"', review).group(1).split()
    assert len(chosen) == 3
    approved = manager.post(f"/requests/{request_id}/approve", data={"aliquots": " ".join(chosen)})
    assert approved.status_code == 303
    assert "approved" in researcher.get(request_url).get_data(as_text=True)

    wrong = stocked[("LIM-001", "M2", "SER")][0]
    wrong_scan = technician.post(f"/requests/{request_id}/pick", data={"code": wrong})
    assert "Wrong tube" in refused(technician, wrong_scan)
    for code in chosen:
        assert (
            technician.post(f"/requests/{request_id}/pick", data={"code": code}).status_code == 303
        )
    pick = technician.get(f"/requests/{request_id}/pick").get_data(as_text=True)
    assert "Every tube is picked" in pick
    pdf = technician.get(f"/requests/{request_id}/pick-list.pdf")
    assert pdf.data.startswith(b"%PDF")

    created = technician.post("/shipments", data={"request_id": str(request_id)})
    shipment_url = created.headers["Location"]
    for code in chosen:
        assert technician.post(f"{shipment_url}/items", data={"code": code}).status_code == 303
    sent = technician.post(
        f"{shipment_url}/dispatch",
        data={
            "carrier": "World Courier",
            "tracking_number": "WC1",
            "dry_ice": "1",
            "dry_ice_kg": "5,5",
            "logger_id": "TL-1",
        },
    )
    assert sent.status_code == 303
    assert "dispatched" in technician.get(shipment_url).get_data(as_text=True)
    sheet = openpyxl.load_workbook(io.BytesIO(technician.get(f"{shipment_url}/manifest.xlsx").data))
    cells = {c.value for row in sheet.worksheets[0].iter_rows() for c in row}
    assert set(chosen) <= cells

    for code in chosen[:2]:
        technician.post(f"{shipment_url}/check-in", data={"code": code})
    receive = technician.get(f"{shipment_url}/receive").get_data(as_text=True)
    assert chosen[2] in receive
    done = technician.post(f"{shipment_url}/receipt", data={"condition": "frozen"})
    assert done.status_code == 303
    assert "received" in researcher.get(request_url).get_data(as_text=True)
    assert samples.find_aliquot(chosen[2], actor=None).status == "missing"


def test_withdrawal_page_lists_and_destroys(stocked, login_as):
    manager = login_as("manager")
    response = manager.post(
        "/participants/LIM-002/withdraw-consent", data={"withdrawn_on": "2026-03-01"}
    )
    assert response.headers["Location"].endswith("/participants/LIM-002/withdrawn-aliquots")
    page = manager.get("/participants/LIM-002/withdrawn-aliquots").get_data(as_text=True)
    codes = stocked[("LIM-002", "BL", "SER")]
    assert all(code in page for code in codes)
    manager.post(
        "/participants/LIM-002/withdrawn-aliquots",
        data={"aliquot": codes[:2], "reason": "autoclaved"},
    )
    _db.session.expire_all()
    assert samples.find_aliquot(codes[0], actor=None).status == "destroyed"
