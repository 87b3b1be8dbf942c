"""Dates and times typed in the page's language.

Every date and time field of the pages is a text input, not the browser's picker: the
picker follows the browser's locale, not the page's (mm/dd/yyyy and AM/PM on a French page
in an English browser), and a technician with a keyboard-wedge scanner or a tablet types
faster than they pick. A French page reads day first (dd/mm/yyyy hh:mm); every page reads
ISO 8601 (yyyy-mm-dd hh:mm, with a space or a T, seconds optional), which the API, the
tests and the pages' own links send. An English page reads ISO only: 03/12/2026 is the
3rd of December in Britain and the 12th of March in America. Nothing else is guessed: a
value that matches none of these, or names no real day or time, is refused with a message
naming its field and the format expected. The times are naive: each view puts them in its
centre's time zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from flask_babel import LazyString, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import Field
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput

from biobank.errors import Invalid

_ISO_DATE = r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
_ISO_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
_DAY_FIRST_DATE = r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})"
_DAY_FIRST_TIME = r"(?P<hour>\d{1,2})[:hH](?P<minute>\d{2})"
ISO = (
    re.compile(rf"{_ISO_DATE}"),
    re.compile(rf"{_ISO_DATE}(?:T| +){_ISO_TIME}"),
)
DAY_FIRST = (
    re.compile(rf"{_DAY_FIRST_DATE}"),
    re.compile(rf"{_DAY_FIRST_DATE} +{_DAY_FIRST_TIME}"),
)
# What each language reads besides ISO, how it writes a value back, and the hints.
TYPED = {
    "fr": {
        "patterns": DAY_FIRST,
        "date": "%d/%m/%Y",
        "datetime": "%d/%m/%Y %H:%M",
        "date_hint": _l("dd/mm/yyyy"),
        "datetime_hint": _l("dd/mm/yyyy hh:mm"),
    },
}
ISO_ONLY = {
    "patterns": (),
    "date": "%Y-%m-%d",
    "datetime": "%Y-%m-%d %H:%M",
    "date_hint": _l("yyyy-mm-dd"),
    "datetime_hint": _l("yyyy-mm-dd hh:mm"),
}


def page_language() -> str:
    """The page's language ("fr", "en"); English outside the application."""
    locale = get_locale()
    return locale.language if locale else "en"


def _typed(language: str | None) -> dict:
    return TYPED.get(language or page_language(), ISO_ONLY)


def _read(text: str, with_time: bool, language: str | None) -> datetime:
    text = text.strip()
    for patterns in (ISO, _typed(language)["patterns"]):
        if not patterns:
            continue
        found = patterns[with_time].fullmatch(text)
        if found:
            parts = {key: int(value) for key, value in found.groupdict().items() if value}
            return datetime(**parts)  # ValueError for a day or time that does not exist
    raise ValueError(f"not a {'date and time' if with_time else 'date'}: {text!r}")


def parse_datetime(text: str, language: str | None = None) -> datetime:
    """A naive date and time typed in ``language`` (the page's by default) or in ISO 8601;
    ValueError if it is neither, or names no real moment."""
    return _read(text, True, language)


def parse_date(text: str, language: str | None = None) -> date:
    """A date typed in ``language`` (the page's by default) or in ISO 8601; ValueError
    otherwise."""
    return _read(text, False, language).date()


def parse(text: str, with_time: bool = True) -> datetime | date:
    """``parse_datetime`` or ``parse_date`` in the page's language."""
    return parse_datetime(text) if with_time else parse_date(text)


def shown(value: date | datetime | None, language: str | None = None) -> str:
    """``value`` as a field of the page shows it: the way its language types it."""
    if value is None:
        return ""
    kind = "datetime" if isinstance(value, datetime) else "date"
    return value.strftime(_typed(language)[kind])


def hint(with_time: bool = True, language: str | None = None) -> str:
    """The format a field expects, in the page's words: "jj/mm/aaaa hh:mm" in French."""
    return str(_typed(language)["datetime_hint" if with_time else "date_hint"])


def refusal(label, with_time: bool = True) -> str:
    """The message on a value that is no date: it names the field and the format."""
    if with_time:
        return _("%(field)s: enter a date and time as %(format)s.", field=label, format=hint())
    return _("%(field)s: enter a date as %(format)s.", field=label, format=hint(False))


def read_form(form, name: str, label, with_time: bool = True) -> datetime | date | None:
    """Field ``name`` of a plain (not WTForms) form: None when empty, and an ``Invalid``
    naming the field when it holds no date (or date and time)."""
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        return parse(text, with_time)
    except ValueError:
        raise Invalid(refusal(label, with_time), fields={name: text}) from None


class DateTimeText(Field):
    """A WTForms date and time typed as text (see the module). The expected format is
    its description, before any description it is given."""

    widget = TextInput()
    with_time = True

    def __init__(self, label=None, validators=None, description="", **kwargs):
        render_kw = {
            "autocomplete": "off",
            "spellcheck": "false",
            **(kwargs.pop("render_kw", None) or {}),
        }
        super().__init__(
            label,
            validators,
            description=LazyString(self._described, description),
            render_kw=render_kw,
            **kwargs,
        )

    def _described(self, description) -> str:
        shown_hint = hint(self.with_time)
        return f"{shown_hint} · {description}" if description else shown_hint

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return shown(self.data)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = valuelist[0].strip()
        self.data = None
        if not text:
            return
        try:
            self.data = parse(text, self.with_time)
        except ValueError:
            raise ValueError(refusal(self.label.text, self.with_time)) from None

    def pre_validate(self, form):
        # A value that is no date says so; DataRequired would replace it by "required".
        if self.process_errors:
            raise StopValidation()


class DateText(DateTimeText):
    """A WTForms date typed as text."""

    with_time = False
