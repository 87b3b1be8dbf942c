"""Deviations from the SOP limits: found at registration, stored, put into words, shown
as warnings on the registration, visit and aliquot pages and in the API's answer."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from biobank.samples import deviations
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.samples.services import SpinEntry
from biobank.study import services as study
from biobank.study.models import Protocol
from biobank.study.protocol import SopLimits, SopRange, default_protocol_path, parse_protocol
from tests import factories
from tests.answers import ok

SOP = parse_protocol(default_protocol_path().read_bytes()).sop
SERUM, PLASMA = SOP["SST"], SOP["EDTA"]
DRAWN = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def record(sample_type="SER", *, spun_after=60, frozen_after=90, **changes):
    """A tube handled within every limit of the shipped SOP, but for ``changes``: drawn at
    8:30, spun ``spun_after`` minutes later (2,000 g, 10 min, 20 °C), frozen
    ``frozen_after`` minutes after the draw."""
    values = {
        "sample_type": sample_type,
        "collected_at": DRAWN,
        "precentrifugation_temperature": "RT",
        "spun_at": DRAWN + timedelta(minutes=spun_after),
        "spin_force_g": 2000,
        "spin_minutes": 10,
        "spin_temperature_c": 20.0,
        "second_spin_force_g": None,
        "second_spin_minutes": None,
        "second_spin_temperature_c": None,
        "frozen_at": DRAWN + timedelta(minutes=frozen_after),
    }
    return SimpleNamespace(**(values | changes))


def codes_of(limits, tube) -> list[str]:
    return [found["code"] for found in deviations.found(limits, tube)]


def words(limits, tube) -> list[str]:
    return [deviations.described(found).message for found in deviations.found(limits, tube)]


# --- every limit: exactly at it is within, one minute or one unit over is not ---------------


def test_a_tube_handled_within_every_limit_has_no_deviation():
    assert deviations.found(SERUM, record()) == []
    assert deviations.found(PLASMA, record("PL1")) == []


def test_without_limits_nothing_deviates():
    late = record(spun_after=600, frozen_after=700, spin_force_g=9000)
    assert deviations.found(None, late) == []
    assert deviations.found(SopLimits("SST"), late) == []


@pytest.mark.parametrize("minutes", [30, 120])
def test_serum_clotting_exactly_at_a_limit_is_within_it(minutes):
    assert deviations.found(SERUM, record(spun_after=minutes, frozen_after=minutes + 30)) == []


def test_serum_clotting_one_minute_short_or_over_deviates(app):
    short = deviations.found(SERUM, record(spun_after=29))
    assert short == [
        {
            "code": "preanalytical.draw_to_centrifugation",
            "minutes": 29,
            "min": 30,
            "max": 120,
            "clotting": True,
        }
    ]
    assert deviations.described(short[0]).message == "clotting 29 min, SOP 30 min–2 h"
    assert words(SERUM, record(spun_after=121, frozen_after=150)) == [
        "clotting 2 h 1 min, SOP 30 min–2 h"
    ]
    assert words(SERUM, record(spun_after=310, frozen_after=340))[0] == (
        "clotting 5 h 10 min, SOP 30 min–2 h"
    )


def test_plasma_is_centrifuged_within_2_hours_with_no_minimum(app):
    assert deviations.found(PLASMA, record("PL1", spun_after=0, frozen_after=20)) == []
    assert deviations.found(PLASMA, record("PL1", spun_after=120, frozen_after=150)) == []
    assert words(PLASMA, record("PL1", spun_after=121, frozen_after=150)) == [
        "centrifuged 2 h 1 min after the draw, SOP within 2 h"
    ]
    assert words(PLASMA, record("PL1", spun_after=150, frozen_after=180)) == [
        "centrifuged 2 h 30 min after the draw, SOP within 2 h"
    ]


def test_times_are_compared_to_the_minute_whatever_the_seconds_and_the_zone():
    drawn = datetime(2026, 3, 2, 9, 30, 59, tzinfo=ZoneInfo("Europe/Paris"))  # 8:30:59 UTC

    def spun(at: datetime):
        frozen = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
        return record(collected_at=drawn, spun_at=at, frozen_at=frozen)

    # 8:30 to 10:30 by the clock is 2 h, although 1 h 59 min 1 s went by.
    assert deviations.found(SERUM, spun(datetime(2026, 3, 2, 10, 30, 0, tzinfo=UTC))) == []
    assert codes_of(SERUM, spun(datetime(2026, 3, 2, 10, 31, 0, tzinfo=UTC))) == [
        "preanalytical.draw_to_centrifugation"
    ]


def test_serum_kept_cold_before_centrifugation_deviates_but_plasma_may_be(app):
    cold = {"precentrifugation_temperature": "2-10"}
    assert words(SERUM, record(**cold)) == [
        "kept at 2–10 °C before centrifugation, SOP room temperature"
    ]
    assert deviations.found(PLASMA, record("PL1", **cold)) == []


@pytest.mark.parametrize("force", [1000, 2500])
def test_force_exactly_at_a_limit_is_within_it(force):
    assert deviations.found(SERUM, record(spin_force_g=force)) == []


def test_force_one_g_out_deviates(app):
    assert codes_of(SERUM, record(spin_force_g=999)) == ["preanalytical.centrifugation_force"]
    assert words(SERUM, record(spin_force_g=2501)) == ["centrifuged at 2,501 g, SOP 1,000–2,500 g"]
    assert words(PLASMA, record("PL1", spin_force_g=3000)) == [
        "centrifuged at 3,000 g, SOP 1,000–2,500 g"
    ]


@pytest.mark.parametrize("minutes", [10, 15])
def test_spin_duration_exactly_at_a_limit_is_within_it(minutes):
    assert deviations.found(SERUM, record(spin_minutes=minutes)) == []


def test_spin_duration_one_minute_out_deviates(app):
    assert words(SERUM, record(spin_minutes=9)) == ["centrifuged for 9 min, SOP 10–15 min"]
    assert words(SERUM, record(spin_minutes=16)) == ["centrifuged for 16 min, SOP 10–15 min"]


@pytest.mark.parametrize("celsius", [15.0, 25.0])
def test_centrifuge_temperature_exactly_at_a_limit_is_within_it(celsius):
    assert deviations.found(SERUM, record(spin_temperature_c=celsius)) == []


def test_serum_spun_at_4_degrees_deviates_but_plasma_spun_at_4_degrees_is_fine(app):
    assert words(SERUM, record(spin_temperature_c=4.0)) == ["centrifuged at 4 °C, SOP 15–25 °C"]
    assert deviations.found(PLASMA, record("PL1", spin_temperature_c=4.0)) == []
    for edge in (2.0, 8.0, 15.0, 25.0):
        assert deviations.found(PLASMA, record("PL1", spin_temperature_c=edge)) == []


def test_a_centrifuge_temperature_one_degree_out_deviates(app):
    assert codes_of(SERUM, record(spin_temperature_c=26.0)) == [
        "preanalytical.centrifugation_temperature"
    ]
    assert codes_of(SERUM, record(spin_temperature_c=14.0)) == [
        "preanalytical.centrifugation_temperature"
    ]
    # Between the plasma's two ranges: neither cold nor at room temperature.
    assert words(PLASMA, record("PL1", spin_temperature_c=9.0)) == [
        "centrifuged at 9 °C, SOP 15–25 °C or 2–8 °C"
    ]


def test_the_second_spin_is_checked_too(app):
    second = {"second_spin_force_g": 3000, "second_spin_minutes": 10}
    tube = record("PL2", **second, second_spin_temperature_c=30.5)
    assert words(PLASMA, tube) == [
        "second centrifugation at 3,000 g, SOP 1,000–2,500 g",
        "second centrifugation at 30.5 °C, SOP 15–25 °C or 2–8 °C",
    ]
    fine = record(
        "PL2", second_spin_force_g=2000, second_spin_minutes=15, second_spin_temperature_c=4
    )
    assert deviations.found(PLASMA, fine) == []
    too_long = record(
        "PL2", second_spin_force_g=2000, second_spin_minutes=16, second_spin_temperature_c=4
    )
    assert words(PLASMA, too_long) == ["second centrifugation for 16 min, SOP 10–15 min"]


def test_frozen_exactly_4_hours_after_the_draw_is_within_the_sop_and_a_minute_later_is_not(app):
    assert deviations.found(SERUM, record(frozen_after=240)) == []
    assert words(SERUM, record(frozen_after=241)) == [
        "frozen 4 h 1 min after the draw, SOP within 4 h"
    ]


def test_deviations_are_listed_in_a_stable_order(app):
    tube = record(spun_after=200, frozen_after=300, spin_force_g=500, spin_minutes=30)
    assert codes_of(SERUM, tube) == [
        "preanalytical.draw_to_centrifugation",
        "preanalytical.centrifugation_force",
        "preanalytical.centrifugation_duration",
        "preanalytical.draw_to_freezing",
    ]


def test_a_limit_with_one_bound_is_worded_by_it(app):
    limits = SopLimits(
        "SST",
        centrifugation_g=SopRange(min=1500),
        centrifugation_minutes=SopRange(max=12),
        draw_to_freezing_minutes=SopRange(min=60),
    )
    assert words(limits, record(spin_force_g=1200, spin_minutes=13, frozen_after=45)) == [
        "centrifuged at 1,200 g, SOP at least 1,500 g",
        "centrifuged for 13 min, SOP at most 12 min",
        "frozen 45 min after the draw, SOP at least 1 h",
    ]


# --- freeze–thaw cycles and the visit window -------------------------------------------------


def test_freeze_thaw_cycles_up_to_the_limit_are_within_it(app):
    assert deviations.freeze_thaw(2, SERUM) is None
    assert deviations.freeze_thaw(9, None) is None
    over = deviations.freeze_thaw(3, SERUM)
    assert over == {"code": "freeze_thaw.exceeded", "cycles": 3, "max": 2}
    assert deviations.described(over).message == "3 freeze–thaw cycles, SOP at most 2"
    once = deviations.freeze_thaw(1, SopLimits("SST", freeze_thaw_cycles_max=0))
    assert deviations.described(once).message == "1 freeze–thaw cycle, SOP at most 0"


def test_a_visit_outside_its_window_is_named_with_its_day_and_window(app):
    assert deviations.visit_outside_window(64, 49, 63) == (
        "visit.out_of_window",
        "collected on study day 64, window study days 49 to 63",
    )


# --- stored, then read back ----------------------------------------------------------------


def test_stored_deviations_are_read_back_in_words(app):
    stored = json.dumps(deviations.found(SERUM, record(spin_force_g=3000)))
    assert deviations.listed(stored) == [
        ("preanalytical.centrifugation_force", "centrifuged at 3,000 g, SOP 1,000–2,500 g")
    ]
    assert deviations.listed("[]") == []


def test_a_code_this_version_does_not_know_is_shown_as_it_is(app):
    assert deviations.listed('[{"code":"preanalytical.haemolysis"}]') == [
        ("preanalytical.haemolysis", "preanalytical.haemolysis")
    ]


def test_codes_are_distinct_and_in_a_stable_order():
    found = [
        {"code": "visit.out_of_window"},
        {"code": "preanalytical.centrifugation_force", "spin": "second"},
        {"code": "preanalytical.centrifugation_force", "spin": "first"},
        {"code": "preanalytical.draw_to_centrifugation"},
    ]
    assert deviations.codes(found) == [
        "preanalytical.draw_to_centrifugation",
        "preanalytical.centrifugation_force",
        "visit.out_of_window",
    ]


def test_numbers_are_written_in_the_readers_language(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        (message,) = words(SERUM, record(spin_force_g=3000))
    assert "3\u202f000 g" in message and "1\u202f000–2\u202f500 g" in message


# --- the limits of a loaded protocol ----------------------------------------------------------


def test_the_limits_of_a_loaded_protocol_are_those_of_its_file(protocol):
    assert study.sop_limits(protocol, "SST") == SERUM
    assert study.sop_limits(protocol, "EDTA") == PLASMA
    assert study.sop_limits(protocol, "CSF") is None


def test_a_protocol_loaded_without_sop_tables_sets_no_limits(protocol):
    text = default_protocol_path().read_text()
    older = text[: text.index("# SOP limits.")] + text[text.index('[[arms]]\ncode = "G1"') :]
    spec = parse_protocol(older)
    assert dict(spec.sop) == {}
    row = Protocol(content_sha256=spec.content_hash, source=older)
    assert study.sop_limits(row, "SST") is None


# --- at registration ------------------------------------------------------------------------


@pytest.fixture
def enrolled(sites, db):
    factories.participant("LIM", code="LIM-001")
    db.session.commit()
    return "LIM-001"


def specimen_of(db, tube_type: str) -> Specimen:
    return db.session.execute(
        sa.select(Specimen).where(Specimen.tube_type == tube_type).order_by(Specimen.id.desc())
    ).scalar()


def test_a_tube_handled_outside_the_sop_is_registered_with_its_deviations(enrolled, db):
    late_serum = factories.tube("SST", collected_at=DRAWN, delay_hours=3)
    cold_plasma = factories.tube(
        "EDTA", collected_at=DRAWN, spin=SpinEntry(temperature_c=4.0, force_g=2000, minutes=10)
    )
    registration = samples.register_collection(
        enrolled, "BL", [late_serum, cold_plasma], actor=None
    )
    assert len(registration.aliquots) == 10  # a warning, never a refusal
    serum = specimen_of(db, "SST")
    assert serum.deviates is True
    assert serum.deviations == (
        '[{"clotting":true,"code":"preanalytical.draw_to_centrifugation","max":120,'
        '"min":30,"minutes":180}]'
    )
    plasma = specimen_of(db, "EDTA")
    assert (plasma.deviates, plasma.deviations) == (False, "[]")


def test_a_tube_within_the_sop_is_stored_without_deviation(enrolled, db):
    factories.visit(enrolled, "BL")
    for tube_type in ("SST", "EDTA"):
        assert (specimen_of(db, tube_type).deviates, specimen_of(db, tube_type).deviations) == (
            False,
            "[]",
        )


def test_the_visit_deviation_starts_the_day_after_the_window_closes_in_the_centres_zone(
    enrolled,
):
    # Month 2 closes on study day 63, 9 March 2026; Paris is UTC+1 in winter.
    last_evening = datetime(2026, 3, 9, 22, 30, tzinfo=UTC)  # 23:30 on the 9th in Paris
    visit = factories.visit(enrolled, "M2", on=last_evening).visit
    assert (visit.study_day, samples.visit_deviation(visit)) == (63, None)
    factories.participant("LIM", code="LIM-002")
    past_midnight = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 00:30 on the 10th in Paris
    late = factories.visit("LIM-002", "M2", on=past_midnight).visit
    assert samples.visit_deviation(late) == (
        "visit.out_of_window",
        "collected on study day 64, window study days 49 to 63",
    )


# --- pages and API ---------------------------------------------------------------------------

M2_SERUM_SPUN_LATE = {
    "visit": "M2",
    "tubes-0-tube_type": "SST",
    "tubes-0-collected": "y",
    "tubes-0-collected_at": "2026-03-02T08:30",
    "tubes-0-precentrifugation_temperature": "RT",
    "tubes-0-spun_at": "2026-03-02T13:40",  # 5 h 10 min of clotting
    "tubes-0-spin_force_g": "3000",
    "tubes-0-spin_minutes": "10",
    "tubes-0-spin_temperature_c": "20",
    "tubes-0-spin_braking": "y",
    "tubes-0-postcentrifugation_temperature": "RT",
    "tubes-0-frozen_at": "2026-03-02T14:00",
    "tubes-0-storage_temperature_c": "-80",
    "tubes-1-tube_type": "EDTA",
    "tubes-1-collected": "y",
    "tubes-1-collected_at": "2026-03-02T08:30",
    "tubes-1-precentrifugation_temperature": "2-10",
    "tubes-1-spun_at": "2026-03-02T09:30",
    "tubes-1-spin_force_g": "2000",
    "tubes-1-spin_minutes": "10",
    "tubes-1-spin_temperature_c": "4",
    "tubes-1-spin_braking": "y",
    "tubes-1-postcentrifugation_temperature": "RT",
    "tubes-1-frozen_at": "2026-03-02T10:00",
    "tubes-1-storage_temperature_c": "-80",
}


@pytest.fixture
def technician(enrolled, login_as):
    factories.visit(enrolled, "BL")
    return login_as("technician")


def page_text(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


SERUM_WARNING = (
    "Tube SST was handled outside the SOP (clotting 5 h 10 min, SOP 30 min–2 h; "
    "centrifuged at 3,000 g, SOP 1,000–2,500 g; frozen 5 h 30 min after the draw, SOP within "
    "4 h); it is registered and flagged."
)


def test_the_registration_page_warns_of_each_deviation_and_registers_the_tubes(technician, db):
    response = technician.post("/participants/LIM-001/register", data=M2_SERUM_SPUN_LATE)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert response.location == "/participants/LIM-001/visits/M2"
    text = page_text(technician, response.location)
    assert f'<div class="flash flash-warning" role="status">{SERUM_WARNING}</div>' in text
    assert "Tube EDTA was handled" not in text  # plasma kept cold and spun at 4 °C is fine
    assert "registered: 10 aliquots" in text
    assert db.session.execute(sa.select(sa.func.count(Aliquot.id))).scalar() == 20


def test_the_visit_page_shows_each_specimens_deviations(technician):
    technician.post("/participants/LIM-001/register", data=M2_SERUM_SPUN_LATE)
    text = page_text(technician, "/participants/LIM-001/visits/M2")
    parts = text.split('<section class="specimen">\n  <h2>')[1:]
    sections = {part.split(" ", 1)[0]: part for part in parts}  # by tube type
    serum = sections["SST"]
    assert 'class="deviations"' in serum
    assert '<li data-deviation="preanalytical.draw_to_centrifugation">clotting 5 h 10 min' in serum
    assert "centrifuged at 3,000 g, SOP 1,000–2,500 g" in serum
    plasma = sections["EDTA"]
    assert 'class="deviations"' not in plasma
    assert 'class="deviations"' not in page_text(technician, "/participants/LIM-001/visits/BL")


def test_a_visit_outside_its_window_is_warned_of_and_shown_in_the_same_words(technician):
    late = {key: value.replace("03-02", "03-10") for key, value in M2_SERUM_SPUN_LATE.items()}
    response = technician.post("/participants/LIM-001/register", data=late)
    text = page_text(technician, response.location)
    day = "collected on study day 64, window study days 49 to 63"
    warning = f"This visit was collected outside its protocol window ({day}); it is flagged."
    assert f'<div class="flash flash-warning" role="status">{warning}</div>' in text
    assert f'<li data-deviation="visit.out_of_window">{day}</li>' in text
    again = page_text(technician, response.location)  # the flash is gone, the deviation stays
    assert "This visit was collected" not in again and day in again


def thawed(barcode: str, times: int) -> None:
    from biobank.storage import services as storage

    factories.freezer({"BX-0001": "Box 1"})
    storage.store_many([(barcode, "BX-0001", None)], actor=None)
    for _ in range(times):
        storage.check_out(barcode, "aliquoting", actor=None)
        storage.return_aliquot(barcode, 400, thawed=True, actor=None)


def test_the_aliquot_page_shows_its_specimens_deviations_and_its_thaws_over_the_limit(
    technician, db
):
    technician.post("/participants/LIM-001/register", data=M2_SERUM_SPUN_LATE)
    serum = specimen_of(db, "SST").aliquots[0].barcode
    thawed(serum, 3)
    db.session.commit()
    text = page_text(technician, f"/aliquots/{serum}")
    assert "Deviations from the protocol" in text
    assert "clotting 5 h 10 min, SOP 30 min–2 h" in text
    thaws = "3 freeze–thaw cycles, SOP at most 2"
    assert f'<li data-deviation="freeze_thaw.exceeded">{thaws}</li>' in text


def test_an_aliquot_thawed_up_to_the_limit_and_handled_within_the_sop_shows_no_deviation(
    technician, db
):
    plasma = specimen_of(db, "EDTA").aliquots[0].barcode
    thawed(plasma, 2)
    db.session.commit()
    text = page_text(technician, f"/aliquots/{plasma}")
    assert 'class="deviations"' not in text


def test_the_registration_api_answers_each_specimens_deviations(enrolled, api_as):
    client = api_as("technician")
    spun_late = {
        "collected_at": "2026-01-05T08:30:00+00:00",
        "spun_at": "2026-01-05T11:30:00+00:00",
        "spin": {"temperature_c": 20, "force_g": 2000, "minutes": 10},
        "frozen_at": "2026-01-05T12:00:00+00:00",
    }
    within = {**spun_late, "spun_at": "2026-01-05T09:30:00+00:00"}
    body = ok(
        client.post(
            "/api/v1/specimens",
            json={
                "participant": enrolled,
                "visit": "BL",
                "tubes": [{"tube_type": "SST", **spun_late}, {"tube_type": "EDTA", **within}],
            },
        ),
        201,
    )
    serum, plasma = sorted(body["specimens"], key=lambda s: s["tube_type"], reverse=True)
    assert serum["tube_type"] == "SST" and len(serum["aliquots"]) == 5
    assert serum["deviations"] == [
        {
            "code": "preanalytical.draw_to_centrifugation",
            "message": "clotting 3 h, SOP 30 min–2 h",
        }
    ]
    assert plasma["deviations"] == []
    assert body["deviations"] == [] and body["out_of_window"] is False
