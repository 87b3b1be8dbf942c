"""Importing an existing inventory: what a file creates, and every problem it can have,
each named by its row and column, with nothing written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.custody.models import CustodyEvent
from biobank.errors import Conflict, Forbidden
from biobank.inventory import services
from biobank.inventory.services import ImportRefused
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, InventoryImport, Specimen, UncollectedTube
from biobank.sites import services as sites_services
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from biobank.uploads import TooLarge
from tests import factories
from tests.attack_files import bomb_xlsx
from tests.inventory import BOX, FRENCH, HEADER, aliquot, csv_file, tube, xlsx
from tests.inventory.conftest import lim_freezer


def counts(db) -> dict[str, int]:
    """How many rows of what an import writes the bank holds."""
    tables = {
        "participants": Participant,
        "visits": Visit,
        "specimens": Specimen,
        "aliquots": Aliquot,
        "positions": StoredPosition,
        "events": CustodyEvent,
        "imports": InventoryImport,
        "containers": Container,
    }
    return {
        name: db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
        for name, model in tables.items()
    }


def refused(data: bytes, db, *, actor=None, site_code=None, name="inventory.xlsx") -> list[dict]:
    """The problems of a file whose apply is refused; the bank is left as it was."""
    before = counts(db)
    with pytest.raises(ImportRefused) as caught:
        services.apply(data, name, actor=actor, site_code=site_code)
    assert counts(db) == before
    return [problem.as_dict() for problem in caught.value.report.errors]


def only(problems: list[dict]) -> dict:
    assert len(problems) == 1, problems
    return problems[0]


# --- what a valid file creates -------------------------------------------------------------


def test_a_preview_says_what_the_file_creates_and_writes_nothing(bank, db):
    before = counts(db)

    report = services.preview(xlsx(tube(3)), "inventory.xlsx", actor=None)

    assert report.errors == [] and report.ignored_columns == []
    assert report.rows == 3
    assert report.created == {
        "participants": 1,
        "visits": 1,
        "specimens": 1,
        "aliquots": 3,
        "positions": 3,
        "boxes": 0,
    }
    assert counts(db) == before


def test_apply_creates_participant_visit_specimen_aliquots_and_positions(bank, db):
    rows = tube(3) + tube(2, first=4, tube_type="EDTA")
    report = services.apply(xlsx(rows), "inventory.xlsx", actor=None)
    db.session.commit()

    assert report.created["aliquots"] == 5 and report.created["specimens"] == 2
    participant = study.get_participant("LIM-101", actor=None)
    assert (participant.site.code, participant.arm_code) == ("LIM", "G2")
    assert participant.included_on == date(2026, 1, 5)
    assert participant.consent_given_on == date(2026, 1, 3)
    assert participant.disease_status == "de_novo"
    (visit,) = participant.visits
    assert (visit.visit_code, visit.collected_on, visit.out_of_window) == (
        "BL",
        date(2026, 1, 5),
        False,
    )
    aliquots = db.session.execute(sa.select(Aliquot).order_by(Aliquot.legacy_barcode)).scalars()
    aliquots = list(aliquots)
    assert [a.legacy_barcode for a in aliquots] == [f"OLD-{n:04d}" for n in range(1, 6)]
    for a in aliquots:
        assert barcodes.validate(a.barcode) == a.barcode  # a new barcode of the bank
        assert a.barcode != a.legacy_barcode
        assert a.status == "in_storage"
        assert a.volume_ul == a.initial_volume_ul == 500
    serum = [a for a in aliquots if a.sample_type == "SER"]
    assert [a.series_label for a in serum] == ["1/3", "2/3", "3/3"]
    assert storage.locations([aliquots[0].id])[aliquots[0].id].endswith("A1")


def test_each_aliquot_has_an_imported_then_a_stored_event_and_every_chain_holds(bank, db):
    data = xlsx(tube(2))
    report = services.apply(data, "inventory.xlsx", actor=None)
    db.session.commit()

    for n, a in enumerate(
        db.session.execute(sa.select(Aliquot).order_by(Aliquot.legacy_barcode)).scalars(), start=1
    ):
        events = custody.history(a.id)
        assert [e.kind for e in events] == ["IMPORTED", "STORED"]
        details = json.loads(events[0].details)
        assert details["sha256"] == report.sha256 == services.sha256_of(data)
        assert details["row"] == n + 1  # the header is row 1
        assert details["legacy_barcode"] == f"OLD-{n:04d}"
        assert events[1].to_location.endswith(f"A{n}")
    assert custody.verify().intact


def test_the_pre_analytical_code_says_unknown_for_what_the_file_cannot_tell(bank, db):
    services.apply(xlsx(tube(1)), "inventory.xlsx", actor=None)

    specimen = db.session.execute(sa.select(Specimen)).scalar_one()
    # Serum, SST; pre-centrifugation, centrifugation and post-centrifugation unknown (X);
    # no second spin (N); long-term storage at −80 °C known.
    elements = specimen.sprec_code.split("-")
    assert elements[:6] == ["SER", "SST", "X", "X", "N", "X"]
    assert specimen.collected_at == datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert specimen.deviates is False
    # Not recorded is empty, not a made-up value a statistician could take for one.
    unrecorded = (
        specimen.spin_force_g,
        specimen.spin_minutes,
        specimen.spin_temperature_c,
        specimen.precentrifugation_temperature,
        specimen.postcentrifugation_temperature,
    )
    assert unrecorded == (None, None, None, None, None)
    assert "were not recorded" in specimen.notes


def test_a_tube_left_too_long_before_centrifugation_is_imported_with_its_deviation(bank, db):
    late = tube(1, spun_at="2026-01-05 11:00", frozen_at="2026-01-05 11:30")  # 2 h 30 min
    services.apply(xlsx(late), "inventory.xlsx", actor=None)

    specimen = db.session.execute(sa.select(Specimen)).scalar_one()
    assert specimen.deviates is True
    assert json.loads(specimen.deviations)[0]["code"] == "preanalytical.draw_to_centrifugation"


def test_rows_without_a_box_are_registered_and_not_stored(bank, db):
    report = services.apply(xlsx(tube(2, box=None, position=None)), "i.xlsx", actor=None)

    assert report.created["positions"] == 0
    statuses = db.session.execute(sa.select(Aliquot.status)).scalars().all()
    assert statuses == ["registered", "registered"]


def test_a_known_participant_needs_no_enrolment_columns(bank, db):
    factories.participant("LIM", code="LIM-101")
    rows = tube(2, site=None, arm=None, included_on=None, consent_given_on=None)
    for row in rows:
        row["disease_status"] = None

    report = services.apply(xlsx(rows), "inventory.xlsx", actor=None)

    assert report.created["participants"] == 0 and report.created["aliquots"] == 2


def test_a_tube_recorded_as_not_drawn_and_found_in_a_freezer_replaces_that_record(bank, db):
    factories.participant("LIM", code="LIM-101")
    on = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    samples.register_collection(
        "LIM-101",
        "BL",
        [factories.tube("EDTA", collected_at=on)],
        not_collected=[samples.NotCollected("SST", "forgotten")],
        actor=None,
    )

    services.apply(xlsx(tube(2)), "inventory.xlsx", actor=None)

    assert db.session.execute(sa.select(UncollectedTube)).first() is None


def test_a_box_named_with_its_type_and_rack_is_created_there(bank, db):
    rows = tube(2, box="BX-0777", box_type="81-place 2-inch cryobox", rack="RK-0001")
    header = (*HEADER, "box_type", "rack")

    report = services.apply(xlsx(rows, header), "inventory.xlsx", actor=None)

    assert report.created["boxes"] == 1
    box = storage.get_container("BX-0777", actor=None, kind="box")
    assert box.parent.barcode == "RK-0001"
    assert report.created["positions"] == 2


# --- headers, dates, times and volumes as centres write them --------------------------------


def test_french_headers_in_another_order_are_read_and_other_columns_listed(bank, db):
    header = ["Commentaire", *reversed(HEADER)]
    titles = {**FRENCH, "Commentaire": "Commentaire"}
    titles["collected_at"] = "PRÉLEVÉ  LE"  # case, accents and spaces do not matter
    rows = [{**row, "Commentaire": "ok"} for row in tube(2)]

    report = services.preview(xlsx(rows, header, titles=titles), "fr.xlsx", actor=None)

    assert report.errors == []
    assert report.ignored_columns == ["Commentaire"]
    assert report.created["aliquots"] == 2


def test_a_problem_names_the_column_as_the_file_writes_it(bank, db):
    rows = tube(1, volume_ul=0)
    problem = only(refused(xlsx(rows, titles=FRENCH), db))
    assert (problem["row"], problem["column"]) == (2, "Volume (µL)")


def test_a_volume_header_in_millilitres_reads_millilitres(bank, db):
    header = [key if key != "volume_ul" else "volume_ml" for key in HEADER]
    rows = [{**row, "volume_ml": "0,5"} for row in tube(1)] + [{**aliquot(2), "volume_ml": 0.25}]
    titles = {"volume_ml": "Volume (mL)"}

    services.apply(xlsx(rows, header, titles=titles), "ml.xlsx", actor=None)

    volumes = db.session.execute(sa.select(Aliquot.volume_ul).order_by(Aliquot.id)).scalars()
    assert list(volumes) == [500, 250]


def test_dates_and_times_day_first_and_excel_cells_are_read(bank, db):
    rows = [
        aliquot(
            1,
            included_on="05/01/2026",
            consent_given_on=date(2026, 1, 3),
            collected_at="05/01/2026 08:30",
            spun_at=datetime(2026, 1, 5, 9, 30),
            frozen_at="2026-01-05T10:00",
        )
    ]

    services.apply(xlsx(rows), "dates.xlsx", actor=None)

    participant = study.get_participant("LIM-101", actor=None)
    assert participant.included_on == date(2026, 1, 5)
    specimen = db.session.execute(sa.select(Specimen)).scalar_one()
    assert specimen.collected_at == datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert specimen.spun_at == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def test_times_without_a_zone_are_read_in_the_centres_zone(bank, db):
    sites_services.create_site("NYC", "New York", timezone="America/New_York", actor=None)
    rows = [
        aliquot(1, participant="NYC-001", site="NYC", box=None, position=None),
        aliquot(2, collected_at="2026-01-05T08:30+01:00", box=None, position=None),
    ]

    services.apply(xlsx(rows), "zones.xlsx", actor=None)

    drawn = dict(
        db.session.execute(
            sa.select(Participant.code, Specimen.collected_at)
            .join(Visit, Visit.participant_id == Participant.id)
            .join(Specimen, Specimen.visit_id == Visit.id)
        ).all()
    )
    assert drawn["NYC-001"] == datetime(2026, 1, 5, 13, 30, tzinfo=UTC)  # 08:30 in New York
    assert drawn["LIM-101"] == datetime(2026, 1, 5, 7, 30, tzinfo=UTC)  # the zone written


def test_a_csv_with_semicolons_is_read(bank, db):
    report = services.preview(csv_file(tube(2)), "inventory.csv", actor=None)
    assert report.errors == [] and report.created["aliquots"] == 2


# --- the limits of a visit's window, at the centre ------------------------------------------


def m2_row(collected_at: str) -> list[dict]:
    """LIM-101 (arm G2, included on 2026-01-05) at M2: window study days 49 to 63."""
    return [aliquot(1, visit="M2", collected_at=collected_at, spun_at=collected_at,
                    frozen_at=collected_at, box=None, position=None)]  # fmt: skip


def test_the_first_day_of_a_window_opens_at_midnight_at_the_centre(bank, db):
    # 2026-02-23 is study day 49: 00:30 in Paris is 23:30 UTC on the day before.
    report = services.preview(xlsx(m2_row("2026-02-22T23:30Z")), "i.xlsx", actor=None)
    assert report.errors == [] and report.warnings == []


def test_half_an_hour_before_the_window_opens_at_the_centre_is_refused(bank, db):
    problem = only(refused(xlsx(m2_row("2026-02-22T22:30Z")), db))  # 23:30 in Paris, day 48
    assert (problem["row"], problem["column"]) == (2, "collected_at")
    assert "study day 48" in problem["message"]


def test_the_last_day_of_a_window_is_inside_it(bank, db):
    report = services.preview(xlsx(m2_row("2026-03-09 23:30")), "i.xlsx", actor=None)  # day 63
    assert report.errors == [] and report.warnings == []


def test_the_day_after_a_window_closes_is_imported_and_flagged(bank, db):
    report = services.apply(xlsx(m2_row("2026-03-10 00:30")), "i.xlsx", actor=None)  # day 64

    (warning,) = report.warnings
    assert (warning.row, warning.column) == (2, "collected_at")
    visit = db.session.execute(sa.select(Visit)).scalar_one()
    assert visit.out_of_window is True and visit.study_day == 64


# --- volumes, at the limit and one over ------------------------------------------------------


def test_the_protocols_aliquot_volume_is_accepted(bank, db):
    report = services.preview(xlsx(tube(1, volume_ul=500)), "i.xlsx", actor=None)
    assert report.errors == []


@pytest.mark.parametrize("volume", [501, 0, -5])
def test_a_volume_over_the_protocols_or_not_positive_is_refused(bank, db, volume):
    problem = only(refused(xlsx(tube(1, volume_ul=volume)), db))
    assert (problem["row"], problem["column"]) == (2, "volume_ul")


# --- every kind of problem, by row and column ------------------------------------------------


def known_participant(db, **changes) -> None:
    factories.participant(changes.pop("site", "LIM"), code="LIM-101", **changes)
    db.session.commit()


CASES = {
    "an empty required cell": (aliquot(1, participant=None), "participant", "empty"),
    "a date that is no day": (aliquot(1, included_on="31/02/2026"), "included_on", "calendar"),
    "a time without its day's time": (
        aliquot(1, collected_at="2026-01-05"),
        "collected_at",
        "time is missing",
    ),
    "a number where a time is expected": (aliquot(1, frozen_at=46027), "frozen_at", "not a date"),
    "consent missing for a new participant": (
        aliquot(1, consent_given_on=None),
        "consent_given_on",
        "consent",
    ),
    "consent after inclusion": (
        aliquot(1, consent_given_on="2026-01-06"),
        "consent_given_on",
        "before inclusion",
    ),
    "a name for a study code": (aliquot(1, participant="Jean Dupont"), "participant", "study code"),
    "an unknown site": (aliquot(1, site="XYZ"), "site", "XYZ"),
    "a new participant without a site": (aliquot(1, site=None), "site", "required"),
    "an unknown arm": (aliquot(1, arm="G9"), "arm", "G9"),
    "an unknown disease status": (aliquot(1, disease_status="cured"), "disease_status", "cured"),
    "a visit not in the arm's schedule": (
        aliquot(1, arm="G1", visit="M4"),
        "visit",
        "not in the schedule",
    ),
    "an unknown visit": (aliquot(1, visit="M99"), "visit", "M99"),
    "an unknown tube type": (aliquot(1, tube_type="CITRATE"), "tube_type", "CITRATE"),
    "a centrifugation before the blood draw": (
        aliquot(1, spun_at="2026-01-05 08:00"),
        "spun_at",
        "before",
    ),
    "a code too long for a label": (aliquot(1, legacy_barcode="X" * 65), "legacy_barcode", "64"),
    "an unknown box": (aliquot(1, box="BX-9999"), "box", "BX-9999"),
    "a position outside the box": (aliquot(1, position="J1"), "position", "J1"),
    "a position not written as one": (aliquot(1, position="middle"), "position", "middle"),
    "a position without its box": (aliquot(1, box=None), "box", "position"),
    "a box without the position": (aliquot(1, position=None), "position", BOX),
    "a volume that is no number": (aliquot(1, volume_ul="lots"), "volume_ul", "lots"),
    "a volume of part of a microlitre": (aliquot(1, volume_ul=250.5), "volume_ul", "whole"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_names_its_row_and_column_and_nothing_is_written(bank, db, case):
    row, column, words = CASES[case]
    another = aliquot(9, participant="LIM-109", position="B9")  # a sound row first
    problem = only(refused(xlsx([another, row]), db))
    assert (problem["row"], problem["column"]) == (3, column)
    assert words.lower() in problem["message"].lower()


def test_every_problem_of_the_file_is_reported_at_once(bank, db):
    rows = [aliquot(1, volume_ul=0), aliquot(2), aliquot(3, arm="G9", position="Z9")]
    problems = refused(xlsx(rows), db)
    assert [(p["row"], p["column"]) for p in problems] == [
        (2, "volume_ul"),
        (4, "position"),
        (4, "arm"),
    ]


def test_a_missing_column_is_named_on_the_header_row(bank, db):
    header = [key for key in HEADER if key != "legacy_barcode"]
    problem = only(refused(xlsx(tube(2), header), db))
    assert (problem["row"], problem["column"]) == (1, "legacy_barcode")


def test_two_volume_columns_are_refused(bank, db):
    header = (*HEADER, "volume_ml")
    problem = only(refused(xlsx(tube(1), header), db))
    assert (problem["row"], problem["column"]) == (1, "volume_ml")


def test_the_rows_of_one_tube_must_give_the_same_times(bank, db):
    rows = [aliquot(1), aliquot(2, frozen_at="2026-01-05 10:05")]
    problem = only(refused(xlsx(rows), db))
    assert (problem["row"], problem["column"]) == (3, "frozen_at")
    assert "row 2" in problem["message"]


def test_the_rows_of_one_new_participant_must_agree(bank, db):
    rows = [aliquot(1), aliquot(2, tube_type="EDTA", included_on="2026-01-04")]
    problem = only(refused(xlsx(rows), db))
    assert (problem["row"], problem["column"]) == (3, "included_on")


def test_a_legacy_code_given_twice_in_the_file_is_refused(bank, db):
    rows = [aliquot(1), aliquot(2, legacy_barcode="old-0001 ")]  # the same code, as scanned
    problem = only(refused(xlsx(rows), db))
    assert (problem["row"], problem["column"]) == (3, "legacy_barcode")
    assert "row 2" in problem["message"]


def test_a_legacy_code_of_the_bank_is_refused(bank, db):
    services.apply(xlsx(tube(1)), "first.xlsx", actor=None)
    problem = only(refused(xlsx([aliquot(1, participant="LIM-102", position="B1")]), db))
    assert (problem["row"], problem["column"]) == (2, "legacy_barcode")


def test_a_legacy_code_that_is_a_barcode_of_the_bank_is_refused(bank, db):
    factories.participant("LIM", code="LIM-050")
    barcode = factories.visit("LIM-050", "BL").aliquots[0].barcode
    problem = only(refused(xlsx([aliquot(1, legacy_barcode=barcode)]), db))
    assert (problem["row"], problem["column"]) == (2, "legacy_barcode")


def test_a_position_given_twice_in_the_file_is_refused(bank, db):
    rows = [aliquot(1), aliquot(2, position="a01")]
    problem = only(refused(xlsx(rows), db))
    assert (problem["row"], problem["column"]) == (3, "position")


def test_a_position_holding_a_tube_is_refused(bank, db):
    factories.participant("LIM", code="LIM-050")
    barcode = factories.visit("LIM-050", "BL").aliquots[0].barcode
    storage.store(barcode, BOX, "A1", actor=None)
    problem = only(refused(xlsx([aliquot(1)]), db))
    assert (problem["row"], problem["column"]) == (2, "position")


def test_a_box_in_a_freezer_not_cold_enough_is_refused(bank, db):
    codes = lim_freezer("-20", number=2)
    problem = only(refused(xlsx([aliquot(1, box=codes["box"])]), db))
    assert (problem["row"], problem["column"]) == (2, "box")


def test_a_box_to_create_in_an_unknown_rack_is_refused(bank, db):
    header = (*HEADER, "box_type", "rack")
    rows = [aliquot(1, box="BX-0777", box_type="81-place 2-inch cryobox", rack="RK-0404")]
    problem = only(refused(xlsx(rows, header), db))
    assert (problem["row"], problem["column"]) == (2, "rack")


def test_a_known_participants_site_and_arm_must_match(bank, db):
    known_participant(db)
    problems = refused(xlsx([aliquot(1, site="PAR", arm="G1")]), db)
    assert [(p["row"], p["column"]) for p in problems] == [(2, "site"), (2, "arm")]


def test_a_participant_whose_consent_is_withdrawn_is_refused(bank, db):
    known_participant(db)
    study.withdraw_consent("LIM-101", date(2026, 2, 1), actor=None)
    problems = refused(xlsx(tube(2)), db)
    assert [(p["row"], p["column"]) for p in problems] == [(2, "participant"), (3, "participant")]
    assert all("withdrawn" in p["message"] for p in problems)


def test_a_visit_after_the_participant_left_the_study_is_refused(bank, db):
    known_participant(db)
    study.record_leaving("LIM-101", date(2026, 1, 20), "toxicity", actor=None)
    problem = only(refused(xlsx(m2_row("2026-03-01 08:30")), db))
    assert (problem["row"], problem["column"]) == (2, "collected_at")
    assert "left the study" in problem["message"]


def test_a_tube_of_a_registered_visit_is_refused(bank, db):
    known_participant(db)
    factories.visit("LIM-101", "BL", on=datetime(2026, 1, 5, 7, 30, tzinfo=UTC))
    problems = refused(xlsx(tube(2)), db)
    assert [(p["row"], p["column"]) for p in problems] == [(2, "tube_type"), (3, "tube_type")]
    assert "already registered" in problems[0]["message"]


def test_a_tube_of_another_day_cannot_join_a_registered_visit(bank, db):
    known_participant(db)
    factories.visit(
        "LIM-101", "BL", on=datetime(2026, 1, 4, 7, 30, tzinfo=UTC), tube_types=("EDTA",)
    )
    problem = only(refused(xlsx(tube(1)), db))
    assert (problem["row"], problem["column"]) == (2, "collected_at")


def test_more_aliquots_than_one_tube_makes_are_refused(bank, db):
    rows = [
        aliquot(n, position=f"{'ABCDEFGHI'[(n - 1) // 9]}{(n - 1) % 9 + 1}") for n in range(1, 52)
    ]
    problem = only(refused(xlsx(rows), db))
    assert (problem["row"], problem["column"]) == (52, "tube_type")


def test_a_file_without_a_header_row_is_refused_naming_the_file(bank, db):
    with pytest.raises(Exception) as caught:
        services.preview(b"a;b\n1;2\n", "notes.csv", actor=None)
    assert "notes.csv" in str(caught.value) and "header" in str(caught.value)


def test_an_old_excel_file_is_refused_naming_the_file(bank, db):
    with pytest.raises(Exception) as caught:
        services.preview(b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old.xls", actor=None)
    assert "old.xls" in str(caught.value)


# --- once, and by whom ------------------------------------------------------------------------


def test_the_same_file_is_never_applied_twice(bank, db, make_user):
    user = make_user("technician", site="LIM", name="tech.lim")
    data = xlsx(tube(2))
    services.apply(data, "inventory.xlsx", actor=user)
    db.session.commit()

    for attempt in (services.apply, services.preview):
        with pytest.raises(Conflict) as caught:
            attempt(data, "again.xlsx", actor=None)
        assert caught.value.code == "inventory.applied"
        assert "tech.lim" in str(caught.value.message)
    record = db.session.execute(sa.select(InventoryImport)).scalar_one()
    assert (record.rows, record.aliquots, record.filename) == (2, 2, "inventory.xlsx")


# --- centres -------------------------------------------------------------------------------


def test_a_centre_user_imports_their_centres_rows(bank, db, make_user):
    user = make_user("technician", site="LIM")
    report = services.apply(xlsx(tube(2)), "inventory.xlsx", actor=user)
    assert report.created["aliquots"] == 2


def test_a_centre_user_cannot_import_another_centres_rows(bank, db, make_user):
    user = make_user("technician", site="PAR")
    rows = [aliquot(1, participant="PAR-001", site="PAR", box=None, position=None),
            aliquot(2, box=None, position=None)]  # fmt: skip
    problem = only(refused(xlsx(rows), db, actor=user))
    assert (problem["row"], problem["column"]) == (3, "site")


def test_a_centre_user_cannot_import_for_another_centre(bank, db, make_user):
    user = make_user("manager", site="PAR")
    with pytest.raises(Forbidden):
        services.preview(xlsx(tube(1)), "inventory.xlsx", actor=user, site_code="LIM")


def test_a_centre_user_does_not_reach_another_centres_participant_or_box(bank, db, make_user):
    known_participant(db)
    user = make_user("technician", site="PAR")
    problems = refused(xlsx([aliquot(1, site=None)]), db, actor=user)
    assert [(p["row"], p["column"]) for p in problems] == [(2, "box"), (2, "participant")]


def test_an_import_for_one_centre_takes_that_centres_rows_only(bank, db):
    rows = [aliquot(1), aliquot(2, participant="PAR-001", site="PAR", box=None, position=None)]
    problem = only(refused(xlsx(rows), db, site_code="LIM"))
    assert (problem["row"], problem["column"]) == (3, "site")


def test_an_import_for_one_centre_enrols_its_participants_there(bank, db):
    rows = tube(1, site=None)
    header = [key for key in HEADER if key != "site"]
    services.apply(xlsx(rows, header), "inventory.xlsx", actor=None, site_code="LIM")
    assert study.get_participant("LIM-101", actor=None).site.code == "LIM"


def test_a_researcher_cannot_import(bank, db, make_user):
    with pytest.raises(Forbidden):
        services.preview(xlsx(tube(1)), "inventory.xlsx", actor=make_user("researcher"))


# --- files built to exhaust the reader ------------------------------------------------------


def test_a_zip_bomb_is_refused_as_too_large(bank, db):
    before = counts(db)
    with pytest.raises(TooLarge):
        services.apply(bomb_xlsx(cells=2_000_000), "bomb.xlsx", actor=None)
    assert counts(db) == before


def test_a_csv_over_the_row_limit_is_refused_as_too_large(app, bank, db):
    app.config["UPLOAD_MAX_ROWS"] = 3
    with pytest.raises(TooLarge):
        services.preview(csv_file(tube(3)), "inventory.csv", actor=None)


def test_times_in_the_future_are_refused_each_in_its_cell(bank, db):
    rows = [aliquot(1, included_on="2099-01-05", consent_given_on="2099-01-03",
                    collected_at="2099-01-05 08:30", spun_at="2099-01-05 09:30",
                    frozen_at="2099-01-05 10:00")]  # fmt: skip
    problems = refused(xlsx(rows), db)
    assert [(p["row"], p["column"]) for p in problems] == [
        (2, "collected_at"),
        (2, "spun_at"),
        (2, "frozen_at"),
    ]
    assert all("future" in p["message"] for p in problems)


def test_a_time_just_inside_the_clock_skew_is_not_in_the_future(bank, db):
    soon = datetime.now(UTC) + timedelta(minutes=5)
    local = soon.isoformat(timespec="minutes")
    today = soon.date().isoformat()
    rows = [aliquot(1, included_on=today, consent_given_on=today, collected_at=local,
                    spun_at=local, frozen_at=local, box=None, position=None)]  # fmt: skip
    report = services.preview(xlsx(rows), "i.xlsx", actor=None)
    assert [p.as_dict() for p in report.errors] == []
