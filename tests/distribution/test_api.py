"""The distribution API as scripts use it: from a researcher's request to the laboratory's
use of the tubes."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from biobank.notifications.models import OutboxMessage
from tests import factories
from tests.answers import ok

REQUEST = {
    "title": "VEGF kinetics",
    "aim": "Serum VEGF at baseline",
    "receiving_lab": "VEGF laboratory, Limoges",
    "contact_name": "Dr Lab",
    "contact_email": "lab@chu.example",
    "criteria": {"visits": ["BL"], "sample_types": "SER"},
}
DISPATCH = {
    "carrier": "World Courier",
    "tracking_number": "WC123456",
    "dry_ice": True,
    "dry_ice_kg": 5.0,
    "logger_id": "TL-42",
}
PARIS_WINTER = timezone(timedelta(hours=1))


@pytest.fixture
def researcher(api_as, bank):
    return api_as("researcher")


@pytest.fixture
def manager(api_as, bank):
    return api_as("manager")


@pytest.fixture
def technician(api_as, bank):
    return api_as("technician")


def fields_of(response, status=400):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]["fields"]


def submitted(client, **changes) -> int:
    return ok(client.post("/api/v1/requests", json={**REQUEST, **changes}), 201)["id"]


def approved(researcher, manager) -> tuple[int, list[str]]:
    request_id = submitted(researcher)
    proposal = ok(manager.get(f"/api/v1/requests/{request_id}/proposal"))
    chosen = [a["barcode"] for a in proposal["aliquots"]]
    ok(manager.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": chosen}))
    return request_id, chosen


def test_a_request_goes_from_submission_to_use_by_api(researcher, manager, technician, bank, db):
    request_id = submitted(researcher)
    mine = ok(researcher.get(f"/api/v1/requests/{request_id}"))
    assert mine["status"] == "submitted" and mine["code"] == f"R{request_id:05d}"
    assert mine["criteria"]["visits"] == ["BL"] and mine["criteria"]["sample_types"] == ["SER"]
    assert mine["researcher"] == researcher.user.username
    assert [e["status"] for e in mine["events"]] == ["submitted"]

    proposal = ok(manager.get(f"/api/v1/requests/{request_id}/proposal"))
    assert proposal["participants"] == 3 and len(proposal["aliquots"]) == 3
    assert {a["participant"] for a in proposal["aliquots"]} == {"LIM-001", "LIM-002", "LIM-003"}
    chosen = [a["barcode"] for a in proposal["aliquots"]]
    approval = ok(
        manager.post(
            f"/api/v1/requests/{request_id}/approve", json={"aliquots": chosen, "note": "OK"}
        )
    )
    assert (approval["reserved"], approval["participants"]) == (3, 3)
    assert approval["request"]["status"] == "approved"
    assert approval["request"]["reservations"]["reserved"] == 3

    pick_list = ok(technician.get(f"/api/v1/requests/{request_id}/pick-list"))
    assert sorted(i["barcode"] for i in pick_list["items"]) == sorted(chosen)
    assert pick_list["left"] == 3 and not any(i["picked"] for i in pick_list["items"])
    paper = technician.get(f"/api/v1/requests/{request_id}/pick-list.pdf")
    assert paper.status_code == 200 and paper.data.startswith(b"%PDF")
    assert paper.headers["Content-Disposition"] == (
        f'inline; filename="pick-list-R{request_id:05d}.pdf"'
    )
    stranger = bank[("LIM-001", "M2", "SER")][0]
    wrong = technician.post(f"/api/v1/requests/{request_id}/pick", json={"barcode": stranger})
    assert wrong.status_code == 409 and wrong.get_json()["error"]["code"] == "pick.wrong_tube"
    walk = [i["barcode"] for i in pick_list["items"]]
    for n, code in enumerate(walk):
        picked = ok(technician.post(f"/api/v1/requests/{request_id}/pick", json={"barcode": code}))
        assert picked["left"] == 2 - n and "BX-0001" in picked["location"]

    shipment = ok(technician.post("/api/v1/shipments", json={"request_id": request_id}), 201)
    code = shipment["code"]
    assert shipment["status"] == "preparing" and shipment["recipient"] == REQUEST["receiving_lab"]
    for code_ in walk:
        item = ok(technician.post(f"/api/v1/shipments/{code}/items", json={"barcode": code_}), 201)
        assert item["box"] == 1 and item["outcome"] is None
    assert technician.delete(f"/api/v1/shipments/{code}/items/{walk[0]}").status_code == 204
    again = ok(technician.post(f"/api/v1/shipments/{code}/items", json={"barcode": walk[0]}), 201)
    assert again["position"] == "A1"
    sent = datetime.now(UTC).astimezone(PARIS_WINTER)
    gone = ok(
        technician.post(
            f"/api/v1/shipments/{code}/dispatch",
            json={**DISPATCH, "dispatched_at": sent.isoformat()},
        )
    )
    assert gone["status"] == "dispatched" and gone["dispatched_at"].endswith("+00:00")
    assert datetime.fromisoformat(gone["dispatched_at"]) == sent
    told = db.session.execute(
        sa.select(OutboxMessage.body).where(OutboxMessage.event == "shipment.dispatched")
    ).scalar_one()
    utc = sent.astimezone(UTC)
    # In the researcher's language (English here), in UTC: "Dec 6, 2026, 08:04 UTC".
    assert f"{utc:%b} {utc.day}, {utc.year}, {utc:%H:%M} UTC" in told
    assert (gone["carrier"], gone["dry_ice_kg"]) == ("World Courier", 5.0)
    assert ok(technician.get("/api/v1/shipments?status=dispatched"))["total"] == 1

    lines = ok(technician.get(f"/api/v1/shipments/{code}/manifest"))["items"]
    assert sorted(line["barcode"] for line in lines) == sorted(chosen)
    assert set(lines[0]) == {
        "box",
        "position",
        "barcode",
        "sample_type",
        "volume_ul",
        "visit",
        "participant",
    }
    sheet = technician.get(f"/api/v1/shipments/{code}/manifest.xlsx")
    assert sheet.status_code == 200 and "manifest-S" in sheet.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(sheet.data), read_only=True)
    cells = {
        str(c) for ws in workbook.worksheets for row in ws.iter_rows(values_only=True) for c in row
    }
    assert set(chosen) <= cells
    pdf = technician.get(f"/api/v1/shipments/{code}/manifest.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    first, second, third = walk
    checked = ok(technician.post(f"/api/v1/shipments/{code}/check-in", json={"barcode": first}))
    assert checked["outcome"] == "received" and checked["box"] == 1
    ok(
        technician.post(
            f"/api/v1/shipments/{code}/check-in",
            json={"barcode": second, "damaged": True, "note": "cracked cap"},
        )
    )
    so_far = ok(technician.get(f"/api/v1/shipments/{code}/receipt"))
    assert so_far["not_scanned"] == [third] and so_far["status"] == "dispatched"
    assert so_far["missing"] == []
    report = ok(
        technician.post(
            f"/api/v1/shipments/{code}/receipt",
            json={"condition": "dry ice left", "temperature_c": -70.5},
        )
    )
    assert (report["received"], report["damaged"], report["missing"]) == (
        [first],
        [second],
        [third],
    )
    detail = ok(technician.get(f"/api/v1/shipments/{code}"))
    assert detail["status"] == "received" and detail["receipt_condition"] == "dry ice left"
    assert {i["barcode"]: i["outcome"] for i in detail["items"]}[third] == "missing"

    used = ok(
        technician.post(f"/api/v1/shipments/{code}/use", json={"barcode": first, "used_ul": 500})
    )
    assert (used["barcode"], used["status"], used["volume_ul"]) == (first, "consumed", 0)
    back = ok(
        technician.post(
            f"/api/v1/shipments/{code}/use",
            json={"barcode": second, "used_ul": 200, "returned": True},
        )
    )
    assert (back["status"], back["volume_ul"], back["freeze_thaw_count"]) == ("received", 300, 1)
    final = ok(researcher.get(f"/api/v1/requests/{request_id}"))
    assert final["status"] == "received" and final["reservations"]["shipped"] == 3


def test_a_researcher_sees_neither_another_researchers_request_nor_may_approve(
    api_as, researcher, bank
):
    request_id = submitted(researcher)
    other = api_as("researcher")
    hidden = other.get(f"/api/v1/requests/{request_id}")
    assert hidden.status_code == 404 and hidden.get_json()["error"]["code"] == "not_found"
    assert ok(other.get("/api/v1/requests"))["total"] == 0
    assert ok(researcher.get("/api/v1/requests"))["items"][0]["id"] == request_id
    refused = researcher.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": ["X"]})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert researcher.get(f"/api/v1/requests/{request_id}/proposal").status_code == 403
    assert researcher.get(f"/api/v1/requests/{request_id}/pick-list").status_code == 403


def test_the_catalogue_hides_small_cells_from_researchers_only(app, researcher, manager):
    app.config["CATALOGUE_SMALL_CELL"] = 4
    shown = ok(researcher.get("/api/v1/catalogue?visits=BL&sample_types=SER"))
    # Every arm the baseline serum is planned for is listed, the one holding 3 as the one
    # holding none: "< 4", and no aliquot count.
    assert {row["arm"] for row in shown} == {"G1", "G2"}
    assert all(
        (row["participants"], row["participants_shown"], row["aliquots"], row["aliquots_shown"])
        == (None, "< 4", None, None)
        for row in shown
    )
    exact = ok(manager.get("/api/v1/catalogue?visits=BL&sample_types=SER"))
    assert (exact[0]["participants"], exact[0]["aliquots"], exact[0]["volume_ul"]) == (3, 15, 7500)
    assert exact[0]["exact"] and exact[0]["participants_shown"] == "3"

    match = ok(researcher.post("/api/v1/catalogue/match", json=REQUEST["criteria"]))
    assert match == {
        "participants": None,
        "aliquots": None,
        "held_back": None,
        "suppressed": True,
        "shown_as": "< 4",
        "participants_shown": "< 4",
        "aliquots_shown": None,
        "held_back_shown": None,
        "exact": False,
    }
    counted = ok(manager.post("/api/v1/catalogue/match", json=REQUEST["criteria"]))
    assert (counted["participants"], counted["aliquots"], counted["held_back"]) == (3, 3, 0)
    app.config["CATALOGUE_SMALL_CELL"] = 3
    shown = ok(researcher.get("/api/v1/catalogue?visits=BL&sample_types=SER"))
    assert shown[0]["arm"] == "G1" and shown[0]["participants_shown"] == "< 3"
    assert shown[1:] == [
        {
            "arm": "G2",
            "visit": "BL",
            "sample_type": "SER",
            "participants": 3,
            "aliquots": 13,
            "volume_ul": None,
            "participants_shown": "3–7",
            "aliquots_shown": "13–17",
            "exact": False,
        }
    ]


def test_catalogue_lists_are_comma_separated_or_repeated(manager, bank):
    types = sorted({kind for _, _, kind in bank})
    assert len(types) == 2
    joined = ok(manager.get(f"/api/v1/catalogue?visits=BL,M2&sample_types={','.join(types)}"))
    repeated = ok(
        manager.get(
            f"/api/v1/catalogue?visits=BL&visits=M2&sample_types={types[0]}&sample_types={types[1]}"
        )
    )
    assert joined == repeated and len(joined) == 4
    everything = ok(manager.get("/api/v1/catalogue"))
    assert everything == joined
    assert ok(manager.get("/api/v1/catalogue?max_freeze_thaw=0&arms=G1")) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_participant_visit=0", "per_participant_visit"),
        ("per_participant_visit=two", "per_participant_visit"),
        ("max_participants=0", "max_participants"),
        ("per_participant_visit=2", "per_participant_visit"),  # more than the request asks
    ],
)
def test_a_bad_proposal_argument_is_a_400_naming_it(researcher, manager, query, field):
    request_id = submitted(researcher)
    refused = manager.get(f"/api/v1/requests/{request_id}/proposal?{query}")
    assert field in fields_of(refused)


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        (
            {"visits": ["BL"], "sample_types": ["SER"], "per_participant_visit": 0},
            "per_participant_visit",
        ),
        (
            {"visits": ["BL"], "sample_types": ["SER"], "disease_statuses": "cured"},
            "disease_statuses",
        ),
        ({"visits": ["B L!"], "sample_types": ["SER"]}, "visits"),
        ({"visits": ["BL"], "sample_types": ["SER"], "min_volume_ul": -1}, "min_volume_ul"),
        ({"visits": ["BL"], "sample_types": 5}, "sample_types"),
    ],
)
def test_bad_criteria_are_a_400_naming_the_field(researcher, criteria, field):
    refused = researcher.post("/api/v1/requests", json={**REQUEST, "criteria": criteria})
    assert field in fields_of(refused)["criteria"]
    assert field in fields_of(researcher.post("/api/v1/catalogue/match", json=criteria))


def test_a_request_without_visits_or_a_bad_email_is_refused(researcher):
    no_visit = researcher.post(
        "/api/v1/requests", json={**REQUEST, "criteria": {"sample_types": "SER"}}
    )
    assert "visits" in fields_of(no_visit)
    assert "contact_email" in fields_of(
        researcher.post("/api/v1/requests", json={**REQUEST, "contact_email": "lab"})
    )
    assert "title" in fields_of(researcher.post("/api/v1/requests", json={**REQUEST, "title": ""}))


def test_approving_unknown_barcodes_is_a_400_naming_them(researcher, manager):
    request_id = submitted(researcher)
    refused = manager.post(
        f"/api/v1/requests/{request_id}/approve", json={"aliquots": ["NOPE-1", "NOPE-2"]}
    )
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "aliquot.not_found"
    assert refused.get_json()["error"]["fields"]["aliquots"] == "NOPE-1 NOPE-2"
    assert "aliquots" in fields_of(
        manager.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": []})
    )
    assert ok(manager.get(f"/api/v1/requests/{request_id}"))["status"] == "submitted"


def test_an_approval_that_lost_the_race_is_a_409_naming_the_aliquots(researcher, manager):
    first, second = submitted(researcher), submitted(researcher)
    reviewed = [
        a["barcode"] for a in ok(manager.get(f"/api/v1/requests/{second}/proposal"))["aliquots"]
    ]
    ok(manager.post(f"/api/v1/requests/{first}/approve", json={"aliquots": reviewed}))
    lost = manager.post(f"/api/v1/requests/{second}/approve", json={"aliquots": reviewed})
    error = lost.get_json()["error"]
    assert lost.status_code == 409 and error["code"] == "reservation.unavailable"
    assert set(reviewed) <= set(error["fields"]["aliquots"].replace("(", " ").split())


def test_the_last_aliquot_is_held_back_until_overridden(researcher, manager):
    request_id = submitted(
        researcher, criteria={"visits": "BL", "sample_types": "SER", "per_participant_visit": 5}
    )
    proposal = ok(manager.get(f"/api/v1/requests/{request_id}/proposal"))
    assert len(proposal["aliquots"]) == 12 and proposal["last_aliquots"] == []
    assert {(h["participant"], h["count"]) for h in proposal["held_back"]} == {
        ("LIM-001", 1),
        ("LIM-002", 1),
        ("LIM-003", 1),
    }
    everything = ok(manager.get(f"/api/v1/requests/{request_id}/proposal?allow_last=true"))
    chosen = [a["barcode"] for a in everything["aliquots"]]
    assert len(chosen) == 15 and set(everything["last_aliquots"]) == set(chosen)
    refused = manager.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": chosen})
    assert refused.status_code == 409 and "override_reason" in refused.get_json()["error"]["fields"]
    approval = ok(
        manager.post(
            f"/api/v1/requests/{request_id}/approve",
            json={"aliquots": chosen, "override_reason": "Pilot needs all"},
        )
    )
    # Each group is emptied: every one of its aliquots carries the override.
    assert set(approval["last_aliquots"]) == set(chosen)


def test_review_reject_and_cancel(researcher, manager):
    rejected, cancelled = submitted(researcher), submitted(researcher)
    assert ok(manager.post(f"/api/v1/requests/{rejected}/review"))["status"] == "under_review"
    assert "reason" in fields_of(manager.post(f"/api/v1/requests/{rejected}/reject", json={}))
    done = ok(manager.post(f"/api/v1/requests/{rejected}/reject", json={"reason": "Out of scope"}))
    assert done["status"] == "rejected" and done["decision_reason"] == "Out of scope"
    again = manager.post(f"/api/v1/requests/{rejected}/reject", json={"reason": "twice"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "request.status"
    gone = ok(researcher.post(f"/api/v1/requests/{cancelled}/cancel", json={"reason": "Funding"}))
    assert gone["status"] == "cancelled"
    assert ok(researcher.get("/api/v1/requests?status=cancelled"))["total"] == 1
    assert "status" in fields_of(researcher.get("/api/v1/requests?status=lost"))


def test_a_naive_dispatch_time_is_refused_naming_the_field(researcher, manager, technician):
    request_id, chosen = approved(researcher, manager)
    code = ok(technician.post("/api/v1/shipments", json={"request_id": request_id}), 201)["code"]
    ok(technician.post(f"/api/v1/shipments/{code}/items", json={"barcode": chosen[0]}), 201)
    naive = technician.post(
        f"/api/v1/shipments/{code}/dispatch",
        json={**DISPATCH, "dispatched_at": datetime.now(UTC).replace(tzinfo=None).isoformat()},
    )
    assert "dispatched_at" in fields_of(naive)
    assert "carrier" in fields_of(
        technician.post(f"/api/v1/shipments/{code}/dispatch", json={**DISPATCH, "carrier": ""})
    )
    assert "dry_ice_kg" in fields_of(
        technician.post(f"/api/v1/shipments/{code}/dispatch", json={**DISPATCH, "dry_ice_kg": 0})
    )
    future = technician.post(
        f"/api/v1/shipments/{code}/dispatch",
        json={**DISPATCH, "dispatched_at": "2999-01-01T00:00:00Z"},
    )
    assert "dispatched_at" in fields_of(future)
    assert ok(technician.get(f"/api/v1/shipments/{code}"))["status"] == "preparing"


def test_shipment_creation_needs_a_request_or_a_site(technician):
    assert "destination_site" in fields_of(technician.post("/api/v1/shipments", json={}))
    assert "box_rows" in fields_of(
        technician.post("/api/v1/shipments", json={"destination_site": "LIM", "box_rows": 27})
    )
    assert technician.get("/api/v1/shipments/S99999").status_code == 404


def test_a_transfer_is_received_from_a_rack_scan(api_as, bank, db):
    lim = api_as("technician", site="LIM")
    central = api_as("technician", site="BIO")
    factories.participant("LIM", code="LIM-009")
    fresh = [a.barcode for a in factories.visit("LIM-009", "BL").aliquots]
    shipment = ok(lim.post("/api/v1/shipments", json={"destination_site": "BIO"}), 201)
    assert (shipment["origin"], shipment["destination"]) == ("LIM", "BIO")
    code = shipment["code"]
    for barcode in fresh:
        ok(lim.post(f"/api/v1/shipments/{code}/items", json={"barcode": barcode}), 201)
    ok(lim.post(f"/api/v1/shipments/{code}/dispatch", json=DISPATCH))
    assert (
        lim.post(f"/api/v1/shipments/{code}/check-in", json={"barcode": fresh[0]}).status_code
        == 403
    )
    assert "file" in fields_of(central.post(f"/api/v1/shipments/{code}/check-in-rack"))
    csv = "Position,Barcode\n" + "\n".join(f"A{n + 1},{c}" for n, c in enumerate(fresh))
    checked = ok(
        central.post(
            f"/api/v1/shipments/{code}/check-in-rack",
            data={"file": (io.BytesIO(csv.encode()), "rack.csv")},
            content_type="multipart/form-data",
        )
    )
    assert sorted(c["barcode"] for c in checked) == sorted(fresh)
    assert {c["outcome"] for c in checked} == {"received"}
    unreadable = central.post(
        f"/api/v1/shipments/{code}/check-in-rack",
        data={"file": (io.BytesIO(b"\x00\x01 nothing"), "rack.csv")},
        content_type="multipart/form-data",
    )
    assert "file" in fields_of(unreadable)
    report = ok(central.post(f"/api/v1/shipments/{code}/receipt", json={"condition": "frozen"}))
    assert len(report["received"]) == 10 and not report["missing"]


def test_a_withdrawal_of_consent_lists_releases_and_destroys(researcher, manager, technician):
    request_id, _chosen = approved(researcher, manager)
    assert technician.get("/api/v1/participants/LIM-002/withdrawn-aliquots").status_code == 403
    assert "withdrawn_on" in fields_of(
        manager.post("/api/v1/participants/LIM-002/withdraw-consent", json={"withdrawn_on": "x"})
    )
    affected = ok(
        manager.post(
            "/api/v1/participants/LIM-002/withdraw-consent", json={"withdrawn_on": "2026-03-01"}
        )
    )["affected"]
    assert len(affected) == 20 and all(a["reserved_for"] is None for a in affected)
    assert "BX-0001" in affected[0]["location"]
    again = manager.post(
        "/api/v1/participants/LIM-002/withdraw-consent", json={"withdrawn_on": "2026-03-01"}
    )
    assert again.status_code == 409
    listed = ok(manager.get("/api/v1/participants/LIM-002/withdrawn-aliquots"))["affected"]
    assert listed == affected
    pick_list = ok(technician.get(f"/api/v1/requests/{request_id}/pick-list"))
    assert len(pick_list["items"]) == 2
    doomed = [a["barcode"] for a in affected[:2]]
    assert "reason" in fields_of(
        manager.post("/api/v1/participants/LIM-002/destroyed", json={"aliquots": doomed})
    )
    destroyed = manager.post(
        "/api/v1/participants/LIM-002/destroyed",
        json={"aliquots": doomed, "reason": "Consent withdrawn"},
    )
    assert ok(destroyed) == {"destroyed": 2}
    assert len(ok(manager.get("/api/v1/participants/LIM-002/withdrawn-aliquots"))["affected"]) == 18


def test_the_distribution_routes_are_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, method in [
        ("/api/v1/catalogue", "get"),
        ("/api/v1/catalogue/match", "post"),
        ("/api/v1/requests", "post"),
        ("/api/v1/requests/{request_id}", "get"),
        ("/api/v1/requests/{request_id}/proposal", "get"),
        ("/api/v1/requests/{request_id}/approve", "post"),
        ("/api/v1/requests/{request_id}/pick-list.pdf", "get"),
        ("/api/v1/shipments/{code}/dispatch", "post"),
        ("/api/v1/shipments/{code}/manifest.xlsx", "get"),
        ("/api/v1/shipments/{code}/check-in-rack", "post"),
        ("/api/v1/shipments/{code}/use", "post"),
        ("/api/v1/participants/{code}/withdraw-consent", "post"),
        ("/api/v1/participants/{code}/destroyed", "post"),
    ]:
        operation = spec["paths"][path][method]
        assert operation.get("description") or operation.get("summary"), path
    rack = spec["paths"]["/api/v1/shipments/{code}/check-in-rack"]["post"]
    assert "multipart/form-data" in rack["requestBody"]["content"]
    pdf = spec["paths"]["/api/v1/requests/{request_id}/pick-list.pdf"]["get"]
    assert "application/pdf" in pdf["responses"]["200"]["content"]
