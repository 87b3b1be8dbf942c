"""Registering a visit: aliquots, barcodes, custody, and refusals that write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.custody.models import CustodyEvent
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.study import services as study
from biobank.study.models import Visit
from tests import factories


def count(db, model) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


@pytest.fixture
def technician(make_user):
    return make_user("technician")


@pytest.fixture
def participant(sites, technician):
    return factories.participant("LIM", "G2", code="LIM-001", actor=technician)


def test_registering_a_visit_creates_the_planned_aliquots_with_barcodes_and_custody(
    db, participant, technician
):
    result = factories.visit("LIM-001", "BL", actor=technician)
    db.session.commit()

    assert [s.tube_type for s in result.specimens] == ["SST", "EDTA"]
    assert [s.sample_type for s in result.specimens] == ["SER", "PL1"]
    aliquots = result.aliquots
    assert len(aliquots) == 10
    assert all(a.volume_ul == a.initial_volume_ul == 500 for a in aliquots)
    assert [a.series_label for a in aliquots[:5]] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert len({a.barcode for a in aliquots}) == 10
    for aliquot in aliquots:
        assert barcodes.validate(aliquot.barcode) == aliquot.barcode
        assert len(aliquot.barcode) <= 12
        assert aliquot.status == "registered"
        [event] = custody.history(aliquot.id)
        assert event.kind == "REGISTERED"
        assert event.actor_name == technician.username
        assert aliquot.custody_head == event.hash
    assert count(db, CustodyEvent) == 10


def test_barcodes_carry_nothing_of_the_participant(db, participant, technician):
    aliquots = factories.visit("LIM-001", "BL", actor=technician).aliquots
    for aliquot in aliquots:
        assert "LIM" not in aliquot.barcode and "001" not in aliquot.barcode


def test_the_specimen_carries_its_pre_analytical_code(db, participant, technician):
    result = factories.visit("LIM-001", "BL", actor=technician)
    serum, plasma = result.specimens
    assert serum.sprec_code.startswith("SER-SST-A-")
    assert plasma.sprec_code.startswith("PL1-PED-A-")
    assert len(serum.sprec_code.split("-")) == 7


def test_a_late_centrifugation_changes_the_pre_centrifugation_element(db, participant):
    tube = factories.tube("SST", delay_hours=3)
    specimen = samples.register_collection("LIM-001", "BL", [tube], actor=None).specimens[0]
    assert specimen.sprec_code.split("-")[2] == "C"  # room temperature, 2 to 4 hours


def test_a_second_centrifugation_makes_double_spun_plasma(db, participant):
    from biobank.samples.services import SpinEntry

    tube = factories.tube("EDTA", second_spin=SpinEntry(20.0, 2500, 15))
    specimen = samples.register_collection("LIM-001", "BL", [tube], actor=None).specimens[0]
    assert specimen.sample_type == "PL2"
    assert all(a.sample_type == "PL2" for a in specimen.aliquots)
    assert specimen.sprec_code.startswith("PL2-PED-")


def test_registering_the_same_tube_twice_is_refused_and_writes_nothing(db, participant):
    factories.visit("LIM-001", "BL")
    db.session.commit()
    before = (count(db, Aliquot), count(db, Specimen), count(db, CustodyEvent))

    with pytest.raises(Conflict, match="already registered") as refused:
        samples.register_collection(
            "LIM-001", "BL", [factories.tube("SST"), factories.tube("EDTA")], actor=None
        )
    db.session.rollback()

    assert refused.value.fields == {"SST.tube_type": "SST"}
    assert (count(db, Aliquot), count(db, Specimen), count(db, CustodyEvent)) == before


def test_a_tube_type_missing_at_first_can_join_its_visit_later(db, participant):
    factories.visit("LIM-001", "BL", tube_types=("SST",))
    result = factories.visit("LIM-001", "BL", tube_types=("EDTA",))
    assert result.visit.visit_code == "BL"
    assert count(db, Visit) == 1
    assert count(db, Aliquot) == 10


def test_a_failure_on_the_second_tube_leaves_nothing_of_the_first(db, participant):
    bad = factories.tube("EDTA", tube_barcode="HOSP-1")
    factories.visit("LIM-001", "M2", tube_types=("SST",))  # HOSP-1 is still free
    month_4 = datetime(2026, 4, 27, 8, 30, tzinfo=UTC)  # day 112, its nominal day
    samples.register_collection(
        "LIM-001",
        "M4",
        [factories.tube("SST", collected_at=month_4, tube_barcode="HOSP-1")],
        actor=None,
    )
    db.session.commit()
    before = (count(db, Aliquot), count(db, Visit))
    with pytest.raises(Conflict, match="HOSP-1"):
        samples.register_collection("LIM-001", "BL", [factories.tube("SST"), bad], actor=None)
    db.session.rollback()
    assert (count(db, Aliquot), count(db, Visit)) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"spun_at": datetime(2026, 1, 5, 8, 0, tzinfo=UTC)}, "SST.spun_at"),
        ({"frozen_at": datetime(2026, 1, 5, 8, 0, tzinfo=UTC)}, "SST.frozen_at"),
        ({"received_at": datetime(2026, 1, 5, 7, 0, tzinfo=UTC)}, "SST.received_at"),
        (
            {
                "collected_at": datetime.now(UTC) + timedelta(days=1),
                "spun_at": datetime.now(UTC) + timedelta(days=1, hours=1),
                "frozen_at": datetime.now(UTC) + timedelta(days=1, hours=2),
                "received_at": None,
            },
            "SST.collected_at",
        ),
        ({"aliquots": 0}, "SST.aliquots"),
        ({"volume_ul": 0}, "SST.volume_ul"),
    ],
)
def test_impossible_entries_are_refused_naming_the_field(db, participant, change, field):
    with pytest.raises(Invalid) as refused:
        samples.register_collection("LIM-001", "BL", [factories.tube("SST", **change)], actor=None)
    assert field in refused.value.fields
    db.session.rollback()
    assert count(db, Aliquot) == 0 and count(db, Visit) == 0


def test_a_visit_outside_its_window_is_accepted_and_flagged(db, participant):
    # Included on 5 January; M2 is day 56 ± 7: day 80 is outside.
    late = datetime(2026, 1, 5, 9, 0, tzinfo=UTC) + timedelta(days=80)
    result = samples.register_collection(
        "LIM-001", "M2", [factories.tube("SST", collected_at=late)], actor=None
    )
    assert result.visit.out_of_window
    assert result.visit.study_day == 80


def test_a_visit_in_its_window_is_not_flagged(db, participant):
    on_time = datetime(2026, 1, 5, 9, 0, tzinfo=UTC) + timedelta(days=60)
    result = samples.register_collection(
        "LIM-001", "M2", [factories.tube("SST", collected_at=on_time)], actor=None
    )
    assert not result.visit.out_of_window


def test_a_visit_not_in_the_arm_schedule_is_refused(db, sites):
    factories.participant("LIM", "G1", code="LIM-009")
    with pytest.raises(Invalid, match="not in the schedule"):
        factories.visit("LIM-009", "M4")


def test_no_sample_is_banked_after_consent_withdrawal(db, participant, make_user):
    manager = make_user("manager")
    study.withdraw_consent("LIM-001", participant.included_on, actor=manager)
    with pytest.raises(Conflict, match="consent"):
        factories.visit("LIM-001", "BL")


def test_the_plan_in_force_at_registration_stays_with_the_aliquots(db, participant):
    from biobank.study.protocol import default_protocol_path, parse_protocol

    factories.visit("LIM-001", "BL")
    source = default_protocol_path().read_text().replace("volume_ul = 500", "volume_ul = 250")
    assert source != default_protocol_path().read_text()
    study.load_protocol(parse_protocol(source), source)
    m2 = factories.visit("LIM-001", "M2")

    old = (
        db.session.execute(
            sa.select(Aliquot).join(Specimen).join(Visit).where(Visit.visit_code == "BL")
        )
        .scalars()
        .all()
    )
    assert {a.volume_ul for a in old} == {500}
    assert {a.volume_ul for a in m2.aliquots} == {250}


# --- scan lookup ---------------------------------------------------------------------------


@pytest.fixture
def one_aliquot(db, participant):
    return factories.visit("LIM-001", "BL").aliquots[0]


@pytest.mark.parametrize("wrap", ["{}", "  {}  ", "{}\r\n", "{}\n", "\t{}\r", "lower"])
def test_lookup_forgives_whitespace_case_and_scanner_line_endings(one_aliquot, wrap):
    raw = one_aliquot.barcode.lower() if wrap == "lower" else wrap.format(one_aliquot.barcode)
    assert samples.find_aliquot(raw, actor=None) is one_aliquot


def test_lookup_of_a_code_with_a_wrong_check_character_says_so(one_aliquot):
    code = one_aliquot.barcode
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    with pytest.raises(Invalid, match=r"not a valid barcode \(check character\)"):
        samples.find_aliquot(wrong, actor=None)


def test_lookup_of_a_valid_but_unknown_code_says_not_found(one_aliquot):
    body = "ZZZZZZZZ"
    with pytest.raises(NotFound, match="No aliquot"):
        samples.find_aliquot(body + barcodes.check_character(body), actor=None)


def test_a_centre_user_cannot_see_another_centres_aliquots(db, one_aliquot, make_user):
    paris = make_user("technician", site="PAR")
    limoges = make_user("technician", site="LIM")
    with pytest.raises(Forbidden) as refused:
        samples.find_aliquot(one_aliquot.barcode, actor=paris)
    assert refused.value.code == "aliquot.other_centre"
    assert "LIM" not in str(refused.value.message)
    assert samples.find_aliquot(one_aliquot.barcode, actor=limoges) is one_aliquot


def test_a_volume_correction_is_a_new_event_keeping_the_old_value(db, one_aliquot, technician):
    samples.correct_volume(one_aliquot.barcode, 450, "pipetting check", actor=technician)
    events = custody.history(one_aliquot.id)
    assert [e.kind for e in events] == ["REGISTERED", "VOLUME_CORRECTED"]
    assert events[1].reason == "pipetting check"
    assert '"from_ul":500' in events[1].details and one_aliquot.volume_ul == 450
    assert events[1].prev_hash == events[0].hash


def test_a_volume_correction_needs_a_reason(db, one_aliquot, technician):
    with pytest.raises(Invalid, match="reason"):
        samples.correct_volume(one_aliquot.barcode, 450, "  ", actor=technician)


# --- what a code that finds no tube is -----------------------------------------------------


@pytest.fixture
def freezer(db, sites):
    """Box BX-0001 in rack RK-0001 of freezer FR-0001, at the central biobank."""
    factories.freezer({"BX-0001": "Box 1"}, parent_kind="rack")


@pytest.mark.parametrize(
    ("typed", "length"), [("ABC12", 5), ("7KQ3M9XW", 8), ("7KQ3M9XW4Z", 10), (" ab12cd ", 6)]
)
def test_a_code_of_the_wrong_length_says_how_long_it_is(one_aliquot, typed, length):
    with pytest.raises(Invalid) as refused:
        samples.scan_aliquot(typed, actor=None)
    assert refused.value.code == "barcode.length"
    assert str(refused.value.message) == (
        f"{typed.strip().upper()} has {length} characters; an aliquot barcode has 9."
    )


def test_a_one_character_code_says_so_in_the_singular(one_aliquot):
    with pytest.raises(Invalid, match=r"^X has one character; an aliquot barcode has 9\.$"):
        samples.find_aliquot("x", actor=None)


@pytest.mark.parametrize("typed", ["B4", "a01", "H12", "C-3", "d 7"])
def test_a_position_typed_where_a_tube_is_expected_is_named_a_position(one_aliquot, typed):
    with pytest.raises(Invalid) as refused:
        samples.find_aliquot(typed, actor=None)
    assert refused.value.code == "barcode.position"
    assert "is a position in a box, not a tube" in str(refused.value.message)
    with pytest.raises(Invalid, match="is a position in a box"):
        samples.valid_code(typed)


@pytest.mark.parametrize(
    ("code", "what", "endpoint"),
    [
        ("BX-0001", "box BX-0001", "storage.box"),
        ("rk-0001", "rack RK-0001", "storage.container"),
        ("FR-0001\r\n", "freezer FR-0001", "storage.container"),
    ],
)
def test_a_container_barcode_is_named_with_the_page_that_shows_it(
    freezer, one_aliquot, make_user, code, what, endpoint
):
    central = make_user("technician")
    with pytest.raises(samples.NotATube) as refused:
        samples.scan_aliquot(code, actor=central)
    assert refused.value.code == "barcode.container"
    assert str(refused.value.message) == (
        f"This is {what}, not a tube: scan the barcode on the tube."
    )
    assert refused.value.meaning.endpoint == endpoint
    assert refused.value.meaning.code == code.strip().upper()


def test_another_centres_container_is_not_disclosed(freezer, one_aliquot, make_user):
    limoges = make_user("technician", site="LIM")  # the freezer is the central biobank's
    with pytest.raises(Invalid) as refused:
        samples.find_aliquot("BX-0001", actor=limoges)
    assert refused.value.code == "barcode.length"
    assert "box" not in str(refused.value.message)


def test_a_box_among_tubes_to_find_is_named(freezer, one_aliquot):
    with pytest.raises(samples.NotATube) as refused:
        samples.find_aliquots([one_aliquot.barcode, "BX-0001"], actor=None)
    assert refused.value.fields == {"barcodes": "BX-0001"}


def test_another_centres_tubes_among_tubes_to_find_are_named(db, participant, make_user):
    lim_tubes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots[:2]]
    paris = make_user("technician", site="PAR")
    with pytest.raises(Forbidden) as refused:
        samples.find_aliquots(lim_tubes, actor=paris)
    assert refused.value.code == "aliquot.other_centre"
    assert str(refused.value.message).startswith(", ".join(sorted(lim_tubes)) + " are ")


def test_a_central_user_is_told_not_found_for_a_tube_that_does_not_exist(one_aliquot, make_user):
    body = "ZZZZZZZZ"
    with pytest.raises(NotFound) as refused:
        samples.scan_aliquot(body + barcodes.check_character(body), actor=make_user("manager"))
    assert refused.value.code == "aliquot.not_found"


def test_a_tube_that_is_found_asks_no_resolver(one_aliquot, make_user, monkeypatch):
    asked = []
    monkeypatch.setattr(
        samples, "_CODE_RESOLVERS", [lambda code, actor: asked.append(code)], raising=True
    )
    limoges = make_user("technician", site="LIM")
    assert samples.scan_aliquot(one_aliquot.barcode, actor=limoges).barcode == one_aliquot.barcode
    assert samples.find_aliquot(one_aliquot.barcode, actor=limoges) is one_aliquot
    assert asked == []
    with pytest.raises(Invalid):
        samples.scan_aliquot("BX-0001", actor=limoges)
    assert asked == ["BX-0001"]
