"""A researcher can leave out the samples handled outside the SOP limits or collected
outside their visit's window: in the catalogue, in the request, and so at approval."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from biobank.distribution import services as requests
from biobank.distribution.criteria import Criteria, parse
from biobank.distribution.models import Reservation, SampleRequest
from biobank.errors import Invalid
from biobank.samples import services as samples
from biobank.storage import services as storage
from tests import factories
from tests.answers import ok
from tests.conftest import PASSWORD

INCLUDED = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)  # the factories' inclusion day


@pytest.fixture
def odd_bank(bank, db):
    """The stocked bank (LIM-001 to LIM-003, baseline and month 2, within the SOP), and:
    LIM-004, whose baseline serum clotted 3 h before it was spun (its plasma is fine);
    LIM-005, whose month-2 visit was collected on study day 64, after its window."""
    factories.participant("LIM", code="LIM-004")
    late_serum = factories.tube("SST", collected_at=INCLUDED, delay_hours=3)
    plasma = factories.tube("EDTA", collected_at=INCLUDED)
    spun_late = samples.register_collection("LIM-004", "BL", [late_serum, plasma], actor=None)
    factories.participant("LIM", code="LIM-005")
    day_64 = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    out_of_window = factories.visit("LIM-005", "M2", on=day_64)
    assert out_of_window.visit.out_of_window
    codes = [a.barcode for a in spun_late.aliquots + out_of_window.aliquots]
    storage.create_container(
        "box", "Box 9", parent="SH-0001", barcode="BX-0009", type_name="81-place 2-inch cryobox",
        actor=None,
    )  # fmt: skip
    storage.store_many([(code, "BX-0009", None) for code in codes], actor=None)
    db.session.commit()
    return {
        "late serum": [a.barcode for a in spun_late.aliquots if a.sample_type == "SER"],
        "late visit serum": [a.barcode for a in out_of_window.aliquots if a.sample_type == "SER"],
    }


@pytest.fixture
def people(sites):
    researcher = factories.user("researcher", password=PASSWORD)
    manager = factories.user("manager", password=PASSWORD)
    return researcher, manager


def cells(criteria: Criteria) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {
        (r.arm, r.visit, r.sample_type): (r.participants, r.aliquots)
        for r in requests.catalogue(criteria)
    }


def test_the_catalogue_counts_every_sample_unless_asked_to_keep_within_the_sop(odd_bank):
    every = cells(Criteria())
    assert every[("G2", "BL", "SER")] == (4, 20)
    assert every[("G2", "M2", "SER")] == (4, 20)
    within = cells(parse({"within_sop": True}))
    assert within[("G2", "BL", "SER")] == (3, 15)  # LIM-004's serum clotted 3 h
    assert within[("G2", "M2", "SER")] == (3, 15)  # LIM-005's month 2 was late
    assert within[("G2", "BL", "PL1")] == (4, 20)  # LIM-004's plasma was handled well
    assert within[("G2", "M2", "PL1")] == (3, 15)  # a late visit: all its tubes


def submit(researcher, **criteria) -> SampleRequest:
    return requests.submit_request(
        title="VEGF kinetics",
        aim="Serum VEGF at baseline and month 2",
        receiving_lab="VEGF laboratory, Limoges",
        contact_name="Dr Lab",
        contact_email="lab@chu.example",
        criteria=parse({"visits": ["BL", "M2"], "sample_types": ["SER"], **criteria}),
        actor=researcher,
    )


def proposed(request, manager) -> set[str]:
    return {c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen}


def test_a_request_within_the_sop_keeps_it_in_its_criteria_and_its_proposal(odd_bank, people):
    researcher, manager = people
    request = submit(researcher, within_sop=True)
    assert json.loads(request.criteria)["within_sop"] is True
    chosen = proposed(request, manager)
    assert len(chosen) == 6  # 3 participants × 2 visits
    assert not chosen & set(odd_bank["late serum"] + odd_bank["late visit serum"])


def test_a_request_without_the_criterion_gets_the_deviating_samples_too(odd_bank, people):
    researcher, manager = people
    request = submit(researcher)
    assert json.loads(request.criteria)["within_sop"] is False
    chosen = proposed(request, manager)
    assert len(chosen) == 8
    assert chosen & set(odd_bank["late serum"]) and chosen & set(odd_bank["late visit serum"])


def test_approval_refuses_a_deviating_sample_for_a_request_within_the_sop(odd_bank, people, db):
    researcher, manager = people
    request = submit(researcher, within_sop=True)
    chosen = sorted(proposed(request, manager))
    late = odd_bank["late serum"][0]
    with pytest.raises(Invalid) as refused:
        requests.approve(request.id, [*chosen, late], actor=manager)
    assert refused.value.code == "reservation.not_matching"
    assert refused.value.fields == {"aliquots": late}
    assert db.session.execute(sa.select(sa.func.count(Reservation.id))).scalar() == 0
    approval = requests.approve(request.id, chosen, actor=manager)
    assert approval.reserved == 6


def test_criteria_saved_before_the_criterion_existed_mean_every_sample():
    old = '{"arms":[],"disease_statuses":[],"max_freeze_thaw":null,"min_volume_ul":0,'
    old += '"per_participant_visit":1,"sample_types":["SER"],"visits":["BL"]}'
    assert Criteria.from_json(old).within_sop is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("y", True), ("true", True), ("0", False), ("", False)],
)
def test_the_criterion_reads_yes_and_no(value, expected):
    assert parse({"within_sop": value}).within_sop is expected


def test_a_value_that_is_neither_yes_nor_no_is_refused_naming_the_field():
    with pytest.raises(Invalid) as refused:
        parse({"within_sop": "perhaps"})
    assert refused.value.fields == {"within_sop": "perhaps"}


# --- the API --------------------------------------------------------------------------------


def test_the_api_catalogue_and_requests_take_the_criterion(odd_bank, api_as):
    manager, researcher = api_as("manager"), api_as("researcher")

    def serum_at_baseline(query: str) -> dict:
        rows = ok(manager.get(f"/api/v1/catalogue?visits=BL&sample_types=SER{query}"))
        return {row["arm"]: row["aliquots"] for row in rows}

    assert serum_at_baseline("") == {"G2": 20}
    assert serum_at_baseline("&within_sop=true") == {"G2": 15}
    criteria = {"visits": ["BL"], "sample_types": ["SER"], "within_sop": True}
    match = ok(manager.post("/api/v1/catalogue/match", json=criteria))
    assert match["aliquots"] == 3  # one per participant: LIM-004's serum is left out
    created = ok(
        researcher.post(
            "/api/v1/requests",
            json={
                "title": "VEGF",
                "aim": "Serum VEGF at baseline",
                "receiving_lab": "VEGF laboratory, Limoges",
                "contact_name": "Dr Lab",
                "contact_email": "lab@chu.example",
                "criteria": criteria,
            },
        ),
        201,
    )
    assert ok(researcher.get(f"/api/v1/requests/{created['id']}"))["criteria"]["within_sop"]
    refused = researcher.post("/api/v1/catalogue/match", json={**criteria, "within_sop": "perhaps"})
    assert refused.status_code == 400
    assert "within_sop" in refused.get_json()["error"]["fields"]


# --- the pages ------------------------------------------------------------------------------


def test_the_catalogue_page_offers_the_criterion_and_carries_it_to_the_request(odd_bank, login_as):
    manager = login_as("manager")
    text = html.unescape(manager.get("/catalogue?within_sop=y").get_data(as_text=True))
    assert "Only samples handled within the SOP" in text
    assert 'checked id="within_sop" name="within_sop"' in text
    assert "within_sop=y" in text  # the "Request aliquots" link keeps it
    unfiltered = html.unescape(manager.get("/catalogue").get_data(as_text=True))
    assert 'checked id="within_sop"' not in unfiltered


def test_a_request_made_on_the_form_within_the_sop_says_so_on_its_page(odd_bank, login_as, db):
    researcher = login_as("researcher")
    response = researcher.post(
        "/requests/new",
        data={
            "title": "VEGF",
            "aim": "Serum VEGF at baseline",
            "visits": ["BL"],
            "sample_types": ["SER"],
            "per_participant_visit": "1",
            "within_sop": "y",
            "receiving_lab": "VEGF laboratory, Limoges",
            "contact_name": "Dr Lab",
            "contact_email": "lab@chu.example",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    stored = db.session.execute(sa.select(SampleRequest.criteria)).scalar()
    assert json.loads(stored)["within_sop"] is True
    text = html.unescape(researcher.get(response.location).get_data(as_text=True))
    assert "<dt>Only samples handled within the SOP</dt><dd>yes</dd>" in text
