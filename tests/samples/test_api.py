"""The JSON API for registration, lookup and custody, and its error shapes."""

from __future__ import annotations

import pytest

from tests import factories

TUBE = {
    "tube_type": "SST",
    "collected_at": "2026-01-05T08:30:00+01:00",
    "received_at": "2026-01-05T08:50:00+01:00",
    "spun_at": "2026-01-05T09:30:00+01:00",
    "spin": {"temperature_c": 20, "force_g": 2000, "minutes": 10},
    "frozen_at": "2026-01-05T10:05:00+01:00",
}


@pytest.fixture
def technician(api_as, sites):
    factories.participant("LIM", code="LIM-001")
    return api_as("technician")


def register(client, **changes):
    body = {
        "participant": "LIM-001",
        "visit": "BL",
        "tubes": [TUBE, {**TUBE, "tube_type": "EDTA"}],
        **changes,
    }
    return client.post("/api/v1/specimens", json=body)


def test_registration_returns_the_aliquots_and_their_barcodes(technician):
    response = register(technician)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["participant"] == "LIM-001" and body["visit"] == "BL"
    assert body["collected_on"] == "2026-01-05"
    assert [s["tube_type"] for s in body["specimens"]] == ["SST", "EDTA"]
    serum = body["specimens"][0]
    assert serum["sprec_code"].startswith("SER-SST-")
    assert len(serum["aliquots"]) == 5
    assert {a["series"] for a in serum["aliquots"]} == {"1/5", "2/5", "3/5", "4/5", "5/5"}


def test_the_same_registration_twice_is_a_409_naming_the_tube(technician):
    assert register(technician).status_code == 201
    again = register(technician)
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "specimen.duplicate"
    assert "already registered" in error["message"]
    assert error["fields"] == {"SST.tube_type": "SST"}


def test_a_malformed_request_is_a_400_naming_the_fields(technician):
    tube = {**TUBE, "collected_at": "yesterday", "spin": {"force_g": -5}}
    del tube["frozen_at"]
    response = register(technician, tubes=[tube])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation"
    fields = error["fields"]["tubes"]["0"]
    assert set(fields) >= {"collected_at", "frozen_at", "spin"}
    assert "temperature_c" in fields["spin"] and "force_g" in fields["spin"]


def test_a_time_without_zone_is_refused(technician):
    response = register(technician, tubes=[{**TUBE, "spun_at": "2026-01-05T09:30:00"}])
    assert response.status_code == 400
    assert "spun_at" in response.get_json()["error"]["fields"]["tubes"]["0"]


def test_a_rule_broken_in_the_service_is_a_400_naming_the_field(technician):
    response = register(technician, tubes=[{**TUBE, "frozen_at": "2026-01-05T07:00:00+01:00"}])
    assert response.status_code == 400
    assert "SST.frozen_at" in response.get_json()["error"]["fields"]


def test_an_unknown_participant_is_a_404(technician):
    response = register(technician, participant="LIM-999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_aliquot_lookup_has_the_fields_scripts_rely_on(technician):
    barcode = register(technician).get_json()["specimens"][1]["aliquots"][2]["barcode"]
    response = technician.get(f"/api/v1/aliquots/{barcode.lower()}%0D%0A")
    assert response.status_code == 200
    body = response.get_json()
    assert body["barcode"] == barcode
    assert body["status"] == "registered"
    assert body["volume_ul"] == 500
    assert body["sample_type"] == "PL1"
    assert body["participant"] == "LIM-001"
    assert body["visit"] == "BL"
    assert "location" in body and body["location"] is None
    assert body["series"] == "3/5"


def test_a_wrong_check_character_is_a_400_not_a_404(technician):
    barcode = register(technician).get_json()["specimens"][0]["aliquots"][0]["barcode"]
    wrong = barcode[:-1] + ("B" if barcode[-1] != "B" else "C")
    response = technician.get(f"/api/v1/aliquots/{wrong}")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "not a valid barcode (check character)"


def test_aliquots_are_listed_page_by_page(technician):
    register(technician)
    first = technician.get("/api/v1/aliquots?limit=4&offset=0").get_json()
    rest = technician.get("/api/v1/aliquots?limit=100&offset=4").get_json()
    assert first["total"] == rest["total"] == 10
    assert len(first["items"]) == 4 and len(rest["items"]) == 6
    barcodes = [a["barcode"] for a in first["items"] + rest["items"]]
    assert len(set(barcodes)) == 10


def test_a_page_size_out_of_range_is_a_400(technician):
    response = technician.get("/api/v1/aliquots?limit=100000")
    assert response.status_code == 400
    assert "limit" in response.get_json()["error"]["fields"]


def test_custody_history_lists_events_with_their_hashes(technician):
    barcode = register(technician).get_json()["specimens"][0]["aliquots"][0]["barcode"]
    technician.post(
        f"/api/v1/aliquots/{barcode}/volume-corrections",
        json={"volume_ul": 480, "reason": "weighed"},
    )
    items = technician.get(f"/api/v1/aliquots/{barcode}/custody").get_json()["items"]
    assert [e["kind"] for e in items] == ["REGISTERED", "VOLUME_CORRECTED"]
    assert items[0]["actor"] == technician.user.username
    assert items[1]["prev_hash"] == items[0]["hash"] and len(items[1]["hash"]) == 64
    assert items[1]["details"] == {"from_ul": 500, "to_ul": 480}
    assert items[1]["at"].endswith("+00:00")


def test_no_token_is_a_401_in_the_error_shape(client, sites):
    response = client.get("/api/v1/aliquots")
    assert response.status_code == 401
    assert set(response.get_json()["error"]) == {"code", "message", "fields"}


def test_a_centre_user_gets_404_for_another_centres_participant(technician, api_as):
    paris = api_as("technician", site="PAR")
    assert paris.get("/api/v1/participants/LIM-001").status_code == 404
    assert paris.get("/api/v1/participants").get_json()["total"] == 0
    assert technician.get("/api/v1/participants").get_json()["total"] == 1


def test_participants_can_be_enrolled_through_the_api(api_as, sites):
    client = api_as("technician")
    body = {
        "code": "lim-004",
        "site": "LIM",
        "arm": "G2",
        "disease_status": "relapsed",
        "included_on": "2026-02-01",
        "consent_given_on": "2026-01-28",
    }
    created = client.post("/api/v1/participants", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["code"] == "LIM-004"
    assert client.post("/api/v1/participants", json=body).status_code == 409
    bad = client.post("/api/v1/participants", json={**body, "code": "Jean Dupont"})
    assert bad.status_code == 400 and "code" in bad.get_json()["error"]["fields"]


def test_the_openapi_document_describes_the_routes(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/v1/participants",
        "/api/v1/specimens",
        "/api/v1/aliquots",
        "/api/v1/aliquots/{barcode}",
        "/api/v1/aliquots/{barcode}/custody",
    ):
        assert path in spec["paths"], path
    assert "RegistrationRequest" in spec["components"]["schemas"]


def test_a_visit_dated_before_its_window_is_a_400_and_writes_nothing(technician):
    # Included on 5 January 2026: a Month-2 visit on that day is study day 0 (window 49-63).
    response = register(technician, visit="M2")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "visit.too_early"
    assert error["fields"] == {"SST.collected_at": "2026-01-05"}
    assert "study day 49 to study day 63" in error["message"]
    assert "earliest date is 2026-02-23" in error["message"]
    assert technician.get("/api/v1/participants/LIM-001").get_json()["visits"] == []
    assert technician.get("/api/v1/aliquots").get_json()["total"] == 0


def test_a_visit_dated_after_its_window_is_registered_and_flagged(technician):
    late = {
        key: value.replace("2026-01-05", "2026-03-10") if key.endswith("_at") else value
        for key, value in TUBE.items()
    }  # study day 64
    response = register(technician, visit="M2", tubes=[late])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["out_of_window"] is True


@pytest.fixture
def freezer(db, sites):
    factories.freezer({"BX-0001": "Box 1"})


@pytest.mark.parametrize(
    ("typed", "status", "code"),
    [
        ("ABC12", 400, "barcode.length"),
        ("B4", 400, "barcode.position"),
        ("BX-0001", 400, "barcode.container"),
        ("RK-9999", 400, "barcode.length"),  # no such container
        ("7KQ3M9XW5", 400, "barcode.invalid"),  # a wrong check character
    ],
)
def test_aliquot_lookup_answers_each_kind_of_wrong_code_with_its_own_error(
    technician, freezer, typed, status, code
):
    response = technician.get(f"/api/v1/aliquots/{typed}")
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["fields"] == {"barcode": typed}


def test_aliquot_lookup_of_another_centres_tube_is_a_403_saying_only_that(technician, api_as):
    barcode = register(technician).get_json()["specimens"][0]["aliquots"][0]["barcode"]
    paris = api_as("technician", site="PAR")
    response = paris.get(f"/api/v1/aliquots/{barcode}")
    assert response.status_code == 403
    assert response.get_json()["error"] == {
        "code": "aliquot.other_centre",
        "message": f"{barcode} is registered at another centre: only that centre and the "
        "central biobank can see it.",
        "fields": {"barcode": barcode},
    }
    assert paris.get(f"/api/v1/aliquots/{barcode}/custody").status_code == 403
