"""The day a plate was read, from the metadata a reader writes above its readings.

Readers label it differently (Gen5 "Date", Tecan "Start Time:", SoftMax "Date Read",
others "Measurement date", French "Date de mesure", German "Datum") and write it in the
computer's locale: "12/3/2026", "03.12.2026", "2026-12-03", "3 déc. 2026", or as an Excel
date. Day and month of a numeric date are told apart by the numbers (a day over 12),
by dots (day first wherever they are used), or by the file's clock: a time written with
AM/PM is the American locale, month first; a 24-hour time ("09:41:12") is not, day first.
A date still ambiguous ("03/04/2026" and no time in the file) is reported with both
readings: the person importing says which, nothing is guessed.

Pure: plain values in, a :class:`Found` out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

# Labels of the read date, most specific first: a file with "Start Time" and "Date" (the
# date the export was written, on some readers) is dated by its start time.
LABELS = (
    "start time", "starttime", "read start", "plate read time", "read time", "date read",
    "read date", "reading date", "date of reading", "measurement date", "date of measurement",
    "measured on", "measurement time", "acquisition date", "run date", "date time", "datetime",
    "date de mesure", "date de lecture", "date d acquisition", "heure de debut", "debut",
    "messdatum", "startzeit", "datum", "date",
)  # fmt: skip
# Only the top of a sheet is metadata; further down a "Date" is a column of data.
ROWS_LOOKED_AT = 200

MONTHS = {
    "jan": 1, "janv": 1, "january": 1, "janvier": 1, "januar": 1, "jän": 1,
    "feb": 2, "fev": 2, "fevr": 2, "february": 2, "fevrier": 2, "februar": 2,
    "mar": 3, "mars": 3, "march": 3, "marz": 3, "maerz": 3,
    "apr": 4, "avr": 4, "april": 4, "avril": 4,
    "may": 5, "mai": 5,
    "jun": 6, "juin": 6, "june": 6, "juni": 6,
    "jul": 7, "juil": 7, "july": 7, "juillet": 7, "juli": 7,
    "aug": 8, "aou": 8, "aout": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "septembre": 9,
    "oct": 10, "okt": 10, "october": 10, "octobre": 10, "oktober": 10,
    "nov": 11, "november": 11, "novembre": 11,
    "dec": 12, "dez": 12, "december": 12, "decembre": 12, "dezember": 12,
}  # fmt: skip

_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)")
_DAY_MONTH_NAME = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th|er)?\.?\s+([^\W\d_]+)\.?,?\s+(\d{4})")
_MONTH_NAME_DAY = re.compile(r"([^\W\d_]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_AM_PM = re.compile(r"\d\s*[AaPp]\.?[Mm]\b\.?")
_CLOCK = re.compile(r"(?<![\d.])\d{1,2}:\d{2}(?::\d{2})?(?![\d.])")


@dataclass(frozen=True)
class Found:
    """The read date as the file gives it. ``day`` is None when ``choices`` holds the two
    days an ambiguous "03/04/2026" may be."""

    day: date | None
    text: str  # as written
    place: str  # "sheet "Results", cell B4" or "line 4"
    choices: tuple[date, date] | None = None


def find(grids: Iterable[tuple[str | None, list[list[object]]]]) -> Found | None:
    """The read date of a file given as (sheet name or None for CSV, rows of cells)."""
    candidates: list[tuple[int, tuple[object, str]]] = []
    clocks: set[bool] = set()  # True for an AM/PM time, False for a 24-hour one
    for sheet, rows in grids:
        for r, row in enumerate(rows[:ROWS_LOOKED_AT]):
            clocks.update(
                bool(_AM_PM.search(v)) for v in row if isinstance(v, str) and _CLOCK.search(v)
            )
            for c, value in enumerate(row):
                rank, rest = _label(value)
                if rank is None:
                    continue
                for text, where in [(rest, c), *((v, k) for k, v in enumerate(row) if k > c)]:
                    if _plain(text) == "":
                        continue
                    candidates.append((rank, (text, _place(sheet, r, where))))
                    break
    american = True if clocks == {True} else False if clocks == {False} else None
    ranked = sorted(candidates, key=lambda item: item[0])
    for _rank, (value, place) in ranked:
        found = read_date(value, place, american=american)
        if found is not None:
            return found
    return None


def read_date(value: object, place: str = "", *, american: bool | None = None) -> Found | None:
    """A cell's date, or None when it holds none. ``american``: the file's times are
    written with AM/PM (True: month first) or on a 24-hour clock (False: day first);
    None when it has no time to tell."""
    if isinstance(value, datetime):
        return Found(value.date(), value.isoformat(sep=" "), place)
    if isinstance(value, date):
        return Found(value, value.isoformat(), place)
    text = _plain(value)
    if not text:
        return None
    if match := _ISO.search(text):
        day = _day(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        return Found(day, text, place) if day else None
    if match := _NUMERIC.search(text):
        if _CLOCK.search(text):
            american = bool(_AM_PM.search(text))
        return _numeric(match, text, place, american=american)
    for pattern, order in ((_DAY_MONTH_NAME, (3, 2, 1)), (_MONTH_NAME_DAY, (3, 1, 2))):
        if match := pattern.search(text):
            year, month, day = (match.group(k) for k in order)
            number = MONTHS.get(_folded(month).rstrip("."))
            found = _day(int(year), number, int(day)) if number else None
            if found:
                return Found(found, text, place)
    return None


def _numeric(match: re.Match, text: str, place: str, *, american: bool | None) -> Found | None:
    first, separator, second, year = match.groups()
    a, b, y = int(first), int(second), int(year)
    y += 2000 if y < 100 else 0
    day_first, month_first = _day(y, b, a), _day(y, a, b)
    if separator == ".":  # dotted dates are day first wherever they are written
        month_first = None
    if day_first and month_first and day_first != month_first:
        if american is None:
            return Found(None, text, place, (day_first, month_first))
        return Found(month_first if american else day_first, text, place)
    found = day_first or month_first
    return Found(found, text, place) if found else None


def _day(year: int, month: int | None, day: int) -> date | None:
    if month is None or not 1990 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _label(value: object) -> tuple[int | None, str]:
    """(rank of the date label the cell starts with, what follows it in the cell)."""
    if not isinstance(value, str):
        return None, ""
    head, colon, rest = value.partition(":")
    words = _folded(head)
    if words in LABELS:
        return LABELS.index(words), rest if colon else ""
    # "Date 12/3/2026" in one cell: a label, a space, the date.
    for rank, label in enumerate(LABELS):
        if _folded(value).startswith(label + " ") and any(ch.isdigit() for ch in value):
            return rank, value[len(label) :].strip()
    return None, ""


def _folded(text: str) -> str:
    """Lower case, accents dropped, punctuation made spaces, spaces single."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", plain.casefold()).split()).strip(" .")


def _plain(value: object) -> str:
    return "" if value is None else str(value).strip()


def _place(sheet: str | None, r: int, c: int) -> str:
    if sheet is None:
        return f"line {r + 1}"
    column = ""
    n = c + 1
    while n:
        n, rest = divmod(n - 1, 26)
        column = chr(65 + rest) + column
    return f'sheet "{sheet}", cell {column}{r + 1}'
