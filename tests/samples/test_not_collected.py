"""A primary tube not collected at a visit: its reason, the visit where no tube could be
drawn, and the tube found and registered later."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from biobank.errors import Conflict, Invalid
from biobank.samples import services as samples
from biobank.samples.models import Specimen, UncollectedTube
from biobank.samples.services import NotCollected
from biobank.study import services as study
from biobank.study.models import Visit
from tests import factories
from tests.answers import error_of, ok
from tests.pages import refused
from tests.races import ROUNDS, race

# LIM-001 is included on 2026-01-05 (factories); its baseline window runs from study day
# -28 (2025-12-08) to day 0.
DRAWN = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def count(db, model) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def uncollected(db) -> list[tuple[str, str, str]]:
    rows = db.session.execute(
        sa.select(UncollectedTube.tube_type, UncollectedTube.reason, UncollectedTube.note)
    )
    return sorted(tuple(row) for row in rows)


@pytest.fixture
def technician(make_user):
    return make_user("technician")


@pytest.fixture
def participant(sites, technician):
    return factories.participant("LIM", "G2", code="LIM-001", actor=technician)


def register(tubes, not_collected, *, actor, visit="BL", collected_on=None):
    return samples.register_collection(
        "LIM-001",
        visit,
        tubes,
        actor=actor,
        not_collected=not_collected,
        collected_on=collected_on,
    )


# --- the service -----------------------------------------------------------------------------


def test_a_tube_not_collected_is_recorded_with_its_reason_beside_the_collected_one(
    db, participant, technician
):
    result = register(
        [factories.tube("SST", collected_at=DRAWN)],
        [NotCollected("EDTA", "failed_draw", " two attempts ")],
        actor=technician,
    )

    assert [s.tube_type for s in result.specimens] == ["SST"]
    assert len(result.aliquots) == 5
    [record] = result.uncollected
    assert (record.tube_type, record.reason, record.note) == ("EDTA", "failed_draw", "two attempts")
    assert record.recorded_by_id == technician.id and record.recorded_at is not None
    shown = samples.visit_aliquots("LIM-001", "BL", actor=technician)
    assert [(u.tube_type, u.reason) for u in shown.uncollected] == [("EDTA", "failed_draw")]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (NotCollected("EDTA", ""), "EDTA.not_collected_reason"),
        (NotCollected("EDTA", "lost_in_the_post"), "EDTA.not_collected_reason"),
        (NotCollected("EDTA", "other", "   "), "EDTA.not_collected_note"),
        (NotCollected("EDTA", "other", "x" * 501), "EDTA.not_collected_note"),
        (NotCollected("CITRATE", "refused"), "CITRATE.tube_type"),
        (NotCollected("SST", "refused"), "SST.tube_type"),  # also entered as collected
    ],
)
def test_a_tube_not_collected_without_a_valid_reason_is_refused_naming_the_field(
    db, participant, technician, entry, field
):
    with pytest.raises(Invalid) as refusal:
        register([factories.tube("SST", collected_at=DRAWN)], [entry], actor=technician)
    assert list(refusal.value.fields) == [field]


def test_a_note_of_exactly_the_limit_is_accepted(db, participant, technician):
    note = "x" * samples.MAX_NOT_COLLECTED_NOTE
    result = register(
        [], [NotCollected("EDTA", "other", note)], actor=technician, collected_on=date(2026, 1, 5)
    )
    assert result.uncollected[0].note == note


def test_the_same_tube_not_collected_twice_is_refused(db, participant, technician):
    with pytest.raises(Invalid) as refusal:
        register(
            [],
            [NotCollected("EDTA", "refused"), NotCollected("EDTA", "broken")],
            actor=technician,
            collected_on=date(2026, 1, 5),
        )
    assert refusal.value.fields == {"EDTA.tube_type": "EDTA"}


def test_a_visit_where_no_tube_could_be_drawn_is_registered_on_the_day_given(
    db, participant, technician
):
    result = register(
        [],
        [NotCollected("SST", "failed_draw"), NotCollected("EDTA", "failed_draw")],
        actor=technician,
        collected_on=date(2026, 1, 5),
    )
    assert result.visit.collected_on == date(2026, 1, 5)
    assert result.specimens == [] and result.aliquots == []
    assert uncollected(db) == [("EDTA", "failed_draw", ""), ("SST", "failed_draw", "")]
    # The visit is registered: it is no longer offered to register.
    offered = study.visits_to_register(study.get_participant("LIM-001", actor=technician))
    assert "BL" not in [d.code for d in offered]


def test_a_visit_with_no_tube_drawn_needs_its_date(db, participant, technician):
    with pytest.raises(Invalid) as refusal:
        register([], [NotCollected("SST", "refused")], actor=technician)
    assert refusal.value.fields == {"collected_on": ""}
    assert count(db, Visit) == 0


def test_the_date_of_a_visit_with_no_tube_is_checked_against_its_window(
    db, participant, technician
):
    # M2: nominal day 56, 7 days before allowed: 2026-02-23 is its first day.
    with pytest.raises(Invalid) as refusal:
        register(
            [],
            [NotCollected("SST", "refused")],
            actor=technician,
            visit="M2",
            collected_on=date(2026, 2, 22),
        )
    assert refusal.value.code == "visit.too_early"
    assert refusal.value.fields == {"collected_on": "2026-02-22"}
    result = register(
        [],
        [NotCollected("SST", "refused")],
        actor=technician,
        visit="M2",
        collected_on=date(2026, 2, 23),
    )
    assert result.visit.study_day == 49 and not result.visit.out_of_window


def test_the_date_of_a_visit_with_no_tube_cannot_be_after_today_at_the_centre(
    db, participant, technician, monkeypatch
):
    # 23:30 UTC on 5 January is already 6 January in Limoges (UTC+1).
    monkeypatch.setattr(study, "utcnow", lambda: datetime(2026, 1, 5, 23, 30, tzinfo=UTC))
    with pytest.raises(Invalid) as refusal:
        register(
            [], [NotCollected("SST", "refused")], actor=technician, collected_on=date(2026, 1, 7)
        )
    assert refusal.value.fields == {"collected_on": "2026-01-07"}
    result = register(
        [], [NotCollected("SST", "refused")], actor=technician, collected_on=date(2026, 1, 6)
    )
    assert result.visit.collected_on == date(2026, 1, 6)


def test_the_tube_found_later_replaces_its_not_collected_record(db, participant, technician):
    register(
        [factories.tube("SST", collected_at=DRAWN)],
        [NotCollected("EDTA", "forgotten")],
        actor=technician,
    )
    db.session.commit()

    found = register([factories.tube("EDTA", collected_at=DRAWN)], [], actor=technician)

    assert [s.tube_type for s in found.specimens] == ["EDTA"]
    assert uncollected(db) == []
    assert count(db, Specimen) == 2 and count(db, Visit) == 1
    assert samples.visit_aliquots("LIM-001", "BL", actor=technician).uncollected == []


def test_a_tube_found_on_another_day_than_its_visit_is_refused_and_its_record_stays(
    app, db, participant, technician
):
    register(
        [factories.tube("SST", collected_at=DRAWN)],
        [NotCollected("EDTA", "forgotten")],
        actor=technician,
    )
    db.session.commit()
    with pytest.raises(Conflict):
        register(
            [factories.tube("EDTA", collected_at=datetime(2026, 1, 4, 8, tzinfo=UTC))],
            [],
            actor=technician,
        )
    db.session.rollback()
    assert uncollected(db) == [("EDTA", "forgotten", "")]


def test_a_registered_tube_cannot_be_recorded_as_not_collected(db, participant, technician):
    factories.visit("LIM-001", "BL", actor=technician)
    db.session.commit()
    with pytest.raises(Conflict) as refusal:
        register(
            [], [NotCollected("EDTA", "broken")], actor=technician, collected_on=date(2026, 1, 5)
        )
    assert refusal.value.code == "uncollected.registered"
    assert refusal.value.fields == {"EDTA.not_collected_reason": "broken"}


def test_recording_a_tube_not_collected_again_corrects_the_reason(db, participant, technician):
    register(
        [], [NotCollected("EDTA", "forgotten")], actor=technician, collected_on=date(2026, 1, 5)
    )
    register(
        [],
        [NotCollected("EDTA", "other", "clotted")],
        actor=technician,
        collected_on=date(2026, 1, 5),
    )
    assert uncollected(db) == [("EDTA", "other", "clotted")]


# --- the API ---------------------------------------------------------------------------------

TUBE = {
    "tube_type": "SST",
    "collected_at": "2026-01-05T08:30:00+01:00",
    "spun_at": "2026-01-05T09:30:00+01:00",
    "spin": {"temperature_c": 20, "force_g": 2000, "minutes": 10},
    "frozen_at": "2026-01-05T10:05:00+01:00",
}


@pytest.fixture
def api(api_as, participant):
    return api_as("technician")


def test_the_api_records_a_tube_not_collected_and_answers_it(db, api):
    body = ok(
        api.post(
            "/api/v1/specimens",
            json={
                "participant": "LIM-001",
                "visit": "BL",
                "tubes": [TUBE],
                "not_collected": [{"tube_type": "EDTA", "reason": "refused"}],
            },
        ),
        201,
    )
    assert [s["tube_type"] for s in body["specimens"]] == ["SST"]
    assert [(n["tube_type"], n["reason"], n["note"]) for n in body["not_collected"]] == [
        ("EDTA", "refused", "")
    ]


def test_the_api_registers_a_visit_where_no_tube_was_drawn(db, api):
    body = ok(
        api.post(
            "/api/v1/specimens",
            json={
                "participant": "LIM-001",
                "visit": "BL",
                "collected_on": "2026-01-05",
                "not_collected": [
                    {"tube_type": "SST", "reason": "failed_draw"},
                    {"tube_type": "EDTA", "reason": "failed_draw"},
                ],
            },
        ),
        201,
    )
    assert body["collected_on"] == "2026-01-05" and body["specimens"] == []


def test_the_api_refuses_an_unknown_reason_naming_the_field_and_writes_nothing(db, api):
    error = error_of(
        api.post(
            "/api/v1/specimens",
            json={
                "participant": "LIM-001",
                "visit": "BL",
                "tubes": [TUBE],
                "not_collected": [{"tube_type": "EDTA", "reason": "dropped"}],
            },
        ),
        400,
    )
    assert error["fields"] == {"EDTA.not_collected_reason": "dropped"}
    assert count(db, Visit) == 0 and count(db, Specimen) == 0


def test_a_refusal_found_once_the_visit_is_open_leaves_no_half_registered_visit(db, api):
    error = error_of(
        api.post(
            "/api/v1/specimens",
            json={
                "participant": "LIM-001",
                "visit": "BL",
                "tubes": [TUBE],
                "not_collected": [{"tube_type": "CITRATE", "reason": "refused"}],
            },
        ),
        400,
    )
    assert error["fields"] == {"CITRATE.tube_type": "CITRATE"}
    assert count(db, Visit) == 0 and count(db, Specimen) == 0 and uncollected(db) == []


# --- the registration page -------------------------------------------------------------------

SERUM = {
    "visit": "BL",
    "tubes-0-tube_type": "SST",
    "tubes-0-collected": "y",
    "tubes-0-collected_at": "2026-01-05T08:30",
    "tubes-0-precentrifugation_temperature": "RT",
    "tubes-0-spun_at": "2026-01-05T09:10",
    "tubes-0-spin_force_g": "2000",
    "tubes-0-spin_minutes": "10",
    "tubes-0-spin_temperature_c": "20",
    "tubes-0-spin_braking": "y",
    "tubes-0-postcentrifugation_temperature": "RT",
    "tubes-0-frozen_at": "2026-01-05T09:45",
    "tubes-0-storage_temperature_c": "-80",
    "tubes-1-tube_type": "EDTA",  # unticked: not collected
}
NEITHER = {
    "visit": "BL",
    "tubes-0-tube_type": "SST",
    "tubes-0-not_collected_reason": "refused",
    "tubes-1-tube_type": "EDTA",
    "tubes-1-not_collected_reason": "refused",
}


@pytest.fixture
def bench(login_as, participant):
    return login_as("technician")


def section(text: str, tube: str) -> str:
    found = re.search(rf'<fieldset class="tube" data-tube="{tube}">(.*?)</fieldset>', text, re.S)
    return found.group(1)


def test_the_form_asks_why_a_tube_was_not_collected_shown_while_it_is_unticked(bench):
    text = bench.get("/participants/LIM-001/register").get_data(as_text=True)
    edta = section(text, "EDTA")
    assert 'data-unless-checked="tubes-1-collected"' in edta
    assert 'name="tubes-1-not_collected_reason"' in edta
    assert 'value="failed_draw"' in edta and "blood draw failed" in edta
    assert 'data-unless-checked="tubes-0-collected tubes-1-collected"' in text  # visit date


def test_an_unticked_tube_with_its_reason_is_recorded_through_the_form(bench, db):
    response = bench.post(
        "/participants/LIM-001/register",
        data={
            **SERUM,
            "tubes-1-not_collected_reason": "broken",
            "tubes-1-not_collected_note": "dropped",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    page = html.unescape(bench.get(response.headers["Location"]).get_data(as_text=True))
    assert "registered: 5 aliquots" in page
    assert "Recorded as not collected: EDTA (tube broken)." in page
    rows = re.search(r'<table class="data uncollected">(.*?)</table>', page, re.S).group(1)
    assert "<td>EDTA</td><td>tube broken</td><td>dropped</td>" in rows
    assert uncollected(db) == [("EDTA", "broken", "dropped")]


def test_an_unticked_tube_without_a_reason_is_refused_on_its_field_and_nothing_is_written(
    bench, db
):
    text = refused(bench, bench.post("/participants/LIM-001/register", data=SERUM))
    assert "Say why this tube was not collected." in section(text, "EDTA")
    assert 'id="tubes-1-not_collected_reason"' in section(text, "EDTA")
    assert 'value="2026-01-05T08:30"' in section(text, "SST")  # what was typed comes back
    assert bench.get("/participants/LIM-001/visits/BL").status_code == 404
    assert count(db, Visit) == 0 and count(db, Specimen) == 0 and uncollected(db) == []


def test_the_reason_other_needs_a_note_on_the_form(bench, db):
    data = {**SERUM, "tubes-1-not_collected_reason": "other"}
    text = refused(bench, bench.post("/participants/LIM-001/register", data=data))
    assert "Required when the reason is “other”." in section(text, "EDTA")
    assert count(db, Visit) == 0


def test_a_visit_with_no_tube_drawn_is_registered_through_the_form_with_its_date(bench, db):
    response = bench.post(
        "/participants/LIM-001/register", data={**NEITHER, "collected_on": "2026-01-05"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/participants/LIM-001/visits/BL"
    assert uncollected(db) == [("EDTA", "refused", ""), ("SST", "refused", "")]


def test_a_visit_with_no_tube_drawn_and_no_date_is_refused_on_the_date(bench, db):
    text = refused(bench, bench.post("/participants/LIM-001/register", data=NEITHER))
    assert "No tube was drawn: enter the date of the visit." in text
    assert count(db, Visit) == 0


def test_a_visit_with_no_tube_drawn_dated_before_its_window_is_refused_on_the_date(bench, db):
    data = {**NEITHER, "collected_on": "2025-12-07"}  # the day before BL's window opens
    text = refused(bench, bench.post("/participants/LIM-001/register", data=data))
    date_field = re.search(r'<div class="visit-date"(.*?)</div>\s*</div>', text, re.S).group(1)
    assert "its earliest date is 2025-12-08" in date_field
    assert count(db, Visit) == 0


def test_the_found_tube_is_registered_from_the_visit_page_and_its_record_goes(bench, db):
    bench.post(
        "/participants/LIM-001/register",
        data={**SERUM, "tubes-1-not_collected_reason": "forgotten"},
    )
    visit_page = html.unescape(bench.get("/participants/LIM-001/visits/BL").get_data(as_text=True))
    link = "/participants/LIM-001/register?visit=BL&tube=EDTA"
    assert link in visit_page

    form = bench.get(link).get_data(as_text=True)
    assert 'data-tube="EDTA"' in form and 'data-tube="SST"' not in form
    assert re.search(r'<option selected value="BL">|<option value="BL" selected>', form)

    # The one section of the page is the EDTA tube's, drawn with the serum.
    edta = {key: value for key, value in SERUM.items() if key.startswith("tubes-0-")}
    response = bench.post(
        "/participants/LIM-001/register", data={**edta, "visit": "BL", "tubes-0-tube_type": "EDTA"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert uncollected(db) == []
    assert count(db, Specimen) == 2


@pytest.mark.slow
def test_a_tube_registered_and_recorded_as_not_drawn_at_once_is_never_both(app, db, sites):
    """One technician registers the EDTA tube of a visit while another records it as not
    drawn: the tube wins (registered first, the record is refused; recorded first, the
    registration replaces it), and the visit never holds both."""
    drawn = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 700}"
        factories.participant("LIM", code=code)
        factories.visit(code, "M2", tube_types=("SST",))

        def work(n, code=code):
            if n == 0:
                samples.register_collection(
                    code,
                    "M2",
                    [],
                    not_collected=[NotCollected("EDTA", "broken")],
                    collected_on=drawn.date(),
                    actor=None,
                )
            else:
                samples.register_collection(
                    code, "M2", [factories.tube("EDTA", collected_at=drawn)], actor=None
                )

        found = race(app, work, threads=2)
        assert found in (Counter({"ok": 2}), Counter({"ok": 1, "Conflict": 1})), found
        db.session.expire_all()
        visit = db.session.execute(
            sa.select(Visit).join(Visit.participant).where(Visit.participant.has(code=code))
        ).scalar_one()
        tubes = {
            s.tube_type
            for s in db.session.execute(
                sa.select(Specimen).where(Specimen.visit_id == visit.id)
            ).scalars()
        }
        assert tubes == {"SST", "EDTA"}
        records = db.session.execute(
            sa.select(UncollectedTube).where(UncollectedTube.visit_id == visit.id)
        ).all()
        assert records == []
