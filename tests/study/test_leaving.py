"""A participant leaving the study: the record, its checks, the visits it refuses, and
who may record it."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from biobank.errors import Conflict, Invalid, NotFound
from biobank.samples.models import Aliquot
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from tests import factories
from tests.answers import error_of, ok
from tests.pages import refused
from tests.races import ROUNDS, race, race_pages

# LIM-001 (arm G2) is included on 2026-01-05: M2 falls on 2026-03-02 (day 56, ± 7 days).
M2_DAY = date(2026, 3, 2)


@pytest.fixture
def manager(make_user):
    return make_user("manager")


@pytest.fixture
def participant(sites):
    factories.participant("LIM", "G2", code="LIM-001")
    factories.visit("LIM-001", "BL")
    return study.get_participant("LIM-001", actor=None)


def drawn_on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, 30, tzinfo=UTC)


def leave(on: date, reason="progression", note="", *, actor=None):
    return study.record_leaving("LIM-001", on, reason, note, actor=actor)


def visit_count(db) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar()


# --- the service -----------------------------------------------------------------------------


def test_leaving_is_recorded_with_who_recorded_it_and_when(db, participant, manager):
    left = leave(date(2026, 2, 1), "other", "  moved abroad ", actor=manager)
    assert (left.left_on, left.left_reason, left.left_note) == (
        date(2026, 2, 1),
        "other",
        "moved abroad",
    )
    assert left.left_recorded_by_id == manager.id and left.left_recorded_at is not None


def test_leaving_is_not_a_consent_withdrawal_the_banked_samples_stay(db, participant):
    leave(date(2026, 2, 1))
    assert participant.consent_status == "given" and participant.consent_withdrawn_on is None
    statuses = db.session.execute(sa.select(Aliquot.status)).scalars().all()
    assert statuses and set(statuses) == {"registered"}


def test_a_visit_on_the_leaving_day_is_accepted_and_one_a_day_later_refused(db, participant, sites):
    factories.participant("LIM", "G2", code="LIM-002")
    factories.visit("LIM-002", "BL")
    for code in ("LIM-001", "LIM-002"):
        study.record_leaving(code, M2_DAY, "toxicity", "", actor=None)

    on_the_day = factories.visit("LIM-001", "M2", on=drawn_on(M2_DAY))
    assert on_the_day.visit.collected_on == M2_DAY
    with pytest.raises(Conflict) as refusal:
        factories.visit("LIM-002", "M2", on=drawn_on(date(2026, 3, 3)))
    assert refusal.value.code == "visit.after_leaving"
    assert refusal.value.fields == {"SST.collected_at": "2026-03-03"}
    assert "LIM-002 left the study on 2026-03-02" in str(refusal.value.message)


def test_leaving_before_a_registered_visit_is_refused_naming_that_visit(db, participant):
    factories.visit("LIM-001", "M2", on=drawn_on(M2_DAY))
    with pytest.raises(Conflict) as refusal:
        leave(date(2026, 3, 1))
    assert refusal.value.code == "leaving.before_visit"
    assert "Visit M2" in str(refusal.value.message) and "2026-03-02" in str(refusal.value.message)
    assert refusal.value.fields == {"left_on": "2026-03-01"}
    assert leave(M2_DAY).left_on == M2_DAY  # the day of the last visit itself is fine


def test_leaving_before_inclusion_is_refused_and_on_the_inclusion_day_accepted(db, sites):
    factories.participant("LIM", "G2", code="LIM-001")  # no visit yet
    with pytest.raises(Invalid) as refusal:
        leave(date(2026, 1, 4))
    assert refusal.value.fields == {"left_on": "2026-01-04"}
    assert leave(date(2026, 1, 5)).left_on == date(2026, 1, 5)


def test_a_leaving_date_after_today_at_the_centre_is_refused(db, participant, monkeypatch):
    # 23:30 UTC on 9 March is already 10 March in Limoges (UTC+1): 10 March is today there.
    monkeypatch.setattr(study, "utcnow", lambda: datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
    with pytest.raises(Invalid) as refusal:
        leave(date(2026, 3, 11))
    assert refusal.value.fields == {"left_on": "2026-03-11"}
    assert "today is 2026-03-10 at LIM" in str(refusal.value.message)
    assert leave(date(2026, 3, 10)).left_on == date(2026, 3, 10)


@pytest.mark.parametrize(
    ("reason", "note", "field"),
    [
        ("bored", "", "reason"),
        ("", "", "reason"),
        ("other", "  ", "note"),
        ("other", "x" * (study.MAX_LEAVING_NOTE + 1), "note"),
    ],
)
def test_a_reason_not_in_the_list_or_other_without_a_note_is_refused(
    db, participant, reason, note, field
):
    with pytest.raises(Invalid) as refusal:
        leave(date(2026, 2, 1), reason, note)
    assert list(refusal.value.fields) == [field]
    assert participant.left_on is None


def test_a_correction_replaces_the_record(db, participant, make_user):
    first, second = make_user("manager"), make_user("manager")
    leave(date(2026, 2, 1), "progression", "", actor=first)
    corrected = leave(date(2026, 2, 3), "death", "", actor=second)
    assert (corrected.left_on, corrected.left_reason) == (date(2026, 2, 3), "death")
    assert corrected.left_recorded_by_id == second.id


def test_a_manager_of_another_centre_cannot_find_the_participant(db, participant, make_user):
    paris = make_user("manager", site="PAR")
    with pytest.raises(NotFound):
        leave(date(2026, 2, 1), actor=paris)


# --- the API ---------------------------------------------------------------------------------

BODY = {"left_on": "2026-02-01", "reason": "progression", "note": "CT scan"}


def test_the_api_records_leaving_and_the_participant_shows_it(db, participant, api_as):
    manager = api_as("manager")
    body = ok(manager.post("/api/v1/participants/LIM-001/leaving", json=BODY))
    assert (body["left_on"], body["left_reason"], body["left_note"]) == (
        "2026-02-01",
        "progression",
        "CT scan",
    )
    shown = ok(manager.get("/api/v1/participants/LIM-001"))
    assert shown["left_on"] == "2026-02-01" and shown["consent_status"] == "given"
    listed = ok(manager.get("/api/v1/participants"))["items"]
    assert listed[0]["left_reason"] == "progression"


def test_the_api_refuses_a_technician(db, participant, api_as):
    error_of(api_as("technician").post("/api/v1/participants/LIM-001/leaving", json=BODY), 403)
    db.session.expire_all()
    assert db.session.get(Participant, participant.id).left_on is None


def test_the_api_answers_404_to_a_manager_of_another_centre(db, participant, api_as):
    paris = api_as("manager", site="PAR")
    error_of(paris.post("/api/v1/participants/LIM-001/leaving", json=BODY), 404)


def test_the_api_names_the_field_of_an_unknown_reason(db, participant, api_as):
    error = error_of(
        api_as("manager").post(
            "/api/v1/participants/LIM-001/leaving", json={**BODY, "reason": "bored"}
        ),
        400,
    )
    assert error["fields"] == {"reason": "bored"}


# --- the participant page --------------------------------------------------------------------

FORM = {"left_on": "2026-02-01", "left_reason": "progression", "left_note": "CT scan"}


def page_text(client, url: str) -> str:
    return html.unescape(client.get(url).get_data(as_text=True))


def test_a_manager_records_leaving_through_the_participant_page(db, participant, login_as):
    manager = login_as("manager")
    form = page_text(manager, "/participants/LIM-001")
    assert 'action="/participants/LIM-001/leaving"' in form
    assert '<option value="lost_to_follow_up">lost to follow-up</option>' in form

    response = manager.post("/participants/LIM-001/leaving", data=FORM)
    assert response.status_code == 303
    assert response.headers["Location"] == "/participants/LIM-001"
    text = page_text(manager, "/participants/LIM-001")
    assert "Left the study on Feb 1, 2026 — disease progression (CT scan)" in text
    # The form now corrects the record, starting from it.
    assert "Correct the record of leaving the study" in text
    assert 'value="2026-02-01"' in text and '<option selected value="progression">' in text
    listed = page_text(manager, "/participants")
    assert re.search(r"LIM-001</a> <span class=\"badge left-study\"[^>]*>left the study<", listed)


def test_a_refused_leaving_date_is_shown_on_its_field_and_nothing_is_written(
    db, participant, login_as
):
    factories.visit("LIM-001", "M2", on=drawn_on(M2_DAY))
    manager = login_as("manager")
    data = {**FORM, "left_on": "2026-03-01"}
    text = refused(manager, manager.post("/participants/LIM-001/leaving", data=data))
    field = re.search(r'<div class="field\s+has-error">(.*?)</div>', text, re.S).group(1)
    assert 'name="left_on"' in field and "Visit M2 of LIM-001 was collected on 2026-03-02" in field
    assert 'value="2026-03-01"' in field  # what was typed comes back to be corrected
    db.session.expire_all()
    assert db.session.get(Participant, participant.id).left_on is None


def test_the_note_is_required_for_other_on_the_page(db, participant, login_as):
    manager = login_as("manager")
    data = {**FORM, "left_reason": "other", "left_note": ""}
    text = refused(manager, manager.post("/participants/LIM-001/leaving", data=data))
    field = re.search(r'<div class="field\s+has-error">(.*?)</div>', text, re.S).group(1)
    assert 'name="left_note"' in field


def test_a_technician_sees_no_form_and_cannot_post_it(db, participant, login_as):
    technician = login_as("technician")
    assert "/leaving" not in page_text(technician, "/participants/LIM-001")
    assert technician.post("/participants/LIM-001/leaving", data=FORM).status_code == 403
    db.session.expire_all()
    assert db.session.get(Participant, participant.id).left_on is None


def test_a_manager_of_another_centre_gets_not_found(db, participant, login_as):
    paris = login_as("manager", site="PAR")
    assert paris.post("/participants/LIM-001/leaving", data=FORM).status_code == 404


def test_the_forms_address_opened_by_a_get_shows_the_participant(db, participant, login_as):
    response = login_as("manager").get("/participants/LIM-001/leaving")
    assert response.status_code == 303
    assert response.headers["Location"] == "/participants/LIM-001"


def test_registering_a_visit_after_leaving_is_refused_on_the_form(db, participant, login_as):
    leave(date(2026, 3, 1))
    technician = login_as("technician")
    data = {
        "visit": "M2",
        "tubes-0-tube_type": "SST",
        "tubes-0-collected": "y",
        "tubes-0-collected_at": "2026-03-02T08:30",
        "tubes-0-precentrifugation_temperature": "RT",
        "tubes-0-spun_at": "2026-03-02T09:10",
        "tubes-0-spin_force_g": "2000",
        "tubes-0-spin_minutes": "10",
        "tubes-0-spin_temperature_c": "20",
        "tubes-0-postcentrifugation_temperature": "RT",
        "tubes-0-frozen_at": "2026-03-02T09:45",
        "tubes-0-storage_temperature_c": "-80",
        "tubes-1-tube_type": "EDTA",
        "tubes-1-not_collected_reason": "refused",
    }
    text = refused(technician, technician.post("/participants/LIM-001/register", data=data))
    assert "LIM-001 left the study on 2026-03-01: visit M2, collected on 2026-03-02" in text
    assert visit_count(db) == 1  # the baseline only


@pytest.mark.slow
def test_leaving_and_a_later_visit_at_the_same_moment_keep_one_of_them(app, db, sites):
    """A manager records that the participant left on day 5 while a technician registers
    month 2 (day 56): whichever comes second is refused, never both kept."""
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 500}"
        factories.participant("LIM", code=code)
        db.session.commit()

        def work(n, code=code):
            if n == 0:
                study.record_leaving(code, date(2026, 1, 10), "toxicity", actor=None)
            else:
                factories.visit(code, "M2")

        outcomes = race(app, work, threads=2)
        assert outcomes == Counter({"ok": 1, "Conflict": 1}), (code, outcomes)
        db.session.expire_all()
        participant = study.get_participant(code, actor=None)
        visits = [visit.visit_code for visit in participant.visits]
        assert (participant.left_on is None) == (visits == ["M2"]), (code, visits)


@pytest.mark.slow
def test_leaving_and_a_later_visit_sent_from_two_pages_at_once_keep_one(app, db, sites, login_as):
    from tests.samples.test_views import FORM as REGISTRATION  # month 2, drawn 2026-03-02

    manager, technician = login_as("manager"), login_as("technician")
    leaving = {"left_on": "2026-01-10", "left_reason": "toxicity", "left_note": ""}
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 600}"
        factories.participant("LIM", code=code)  # included on 2026-01-05
        answers = race_pages(
            app,
            [
                lambda code=code: manager.post(f"/participants/{code}/leaving", data=leaving),
                lambda code=code: technician.post(
                    f"/participants/{code}/register", data=REGISTRATION
                ),
            ],
        )
        assert all(not isinstance(a, Exception) for a in answers), answers
        assert [a.status_code for a in answers] == [303, 303], answers
        db.session.expire_all()
        participant = study.get_participant(code, actor=None)
        visits = [visit.visit_code for visit in participant.visits]
        left = participant.left_on is not None
        assert left != (visits == ["M2"]), (code, participant.left_on, visits)
        # The second is sent back to its form and told why nothing was written.
        if left:
            told = page_text(technician, answers[1].headers["Location"])
            assert f"{code} left the study on 2026-01-10: visit M2" in told
        else:
            told = page_text(manager, answers[0].headers["Location"])
            assert "the leaving date cannot be before a registered visit" in told
