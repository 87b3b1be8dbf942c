"""Sites, the protocol as data, participants and what each centre may see."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from biobank.custody.models import CustodyEvent
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.sites import services as sites
from biobank.study import services as study
from biobank.study.models import Participant, Protocol, Visit
from biobank.study.protocol import default_protocol_path, parse_protocol
from tests import factories


def test_loading_the_same_protocol_twice_changes_nothing(db, protocol):
    source = default_protocol_path().read_bytes()
    again = study.load_protocol(parse_protocol(source), source.decode())
    assert not again.created and again.protocol.id == protocol.id
    assert db.session.execute(sa.select(sa.func.count()).select_from(Protocol)).scalar() == 1


def test_the_shipped_protocol_has_both_arms_and_their_schedules(protocol):
    schedule = {d.code: [a.code for a in d.arms] for d in protocol.visit_definitions}
    assert schedule == {
        "BL": ["G1", "G2"],
        "M2": ["G1", "G2"],
        "M4": ["G2"],
        "M6": ["G2"],
        "EOI": ["G2"],
        "EOM": ["G2"],
    }
    for definition in protocol.visit_definitions:
        assert {(p.tube_type, p.aliquots, p.volume_ul) for p in definition.sample_plans} == {
            ("SST", 5, 500),
            ("EDTA", 5, 500),
        }


def test_a_new_protocol_version_applies_to_later_visits_only(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")
    first = factories.visit("LIM-001", "BL").visit
    text = default_protocol_path().read_text().replace('version = "1.0"', 'version = "1.1"')
    study.load_protocol(parse_protocol(text), text)
    later = factories.visit("LIM-001", "M2").visit
    assert first.definition.protocol.version == "1.0"
    assert later.definition.protocol.version == "1.1"


@pytest.mark.parametrize("code", ["Jean Dupont", "LIM 001", "1987-03-02", "LIM-", "DUPONT-J"])
def test_a_study_code_that_is_not_a_pseudonym_is_refused(db, sites, code):
    with pytest.raises(Invalid) as refused:
        factories.participant("LIM", code=code)
    assert "code" in refused.value.fields


def test_codes_are_stored_in_capitals(db, sites):
    assert factories.participant("LIM", code=" lim-012 ").code == "LIM-012"


def test_a_participant_code_is_unique(db, sites):
    factories.participant("LIM", code="LIM-001")
    with pytest.raises(Conflict):
        factories.participant("PAR", code="LIM-001")


def test_an_unknown_arm_is_refused_with_the_known_ones(db, sites):
    with pytest.raises(Invalid, match="G1, G2"):
        factories.participant("LIM", arm="G3")


def test_consent_after_inclusion_is_refused(db, sites):
    with pytest.raises(Invalid) as refused:
        study.register_participant(
            "LIM-050", "LIM", "G1", "de_novo", date(2026, 1, 1), date(2026, 1, 2), actor=None
        )
    assert "consent_given_on" in refused.value.fields


def test_a_centre_user_registers_participants_of_their_centre_only(db, make_user):
    paris = make_user("technician", site="PAR")
    with pytest.raises(Forbidden):
        factories.participant("LIM", code="LIM-001", actor=paris)
    assert factories.participant("PAR", code="PAR-001", actor=paris).site.code == "PAR"


def test_a_centre_user_lists_and_finds_only_their_centres_participants(db, make_user):
    factories.participant("LIM", code="LIM-001")
    factories.participant("PAR", code="PAR-001")
    paris = make_user("technician", site="PAR")
    central = make_user("manager")
    assert [p.code for p in study.list_participants(actor=paris).items] == ["PAR-001"]
    assert study.list_participants(actor=central).total == 2
    with pytest.raises(NotFound):
        study.get_participant("LIM-001", actor=paris)


def test_consent_withdrawal_is_dated_and_recorded_once(db, sites):
    participant = factories.participant("LIM", code="LIM-001")
    with pytest.raises(Invalid):
        study.withdraw_consent("LIM-001", date(2020, 1, 1), actor=None)
    study.withdraw_consent("LIM-001", date(2026, 3, 1), actor=None)
    assert participant.consent_status == "withdrawn"
    assert participant.consent_withdrawn_on == date(2026, 3, 1)
    with pytest.raises(Conflict):
        study.withdraw_consent("LIM-001", date(2026, 3, 2), actor=None)


def test_a_withdrawal_without_date_is_refused_by_the_database(db, sites):
    participant = factories.participant("LIM", code="LIM-001")
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.update(Participant)
            .where(Participant.id == participant.id)
            .values(consent_status="withdrawn")
        )
    db.session.rollback()


@pytest.mark.parametrize(
    ("code", "timezone", "field"),
    [
        ("lim", "Europe/Paris", None),
        ("L", "Europe/Paris", "code"),
        ("NEW", "Mars/Olympus", "timezone"),
    ],
)
def test_sites_are_validated(db, protocol, code, timezone, field):
    if field is None:
        assert sites.create_site(code, "Somewhere", timezone=timezone, actor=None).code == "LIM"
        return
    with pytest.raises(Invalid) as refused:
        sites.create_site(code, "Somewhere", timezone=timezone, actor=None)
    assert field in refused.value.fields


def test_protocol_load_command_names_the_bad_key_and_loads_nothing(app, db, tmp_path):
    bad = tmp_path / "protocol.toml"
    bad.write_text(
        default_protocol_path().read_text().replace("volume_ul = 500", "volume_ul = -5", 1)
    )
    result = app.test_cli_runner().invoke(args=["protocol", "load", str(bad)])
    assert result.exit_code == 1
    assert "volume_ul" in result.output and "visits[0]" in result.output
    assert db.session.execute(sa.select(Protocol)).first() is None


def test_protocol_load_command_loads_the_shipped_protocol_once(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["protocol", "load"])
    assert first.exit_code == 0 and "loaded" in first.output
    second = runner.invoke(args=["protocol", "load"])
    assert "already loaded" in second.output


def test_demo_setup_creates_accounts_and_data_once(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "setup"])
    assert first.exit_code == 0, first.output
    assert "technician" in first.output and "password:" in first.output
    assert study.list_participants(actor=None).total == 6
    second = runner.invoke(args=["demo", "setup"])
    assert "already set up" in second.output


# --- visit windows -------------------------------------------------------------------------

# Included long enough ago that every visit of the schedule, up to the end of maintenance,
# is in the past.
LONG_AGO = date(2024, 1, 8)


def count_rows(db, model) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def drawn_on_day(day: int, included_on: date = LONG_AGO):
    """A serum tube drawn on study ``day`` (08:30 UTC, the same date in Limoges)."""
    drawn = included_on + timedelta(days=day)
    at = datetime(drawn.year, drawn.month, drawn.day, 8, 30, tzinfo=UTC)
    return factories.tube("SST", collected_at=at)


def register_on_day(visit_code: str, day: int, included_on: date = LONG_AGO):
    participant = factories.participant("LIM", "G2", included_on=included_on)
    return samples.register_collection(
        participant.code, visit_code, [drawn_on_day(day, included_on)], actor=None
    )


WINDOWS = {"BL": (-28, 0), "M2": (49, 63), "M4": (98, 126), "M6": (154, 182)} | {
    "EOI": (238, 266),
    "EOM": (587, 647),
}


def test_the_windows_tested_are_the_protocols(protocol):
    assert {
        d.code: (d.nominal_day - d.window_before_days, d.nominal_day + d.window_after_days)
        for d in protocol.visit_definitions
    } == WINDOWS


@pytest.mark.parametrize("visit_code", list(WINDOWS))
def test_a_visit_on_the_first_day_of_its_window_is_normal(db, sites, visit_code):
    first, _last = WINDOWS[visit_code]
    visit = register_on_day(visit_code, first).visit
    assert visit.study_day == first and not visit.out_of_window


@pytest.mark.parametrize("visit_code", list(WINDOWS))
def test_a_visit_on_the_last_day_of_its_window_is_normal(db, sites, visit_code):
    _first, last = WINDOWS[visit_code]
    visit = register_on_day(visit_code, last).visit
    assert visit.study_day == last and not visit.out_of_window


@pytest.mark.parametrize("visit_code", list(WINDOWS))
def test_a_visit_the_day_after_its_window_is_accepted_and_flagged(db, sites, visit_code):
    _first, last = WINDOWS[visit_code]
    visit = register_on_day(visit_code, last + 1).visit
    assert visit.study_day == last + 1 and visit.out_of_window


@pytest.mark.parametrize("visit_code", list(WINDOWS))
def test_a_visit_the_day_before_its_window_is_refused_and_writes_nothing(db, sites, visit_code):
    first, last = WINDOWS[visit_code]
    participant = factories.participant("LIM", "G2", included_on=LONG_AGO)
    db.session.commit()
    before = [count_rows(db, model) for model in (Visit, Specimen, Aliquot, CustodyEvent)]

    with pytest.raises(Invalid) as refused:
        samples.register_collection(
            participant.code, visit_code, [drawn_on_day(first - 1)], actor=None
        )
    db.session.rollback()

    earliest = LONG_AGO + timedelta(days=first)
    message = str(refused.value.message)
    assert refused.value.code == "visit.too_early"
    assert f"Visit {visit_code} (" in message
    assert f"study day {first} to study day {last}" in message
    assert f"earliest date is {earliest.isoformat()}" in message
    assert refused.value.fields == {"SST.collected_at": str(earliest - timedelta(days=1))}
    assert [count_rows(db, m) for m in (Visit, Specimen, Aliquot, CustodyEvent)] == before


def test_a_month_2_visit_dated_before_inclusion_is_refused_naming_its_window(db, sites):
    participant = factories.participant("LIM", "G2", included_on=date(2026, 1, 5))
    with pytest.raises(Invalid) as refused:
        samples.register_collection(
            participant.code, "M2", [drawn_on_day(-14, date(2026, 1, 5))], actor=None
        )
    assert str(refused.value.message) == (
        "Visit M2 (Month 2 (after 2 cycles)) cannot be collected on 2025-12-22, study day "
        "-14: its window runs from study day 49 to study day 63, so its earliest date is "
        "2026-02-23. Check the date the blood was drawn."
    )


def test_the_earliest_tube_of_the_visit_is_the_one_named(db, sites):
    participant = factories.participant("LIM", "G2", included_on=LONG_AGO)
    early = drawn_on_day(40)
    plasma = factories.tube("EDTA", collected_at=early.collected_at - timedelta(minutes=5))
    with pytest.raises(Invalid) as refused:
        samples.register_collection(participant.code, "M2", [early, plasma], actor=None)
    assert set(refused.value.fields) == {"EDTA.collected_at"}
