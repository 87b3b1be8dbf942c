"""Collection completeness: one status per participant × visit × tube, windows counted to
the day, in each centre's time zone, within the actor's reach."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from biobank.errors import Invalid
from biobank.monitoring import completeness as monitoring
from biobank.monitoring.completeness import completeness
from biobank.samples import services as samples
from biobank.samples.services import NotCollected
from biobank.sites import services as site_services
from biobank.study import services as study
from tests import factories

INCLUDED = date(2026, 1, 5)  # the factories' inclusion date
# Month 2: nominal day 56, 7 days before and after → study days 49 to 63.
M2_OPENS = date(2026, 2, 23)
M2_CLOSES = date(2026, 3, 9)
TUBES = ("SST", "EDTA")


def status(result, participant: str, visit: str, tube: str = "SST"):
    return item(result, participant, visit, tube).status


def item(result, participant: str, visit: str, tube: str = "SST"):
    found = [
        i
        for i in result.items
        if (i.participant, i.visit, i.tube_type) == (participant, visit, tube)
    ]
    assert len(found) == 1, f"{participant} {visit} {tube}: {found}"
    return found[0]


def at(day: date, hour: int = 8) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)


def frozen_clock(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(monitoring, "utcnow", lambda: moment)


# --- one status each ------------------------------------------------------------------------


def test_every_tube_of_every_visit_of_the_schedule_gets_one_status(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("LIM", "G1", code="LIM-002")

    result = completeness(actor=None, as_of=date(2026, 5, 1))

    visits = ["BL", "M2", "M4", "M6", "EOI", "EOM"]
    expected = [(p, v, t) for p in ("LIM-001", "LIM-002") for v in visits for t in TUBES]
    assert [(i.participant, i.visit, i.tube_type) for i in result.items] == expected
    assert result.as_of == date(2026, 5, 1)
    assert result.visits[0] == ("BL", "Baseline") and result.tube_types == TUBES


def test_collected_not_collected_due_upcoming_and_missing_side_by_side(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.visit("LIM-001", "BL")
    samples.register_collection(
        "LIM-001",
        "M2",
        [factories.tube("SST", collected_at=at(date(2026, 3, 2)))],
        actor=None,
        not_collected=[NotCollected("EDTA", "failed_draw", "two attempts, no blood")],
    )
    factories.participant("LIM", "G2", code="LIM-002")

    result = completeness(actor=None, as_of=date(2026, 5, 1))

    baseline = item(result, "LIM-001", "BL", "EDTA")
    assert baseline.status == "collected"
    assert baseline.collected_on == INCLUDED
    assert (baseline.window_from, baseline.window_to) == (date(2025, 12, 8), INCLUDED)
    assert item(result, "LIM-001", "M2", "SST").collected_on == date(2026, 3, 2)
    not_drawn = item(result, "LIM-001", "M2", "EDTA")
    assert (not_drawn.status, not_drawn.reason, not_drawn.note) == (
        "not_collected",
        "failed_draw",
        "two attempts, no blood",
    )
    assert not_drawn.collected_on is None
    assert status(result, "LIM-001", "M4") == "due"  # 13 April – 11 May
    assert status(result, "LIM-001", "M6") == "upcoming"
    assert status(result, "LIM-002", "BL") == "missing"
    assert status(result, "LIM-002", "M2", "EDTA") == "missing"


def test_a_tube_recorded_as_not_drawn_is_not_missing_after_its_window(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("LIM", "G2", code="LIM-002")
    samples.register_collection(
        "LIM-001",
        "M2",
        [],
        actor=None,
        not_collected=[NotCollected(t, "refused") for t in TUBES],
        collected_on=date(2026, 2, 25),
    )

    result = completeness(actor=None, as_of=M2_CLOSES.replace(day=10))

    assert [status(result, "LIM-001", "M2", t) for t in TUBES] == ["not_collected"] * 2
    assert [status(result, "LIM-002", "M2", t) for t in TUBES] == ["missing"] * 2


def test_a_registered_tube_is_collected_whatever_the_day_counted_on(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.visit("LIM-001", "M2", tube_types=("SST",))

    before_its_window = completeness(actor=None, as_of=date(2026, 1, 1))

    assert status(before_its_window, "LIM-001", "M2", "SST") == "collected"
    assert status(before_its_window, "LIM-001", "M2", "EDTA") == "upcoming"


def test_a_visit_the_arm_does_not_have_is_not_expected_and_has_no_window(db, sites):
    factories.participant("LIM", "G1", code="LIM-001")

    result = completeness(actor=None, as_of=date(2027, 12, 31))

    for visit in ("M4", "M6", "EOI", "EOM"):
        for tube in TUBES:
            found = item(result, "LIM-001", visit, tube)
            assert found.status == "not_expected"
            assert (found.window_from, found.window_to) == (None, None)
    assert status(result, "LIM-001", "M2") == "missing"


# --- the window, to the day -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2026, 2, 22), "upcoming"),  # the day before the window opens
        (M2_OPENS, "due"),
        (M2_CLOSES, "due"),
        (date(2026, 3, 10), "missing"),  # the day after it closes
    ],
)
def test_month_2_is_due_from_the_day_its_window_opens_to_the_day_it_closes(
    db, sites, as_of, expected
):
    factories.participant("LIM", "G2", code="LIM-001")

    result = completeness(actor=None, as_of=as_of)

    assert {status(result, "LIM-001", "M2", t) for t in TUBES} == {expected}
    assert item(result, "LIM-001", "M2").window_from == M2_OPENS
    assert item(result, "LIM-001", "M2").window_to == M2_CLOSES


def test_today_is_each_centres_own_day(db, sites, monkeypatch):
    site_services.create_site("MTL", "CHUM Montréal", timezone="America/Montreal", actor=None)
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("MTL", "G2", code="MTL-001")
    # 23:30 UTC the day before the window opens: 00:30 the next day in Paris, 18:30 the
    # same day in Montreal.
    frozen_clock(monkeypatch, datetime(2026, 2, 22, 23, 30, tzinfo=UTC))

    result = completeness(actor=None)

    assert status(result, "LIM-001", "M2") == "due"
    assert status(result, "MTL-001", "M2") == "upcoming"
    assert result.as_of == M2_OPENS  # the application's zone: Europe/Paris


def test_the_answers_day_is_the_actors_centres_or_the_filtered_centres(db, make_user, monkeypatch):
    site_services.create_site("MTL", "CHUM Montréal", timezone="America/Montreal", actor=None)
    frozen_clock(monkeypatch, datetime(2026, 2, 22, 23, 30, tzinfo=UTC))
    montreal = make_user("technician", site="MTL")
    central = make_user("manager")

    assert completeness(actor=montreal).as_of == date(2026, 2, 22)
    assert completeness(actor=central, site_code="MTL").as_of == date(2026, 2, 22)
    assert completeness(actor=central, site_code="LIM").as_of == M2_OPENS
    assert completeness(actor=central).as_of == M2_OPENS


# --- leaving the study, withdrawing consent -------------------------------------------------


def test_leaving_on_the_day_the_window_opens_keeps_the_visit_expected_that_day(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    study.record_leaving("LIM-001", M2_OPENS, "toxicity", actor=None)

    on_the_day = completeness(actor=None, as_of=M2_OPENS)
    the_day_after = completeness(actor=None, as_of=date(2026, 2, 24))

    assert status(on_the_day, "LIM-001", "M2") == "due"
    assert item(on_the_day, "LIM-001", "M2").window_to == M2_OPENS  # ends the day they left
    assert status(the_day_after, "LIM-001", "M2") == "missing"
    assert status(the_day_after, "LIM-001", "M4") == "not_expected"


def test_leaving_the_day_before_the_window_opens_means_the_visit_is_not_expected(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    study.record_leaving("LIM-001", date(2026, 2, 22), "progression", actor=None)

    result = completeness(actor=None, as_of=date(2026, 12, 1))

    assert status(result, "LIM-001", "BL") == "missing"  # due while they were in the study
    for visit in ("M2", "M4", "M6", "EOI"):
        assert {status(result, "LIM-001", visit, t) for t in TUBES} == {"not_expected"}


def test_leaving_after_the_window_changes_nothing(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    study.record_leaving("LIM-001", date(2026, 3, 20), "death", actor=None)

    result = completeness(actor=None, as_of=date(2026, 3, 10))

    assert status(result, "LIM-001", "M2") == "missing"
    assert item(result, "LIM-001", "M2").window_to == M2_CLOSES


def test_consent_withdrawn_before_the_window_opens_means_not_expected(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("LIM", "G2", code="LIM-002")
    study.withdraw_consent("LIM-001", date(2026, 2, 22), actor=None)
    study.withdraw_consent("LIM-002", M2_OPENS, actor=None)

    result = completeness(actor=None, as_of=date(2026, 2, 24))

    assert status(result, "LIM-001", "M2") == "not_expected"
    assert status(result, "LIM-002", "M2") == "missing"  # its window ended on the 23rd


# --- deviations -----------------------------------------------------------------------------


def test_a_collected_tube_carries_its_deviations_and_its_visits(app, db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    # Baseline's window ends on the inclusion day: 3 days later is out of window. The
    # serum clotted 5 hours before it was spun.
    late = at(date(2026, 1, 8))
    samples.register_collection(
        "LIM-001",
        "BL",
        [
            factories.tube("SST", collected_at=late, delay_hours=5),
            factories.tube("EDTA", collected_at=late),
        ],
        actor=None,
    )

    result = completeness(actor=None, as_of=date(2026, 1, 9))

    serum = [d.code for d in item(result, "LIM-001", "BL", "SST").deviations]
    plasma = item(result, "LIM-001", "BL", "EDTA").deviations
    assert "preanalytical.draw_to_centrifugation" in serum
    assert serum[-1] == "visit.out_of_window"
    assert [d.code for d in plasma] == ["visit.out_of_window"]
    assert "day 3" in str(plasma[0].message)


# --- centres --------------------------------------------------------------------------------


def test_a_centre_user_never_sees_another_centres_participants(db, make_user):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("PAR", "G2", code="PAR-001")
    limoges = make_user("technician", site="LIM")

    own = completeness(actor=limoges, as_of=M2_OPENS)
    asked_for_paris = completeness(actor=limoges, site_code="PAR", as_of=M2_OPENS)
    unknown = completeness(actor=limoges, site_code="NOPE", as_of=M2_OPENS)

    assert {i.participant for i in own.items} == {"LIM-001"}
    assert asked_for_paris.items == [] == unknown.items
    assert asked_for_paris.summary == unknown.summary == dict.fromkeys(monitoring.STATUSES, 0)


def test_a_central_user_sees_every_centre_or_the_one_asked_for(db, make_user):
    factories.participant("PAR", "G2", code="PAR-001")
    factories.participant("LIM", "G2", code="LIM-001")
    central = make_user("manager")

    everyone = completeness(actor=central, as_of=M2_OPENS)
    paris = completeness(actor=central, site_code="PAR", as_of=M2_OPENS)

    assert [i.site for i in everyone.items][:: len(everyone.items) // 2] == ["LIM", "PAR"]
    assert {i.participant for i in paris.items} == {"PAR-001"}


def test_an_arm_filter_keeps_that_arms_participants(db, sites):
    factories.participant("LIM", "G1", code="LIM-001")
    factories.participant("LIM", "G2", code="LIM-002")

    result = completeness(actor=None, arm_code="G1", as_of=M2_OPENS)

    assert {(i.participant, i.arm) for i in result.items} == {("LIM-001", "G1")}


# --- counts ---------------------------------------------------------------------------------


def test_the_summary_counts_every_status_whatever_the_status_asked_for(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.participant("PAR", "G1", code="PAR-001")
    factories.visit("LIM-001", "BL")

    everything = completeness(actor=None, as_of=M2_OPENS)
    missing = completeness(actor=None, as_of=M2_OPENS, status="missing")

    # LIM-001 (G2): BL collected, M2 due, M4–EOM upcoming. PAR-001 (G1): BL missing, M2
    # due, M4–EOM not in its arm.
    assert everything.summary == {
        "collected": 2,
        "not_collected": 0,
        "not_expected": 8,
        "upcoming": 8,
        "due": 4,
        "missing": 2,
    }
    assert missing.summary == everything.summary
    assert [(i.participant, i.visit, i.tube_type) for i in missing.items] == [
        ("PAR-001", "BL", "SST"),
        ("PAR-001", "BL", "EDTA"),
    ]
    assert everything.by_centre_visit["LIM"]["BL"] == {"collected": 2}
    assert everything.by_centre_visit["PAR"]["BL"] == {"missing": 2}
    assert everything.by_centre_visit["PAR"]["M4"] == {"not_expected": 2}
    assert sum(everything.summary.values()) == len(everything.items)


# --- refusals -------------------------------------------------------------------------------


def test_an_unknown_arm_is_refused_naming_the_field(db, sites):
    with pytest.raises(Invalid) as refused:
        completeness(actor=None, arm_code="G9")
    assert refused.value.fields == {"arm": "G9"}
    assert "G1, G2" in str(refused.value.message)


def test_an_unknown_status_is_refused_naming_the_field(db, sites):
    with pytest.raises(Invalid) as refused:
        completeness(actor=None, status="lost")
    assert refused.value.fields == {"status": "lost"}


def test_to_draw_by_a_day_lists_the_tubes_due_and_those_whose_window_opens_by_then(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")  # month 2 opens on 2026-02-23
    factories.visit("LIM-001", "BL")
    before = M2_OPENS - timedelta(days=6)

    def listed(due_by):
        result = completeness(actor=None, as_of=before, due_by=due_by)
        return sorted({(i.visit, i.tube_type, i.status) for i in result.items})

    assert listed(M2_OPENS) == [("M2", "EDTA", "upcoming"), ("M2", "SST", "upcoming")]
    assert listed(M2_OPENS - timedelta(days=1)) == []
    # Once the window is open the tubes are due, whatever the day asked.
    due = completeness(actor=None, as_of=M2_OPENS, due_by=M2_OPENS)
    assert {(i.visit, i.status) for i in due.items} == {("M2", "due")}
