"""GET /api/v1/study/completeness: its shape, who may ask, centres, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from biobank.monitoring import completeness as monitoring
from biobank.samples import services as samples
from biobank.samples.services import NotCollected
from tests import factories
from tests.answers import error_of, ok

URL = "/api/v1/study/completeness"


@pytest.fixture
def trial(db, sites):
    """LIM-001 (G2): baseline collected, Month 2 serum drawn 3 days late and its plasma
    not drawn. PAR-001 (G1): nothing yet."""
    factories.participant("LIM", "G2", code="LIM-001")
    factories.visit("LIM-001", "BL")
    samples.register_collection(
        "LIM-001",
        "M2",
        [factories.tube("SST", collected_at=datetime(2026, 3, 12, 8, 30, tzinfo=UTC))],
        actor=None,
        not_collected=[NotCollected("EDTA", "broken", "dropped on the floor")],
    )
    factories.participant("PAR", "G1", code="PAR-001")
    db.session.commit()


def test_the_answer_lists_each_tube_with_its_window_and_the_counts(api_as, trial):
    manager = api_as("manager")

    body = ok(manager.get(URL, query_string={"as_of": "2026-03-10"}))

    assert body["as_of"] == "2026-03-10"
    assert len(body["items"]) == 2 * 6 * 2
    first = body["items"][0]
    assert first == {
        "participant": "LIM-001",
        "site": "LIM",
        "arm": "G2",
        "visit": "BL",
        "tube_type": "SST",
        "status": "collected",
        "window_from": "2025-12-08",
        "window_to": "2026-01-05",
        "collected_on": "2026-01-05",
        "deviations": [],
        "reason": None,
        "note": "",
    }
    month_2 = [i for i in body["items"] if (i["participant"], i["visit"]) == ("LIM-001", "M2")]
    serum, plasma = month_2
    assert [d["code"] for d in serum["deviations"]] == ["visit.out_of_window"]
    assert serum["deviations"][0]["message"]
    assert (plasma["status"], plasma["reason"], plasma["note"]) == (
        "not_collected",
        "broken",
        "dropped on the floor",
    )
    assert body["summary"] == {
        "collected": 3,
        "not_collected": 1,
        "not_expected": 8,  # PAR-001's arm has no M4 to EOM
        "upcoming": 8,
        "due": 0,
        "missing": 4,  # PAR-001's baseline and Month 2
    }


def test_a_status_filter_lists_those_items_and_keeps_every_count(api_as, trial):
    body = ok(api_as("manager").get(URL, query_string={"as_of": "2026-03-10", "status": "missing"}))

    assert [(i["participant"], i["visit"], i["tube_type"]) for i in body["items"]] == [
        ("PAR-001", "BL", "SST"),
        ("PAR-001", "BL", "EDTA"),
        ("PAR-001", "M2", "SST"),
        ("PAR-001", "M2", "EDTA"),
    ]
    assert body["summary"]["collected"] == 3


def test_without_a_day_it_is_today_in_the_callers_centre(api_as, trial, monkeypatch):
    monkeypatch.setattr(monitoring, "utcnow", lambda: datetime(2026, 2, 22, 23, 30, tzinfo=UTC))

    body = ok(api_as("technician", site="PAR").get(URL))

    assert body["as_of"] == "2026-02-23"  # already the 23rd in Paris
    assert {i["status"] for i in body["items"] if i["visit"] == "M2"} == {"due"}


def test_a_centre_user_sees_their_centre_only(api_as, trial):
    paris = api_as("technician", site="PAR")

    own = ok(paris.get(URL, query_string={"as_of": "2026-03-10"}))
    other = ok(paris.get(URL, query_string={"as_of": "2026-03-10", "site": "LIM"}))
    unknown = ok(paris.get(URL, query_string={"as_of": "2026-03-10", "site": "XYZ"}))

    assert {i["participant"] for i in own["items"]} == {"PAR-001"}
    assert other == unknown
    assert other["items"] == [] and set(other["summary"].values()) == {0}


def test_a_central_user_may_ask_for_one_centre_and_one_arm(api_as, trial):
    manager = api_as("manager")

    paris = ok(manager.get(URL, query_string={"site": "PAR", "as_of": "2026-03-10"}))
    group_2 = ok(manager.get(URL, query_string={"arm": "G2", "as_of": "2026-03-10"}))

    assert {i["participant"] for i in paris["items"]} == {"PAR-001"}
    assert {i["participant"] for i in group_2["items"]} == {"LIM-001"}


def test_a_researcher_may_not_see_participant_level_completeness(api_as, trial):
    assert api_as("researcher").get(URL).status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"arm": "G9"}, "arm"),
        ({"status": "lost"}, "status"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_field(api_as, trial, query, field):
    error = error_of(api_as("manager").get(URL, query_string=query), 400)

    assert field in error["fields"]
