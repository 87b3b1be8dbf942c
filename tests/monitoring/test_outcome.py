"""The primary outcome: each participant's readiness per visit and analyte, and the figures
per arm (paired values, median and quartiles of the percent change at M2, response
categories), computed from the reportable results of accepted runs, within the centre."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from biobank.assays import response, services
from biobank.assays.models import Result
from biobank.errors import NotFound
from biobank.extensions import db as _db
from biobank.monitoring import outcome
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.samples.services import NotCollected
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from tests import factories
from tests.assays.conftest import sheet

INCLUDED = date(2026, 1, 5)
# Long after every visit of the schedule: nothing is still to come.
LATER = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
CRITERIA = response.load_criteria()


# --- building a trial through the services ------------------------------------------------


def enrol(code: str, arm: str = "G2", site: str = "LIM", included_on: date = INCLUDED):
    return factories.participant(site, arm, code=code, included_on=included_on)


def collect(code: str, visit: str, tube_types=("SST", "EDTA"), not_collected=()):
    """Register the visit on its nominal day; returns its first serum aliquot's barcode
    (None when no serum tube was drawn)."""
    participant = study.get_participant(code, actor=None)
    definition = study.visit_definition(study.current_protocol(), participant.arm_code, visit)
    day = participant.included_on + timedelta(days=definition.nominal_day)
    on = datetime(day.year, day.month, day.day, 8, 30, tzinfo=UTC)
    registration = samples.register_collection(
        code,
        visit,
        [factories.tube(t, collected_at=on) for t in tube_types],
        not_collected=[NotCollected(*entry) for entry in not_collected],
        actor=None,
    )
    serum = [a.barcode for a in registration.aliquots if a.sample_type == "SER"]
    return serum[0] if serum else None


def results_sheet(rows, name: str, *, reassay_reason: str = ""):
    """A laboratory's result sheet kept as a preview: rows of (barcode, analyte, value,
    unit)."""
    lines = [[*row, "lab", "", ""] for row in rows]
    return services.preview_results(
        sheet(lines), name, reassay_reason=reassay_reason, actor=None
    ).run


def accepted_sheet(rows, name: str, **kwargs):
    run = results_sheet(rows, name, **kwargs)
    services.accept_run(run.code, confirm=True, actor=None)
    return run


def vegf(barcode: str, value: float):
    return (barcode, "VEGF", value, "pg/mL")


def m_spike(barcode: str, value: float):
    return (barcode, "M-spike", value, "g/L")


def trial_of(changes: dict[str, tuple[str, float, float | None]], name: str = "vegf.xlsx"):
    """Participants {code: (arm, baseline VEGF, M2 VEGF or None)}, their BL and M2 visits
    registered, the values accepted in one sheet; returns {(code, visit): serum barcode}."""
    serum, rows = {}, []
    for code, (arm, baseline, at_m2) in changes.items():
        enrol(code, arm)
        serum[(code, "BL")] = collect(code, "BL")
        serum[(code, "M2")] = collect(code, "M2")
        rows.append(vegf(serum[(code, "BL")], baseline))
        if at_m2 is not None:
            rows.append(vegf(serum[(code, "M2")], at_m2))
    accepted_sheet(rows, name)
    return serum


def by_arm(found: outcome.Summary) -> dict[str, outcome.ArmSummary]:
    return {arm.code: arm for arm in found.arms}


def summary(actor=None, now=LATER) -> outcome.Summary:
    return outcome.summary(CRITERIA, actor=actor, now=now)


# --- quartiles, by hand ------------------------------------------------------------------


def test_quartiles_interpolate_linearly_between_sorted_values_odd_count():
    # Sorted -60, -30, 0: q1 at position (3-1)·0.25 = 0.5, halfway from -60 to -30.
    assert outcome.spread([0.0, -60.0, -30.0]) == outcome.Spread(3, -30.0, -45.0, -15.0)


def test_quartiles_interpolate_linearly_between_sorted_values_even_count():
    # Sorted -50, -20, 10, 40: q1 at 0.75 → -50 + 0.75·30; median at 1.5 → -20 + 0.5·30;
    # q3 at 2.25 → 10 + 0.25·30.
    assert outcome.spread([40.0, -20.0, 10.0, -50.0]) == outcome.Spread(4, -5.0, -27.5, 17.5)
    # One-decimal changes give quartiles of three decimals at most, without float noise.
    assert outcome.spread([-66.7, -16.7]) == outcome.Spread(2, -41.7, -54.2, -29.2)
    assert outcome.spread([0.1, 0.2, 0.3, 0.5, 0.6]).q3 == 0.5
    assert outcome.spread([0.1, 0.2]).q1 == 0.125


def test_one_participant_is_its_own_median_and_quartiles_and_none_gives_nothing():
    assert outcome.spread([-60.0]) == outcome.Spread(1, -60.0, -60.0, -60.0)
    assert outcome.spread([]) is None
    assert outcome.spread([None, None]) is None


# --- readiness ---------------------------------------------------------------------------


@pytest.fixture
def followed(db, sites):
    """LIM-101 (Group 2), one of each state:
    BL   VEGF reportable, M-spike only in a sheet still in preview;
    M2   serum tube not drawn (failed draw), plasma drawn;
    M4   VEGF only in a rejected sheet, M-spike measured by no run;
    M6   not registered."""
    enrol("LIM-101")
    baseline = collect("LIM-101", "BL")
    collect("LIM-101", "M2", tube_types=("EDTA",), not_collected=[("SST", "failed_draw", "")])
    month_4 = collect("LIM-101", "M4")
    kept = accepted_sheet([vegf(baseline, 2480.0)], "baseline.xlsx")
    waiting = results_sheet([m_spike(baseline, 12.0)], "m-spike.xlsx")
    refused = results_sheet([vegf(month_4, 900.0)], "month4.xlsx")
    services.reject_run(refused.code, "control out of range", actor=None)
    db.session.commit()
    return {"kept": kept.code, "waiting": waiting.code, "refused": refused.code}


def test_each_state_of_readiness_says_what_it_rests_on(followed):
    found = outcome.participant_outcome("LIM-101", CRITERIA, actor=None, now=LATER)

    baseline = found.at("BL", "VEGF")
    assert (baseline.state, baseline.value, baseline.shown) == ("reportable", 2480.0, "2480")
    assert baseline.run == followed["kept"] and baseline.unit == "pg/mL"
    waiting = found.at("BL", "M_SPIKE")
    assert (waiting.state, waiting.reason) == ("not_accepted", "preview")
    assert waiting.runs == (followed["waiting"],)
    assert followed["waiting"] in waiting.explanation and waiting.value is None

    for analyte in ("VEGF", "M_SPIKE"):
        not_drawn = found.at("M2", analyte)
        assert (not_drawn.state, not_drawn.reason) == ("not_collected", "tube_not_collected")
        assert not_drawn.not_drawn == "failed_draw"
        assert "blood draw failed" in not_drawn.explanation

    refused = found.at("M4", "VEGF")
    assert (refused.state, refused.reason, refused.runs) == (
        "not_accepted",
        "rejected",
        (followed["refused"],),
    )
    assert "rejected" in refused.explanation
    unmeasured = found.at("M4", "M_SPIKE")
    assert (unmeasured.state, unmeasured.reason) == ("not_assayed", "no_result")

    for analyte in ("VEGF", "M_SPIKE"):
        missing = found.at("M6", analyte)
        assert (missing.state, missing.reason) == ("not_collected", "visit_not_registered")
    # Group 2's outcome visits; nothing of EOI or EOM.
    assert [r.visit for r in found.readiness[::2]] == ["BL", "M2", "M4", "M6"]


def test_a_result_accepted_without_a_value_is_not_assayed_and_says_why(followed, db):
    db.session.execute(
        sa.update(Result).values(value=None, detail="no result — replicates disagree")
    )
    db.session.commit()
    baseline = outcome.participant_outcome("LIM-101", CRITERIA, actor=None, now=LATER).at(
        "BL", "VEGF"
    )
    assert (baseline.state, baseline.reason, baseline.run) == (
        "not_assayed",
        "no_value",
        followed["kept"],
    )
    assert "replicates disagree" in baseline.explanation


def test_group_1_needs_baseline_and_month_2_only(db, sites):
    enrol("LIM-201", arm="G1")
    db.session.commit()
    found = outcome.participant_outcome("LIM-201", CRITERIA, actor=None, now=LATER)
    assert sorted({r.visit for r in found.readiness}) == ["BL", "M2"]
    assert {r.analyte for r in found.readiness} == {"VEGF", "M_SPIKE"}


def test_a_participant_who_left_before_a_window_opened_is_not_expected_there(db, sites):
    # M4's window opens on day 112 - 14 = 98: 2026-04-13 for an inclusion on 2026-01-05.
    opens = INCLUDED + timedelta(days=98)
    for code, left_on in (("LIM-301", opens - timedelta(days=1)), ("LIM-302", opens)):
        participant = enrol(code)
        participant.left_on, participant.left_reason = left_on, "progression"
    db.session.commit()

    the_day_before = outcome.participant_outcome("LIM-301", CRITERIA, actor=None, now=LATER)
    gone = the_day_before.at("M4", "VEGF")
    assert (gone.state, gone.reason) == ("not_expected", "left_study")
    assert gone.on == opens - timedelta(days=1)
    assert the_day_before.at("M6", "M_SPIKE").state == "not_expected"
    # Left on the day the window opened: the visit could have been done that day.
    on_the_day = outcome.participant_outcome("LIM-302", CRITERIA, actor=None, now=LATER)
    assert on_the_day.at("M4", "VEGF").state == "not_collected"
    assert on_the_day.at("M6", "VEGF").state == "not_expected"
    # Visits before leaving are still expected.
    assert the_day_before.at("M2", "VEGF").reason == "visit_not_registered"


def test_a_consent_withdrawn_before_a_window_opened_is_not_expected_there(db, sites):
    opens = INCLUDED + timedelta(days=98)  # M4's window
    participant = enrol("LIM-303")
    participant.consent_status, participant.consent_withdrawn_on = "withdrawn", opens
    db.session.commit()

    found = outcome.participant_outcome("LIM-303", CRITERIA, actor=None, now=LATER)
    # Withdrawn on the day M4's window opened: M4 could still be drawn, M6 cannot.
    assert found.at("M4", "VEGF").state == "not_collected"
    gone = found.at("M6", "VEGF")
    assert (gone.state, gone.reason, gone.on) == ("not_expected", "consent_withdrawn", opens)
    assert "consent withdrawn on" in gone.explanation


def test_a_visit_whose_window_has_not_opened_in_the_centres_time_zone_is_still_to_come(db, sites):
    enrol("LIM-401")  # Limoges: Europe/Paris, UTC+1 in February
    db.session.commit()
    opens = INCLUDED + timedelta(days=56 - 7)  # M2's window: 2026-02-23
    assert opens == date(2026, 2, 23)

    def month_2(now):
        return outcome.participant_outcome("LIM-401", CRITERIA, actor=None, now=now).at(
            "M2", "VEGF"
        )

    # 22:59 UTC on the 22nd is 23:59 in Limoges: still the day before.
    before = month_2(datetime(2026, 2, 22, 22, 59, tzinfo=UTC))
    assert (before.state, before.reason, before.on) == ("not_collected", "window_not_open", opens)
    assert "2026" in before.explanation
    # 23:00 UTC is midnight in Limoges: the window is open, the visit is not registered.
    assert month_2(datetime(2026, 2, 22, 23, 0, tzinfo=UTC)).reason == "visit_not_registered"


def test_a_serum_tube_registered_but_not_measured_is_not_assayed(db, sites):
    enrol("LIM-501")
    collect("LIM-501", "BL")
    plasma_only = collect("LIM-501", "M2", tube_types=("EDTA",))
    db.session.commit()
    found = outcome.participant_outcome("LIM-501", CRITERIA, actor=None, now=LATER)
    assert found.at("BL", "VEGF").reason == "no_result"
    assert plasma_only is None
    assert (found.at("M2", "VEGF").state, found.at("M2", "VEGF").reason) == (
        "not_collected",
        "no_serum_specimen",
    )


def test_plasma_vegf_is_not_the_serum_outcome(db, sites):
    enrol("LIM-601")
    collect("LIM-601", "BL")
    accepted_sheet([vegf(aliquot_of("LIM-601", "BL", "PL1"), 95.0)], "plasma.xlsx")
    db.session.commit()
    found = outcome.participant_outcome("LIM-601", CRITERIA, actor=None, now=LATER)
    assert found.at("BL", "VEGF").reason == "no_result"


def aliquot_of(code: str, visit: str, sample_type: str) -> str:
    query = (
        sa.select(Aliquot.barcode)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(Participant, Participant.id == Visit.participant_id)
        .where(
            Participant.code == code,
            Visit.visit_code == visit,
            Aliquot.sample_type == sample_type,
        )
        .order_by(Aliquot.barcode)
    )
    return _db.session.execute(query).scalars().first()


# --- the figures per arm -----------------------------------------------------------------


@pytest.fixture
def arms(db, sites):
    """Group 1: -60 %, -30 %, 0 % and one with baseline only; Group 2: -50 %, -20 %,
    +10 %, +40 % (baselines of 2000 pg/mL, above the 1000 pg/mL ULN). The M-spike of one
    Group 1 participant falls from 10 to 4 g/L (-60 %)."""
    serum = trial_of(
        {
            "LIM-001": ("G1", 2000.0, 800.0),
            "LIM-002": ("G1", 2000.0, 1400.0),
            "LIM-003": ("G1", 2000.0, 2000.0),
            "LIM-004": ("G1", 2000.0, None),
            "LIM-011": ("G2", 2000.0, 1000.0),
            "LIM-012": ("G2", 2000.0, 1600.0),
            "LIM-013": ("G2", 2000.0, 2200.0),
            "LIM-014": ("G2", 2000.0, 2800.0),
        }
    )
    accepted_sheet(
        [m_spike(serum[("LIM-001", "BL")], 10.0), m_spike(serum[("LIM-001", "M2")], 4.0)],
        "m-spike.xlsx",
    )
    db.session.commit()
    return serum


def test_paired_counts_median_and_quartiles_per_arm_match_a_hand_computation(arms):
    found = by_arm(summary())
    one, two = found["G1"], found["G2"]

    assert (one.name, one.included, one.paired_vegf, one.paired_m_spike) == ("Group 1", 4, 3, 1)
    assert one.vegf_change == outcome.Spread(3, -30.0, -45.0, -15.0)
    assert one.m_spike_change == outcome.Spread(1, -60.0, -60.0, -60.0)
    # 800 pg/mL is below the ULN after a baseline above it: complete (normalised).
    assert one.vegf_responses == (("complete", 1), ("stable", 2))
    assert one.haematological_responses == (("partial", 1),)

    assert (two.included, two.paired_vegf, two.paired_m_spike) == (4, 4, 0)
    assert two.vegf_change == outcome.Spread(4, -5.0, -27.5, 17.5)
    assert two.m_spike_change is None
    assert two.vegf_responses == (("partial", 1), ("stable", 3))
    assert two.haematological_responses == ()


def test_a_participant_with_baseline_only_is_included_but_not_paired(arms):
    found = summary()
    alone = next(p for p in found.participants if p.code == "LIM-004")
    assert alone.at("BL", "VEGF").state == "reportable"
    assert alone.at("M2", "VEGF").reason == "no_result"
    assert not alone.paired("VEGF") and alone.vegf is None and alone.vegf_change is None
    assert [p.code for p in found.participants] == sorted(p.code for p in found.participants)


def test_a_superseded_value_is_not_used_only_the_reportable_one(arms, db):
    # Month 2 of LIM-011 measured again at the laboratory's request: 1800, not 1000.
    again = accepted_sheet(
        [vegf(arms[("LIM-011", "M2")], 1800.0)], "again.xlsx", reassay_reason="control failed"
    )
    db.session.commit()
    found = summary()
    participant = next(p for p in found.participants if p.code == "LIM-011")
    month_2 = participant.at("M2", "VEGF")
    assert (month_2.value, month_2.run) == (1800.0, again.code)
    assert participant.vegf_change == -10.0
    # -20, -10, +10, +40: median 0, q1 -20 + 0.75·10, q3 10 + 0.25·30.
    assert by_arm(found)["G2"].vegf_change == outcome.Spread(4, 0.0, -12.5, 17.5)
    assert by_arm(found)["G2"].paired_vegf == 4


def test_a_user_bound_to_a_centre_sees_that_centre_only(arms, db, make_user):
    enrol("PAR-001", arm="G1", site="PAR")
    paris = collect("PAR-001", "BL"), collect("PAR-001", "M2")
    accepted_sheet([vegf(paris[0], 2000.0), vegf(paris[1], 200.0)], "paris.xlsx")
    limoges = make_user("technician", site="LIM")
    in_paris = make_user("technician", site="PAR")
    db.session.commit()

    everyone = by_arm(summary())
    assert (everyone["G1"].included, everyone["G1"].paired_vegf) == (5, 4)
    assert everyone["G1"].vegf_change.n == 4

    seen_from_limoges = summary(actor=limoges)
    assert "PAR-001" not in {p.code for p in seen_from_limoges.participants}
    assert by_arm(seen_from_limoges)["G1"].vegf_change == outcome.Spread(3, -30.0, -45.0, -15.0)
    seen_from_paris = summary(actor=in_paris)
    assert [p.code for p in seen_from_paris.participants] == ["PAR-001"]
    assert by_arm(seen_from_paris)["G1"].vegf_change == outcome.Spread(1, -90.0, -90.0, -90.0)
    assert by_arm(seen_from_paris)["G2"].included == 0
    with pytest.raises(NotFound):
        outcome.participant_outcome("LIM-001", CRITERIA, actor=in_paris, now=LATER)


def test_a_run_in_preview_for_another_centres_tube_is_not_counted_here(arms, db, make_user):
    enrol("PAR-002", arm="G1", site="PAR")
    serum = collect("PAR-002", "BL")
    results_sheet([vegf(serum, 1500.0)], "pending.xlsx")
    in_paris = make_user("technician", site="PAR")
    db.session.commit()
    (participant,) = summary(actor=in_paris).participants
    assert participant.at("BL", "VEGF").reason == "preview"
    assert participant.at("M2", "VEGF").reason == "visit_not_registered"
