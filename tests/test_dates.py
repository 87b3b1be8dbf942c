"""Dates and times typed in the page's language (biobank/dates.py)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from flask_babel import force_locale, gettext
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.validators import DataRequired, Optional

from biobank.dates import (
    DateText,
    DateTimeText,
    hint,
    parse_date,
    parse_datetime,
    read_form,
    shown,
)
from biobank.errors import Invalid

DECEMBER_3RD = datetime(2026, 12, 3, 9, 15)


@pytest.mark.parametrize(
    "typed",
    [
        "03/12/2026 09:15",
        "3/12/2026 9:15",
        " 03/12/2026  09h15 ",
        "2026-12-03T09:15",
        "2026-12-03 09:15",
    ],
)
def test_a_french_page_reads_the_day_first_and_iso(typed):
    assert parse_datetime(typed, "fr") == DECEMBER_3RD


@pytest.mark.parametrize("typed", ["2026-12-03T09:15", "2026-12-03 09:15", "2026-12-03T09:15:00"])
def test_an_english_page_reads_iso(typed):
    assert parse_datetime(typed, "en") == DECEMBER_3RD


@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("03/12/2026 09:15", "en"),  # the 3rd of December or the 12th of March: not guessed
        ("12/03/2026 9:15 AM", "fr"),
        ("03/12/26 09:15", "fr"),  # a two-digit year
        ("31/02/2026 09:15", "fr"),  # no such day
        ("03/12/2026 24:00", "fr"),  # no such time
        ("2026-12-03T09:15+01:00", "fr"),  # a zone: the page's centre gives it
        ("2026-12-03", "fr"),  # a date where a time is wanted
        ("03.12.2026 09:15", "fr"),
        ("tomorrow", "fr"),
        ("", "fr"),
    ],
)
def test_anything_else_is_refused(typed, language):
    with pytest.raises(ValueError):
        parse_datetime(typed, language)


def test_dates_alone():
    assert parse_date("03/12/2026", "fr") == parse_date("2026-12-03", "en") == date(2026, 12, 3)
    for typed, language in [("03/12/2026", "en"), ("2026-12-03 09:15", "fr"), ("2026-02-30", "en")]:
        with pytest.raises(ValueError):
            parse_date(typed, language)


def test_a_value_is_shown_and_hinted_as_its_page_types_it():
    assert shown(DECEMBER_3RD, "fr") == "03/12/2026 09:15"
    assert shown(DECEMBER_3RD, "en") == "2026-12-03 09:15"
    assert shown(date(2026, 12, 3), "fr") == "03/12/2026"
    assert shown(None, "fr") == ""
    # The French words are the catalogue's ("jj/mm/aaaa hh:mm"); the order is the code's.
    assert hint(True, "en") == "yyyy-mm-dd hh:mm"
    assert hint(False, "en") == "yyyy-mm-dd"
    assert str(hint(True, "fr")).count("/") == 2


class Tube(Form):
    collected_at = DateTimeText("Blood drawn at", validators=[Optional()])
    collected_on = DateText("Date of the visit", validators=[DataRequired()], description="Why")


def test_a_form_field_reads_the_pages_language_and_names_itself_when_refused(app):
    with app.test_request_context(), force_locale("fr"):
        form = Tube(MultiDict({"collected_at": "03/12/2026 09:15", "collected_on": "3/12/2026"}))
        assert form.validate(), form.errors
        assert (form.collected_at.data, form.collected_on.data) == (DECEMBER_3RD, date(2026, 12, 3))
        assert 'type="text"' in form.collected_at() and 'autocomplete="off"' in form.collected_at()
        assert str(form.collected_on.description) == f"{hint(False)} · Why"

        form = Tube(MultiDict({"collected_at": "12/31/2026 09:15", "collected_on": "31/02/2026"}))
        assert not form.validate()
        assert form.collected_at.data is None
        # The message names the field and the format, never replaced by "required".
        # In the page's language: "Blood drawn at : saisissez la date et l'heure au format…"
        assert form.errors == {
            "collected_at": [
                gettext(
                    "%(field)s: enter a date and time as %(format)s.",
                    field="Blood drawn at",
                    format=hint(),
                )
            ],
            "collected_on": [
                gettext(
                    "%(field)s: enter a date as %(format)s.",
                    field="Date of the visit",
                    format=hint(False),
                )
            ],
        }
        assert "saisissez" in form.errors["collected_on"][0]
        assert 'value="12/31/2026 09:15"' in form.collected_at()  # as typed, to correct


def test_a_form_field_shows_its_value_in_the_pages_language(app):
    with app.test_request_context(), force_locale("fr"):
        form = Tube(data={"collected_at": DECEMBER_3RD})
        assert 'value="03/12/2026 09:15"' in form.collected_at()
        assert Tube(MultiDict({"collected_at": ""})).collected_at.data is None


def test_a_plain_form_field(app):
    with app.test_request_context(), force_locale("en"):
        form = {"ended_at": "2026-12-03 09:15", "empty": " ", "wrong": "3/12/2026 9:15"}
        assert read_form(form, "ended_at", "Ended at") == DECEMBER_3RD
        assert read_form(form, "empty", "Ended at") is None
        assert read_form(form, "missing", "Ended at") is None
        with pytest.raises(Invalid) as refused:
            read_form(form, "wrong", "Ended at")
        assert refused.value.fields == {"wrong": "3/12/2026 9:15"}
        assert str(refused.value.message) == "Ended at: enter a date and time as yyyy-mm-dd hh:mm."
