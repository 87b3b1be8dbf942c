"""The inventory template: an .xlsx to fill, with an instructions sheet.

The first sheet holds the header row only, in the reader's language (English or French
headers are both read back), its columns formatted so that a spreadsheet keeps codes as
text (a legacy code "00123" keeps its zeros) and shows dates and times as such. The
instructions sheet says what each column holds and how to write it, with an example row.
Every cell goes through biobank/tabular.py.
"""

from __future__ import annotations

import io
from datetime import date, datetime

from flask_babel import get_locale
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from biobank import tabular
from biobank.inventory.columns import COLUMNS, Column
from biobank.inventory.sheet import SHEET_NAMES

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_WRAP = Alignment(wrap_text=True, vertical="top")
# How the columns show what is typed into them.
_FORMATS = {
    "included_on": "yyyy-mm-dd",
    "consent_given_on": "yyyy-mm-dd",
    "collected_at": "yyyy-mm-dd hh:mm",
    "spun_at": "yyyy-mm-dd hh:mm",
    "frozen_at": "yyyy-mm-dd hh:mm",
}
_AS_TEXT = ("participant", "site", "arm", "visit", "tube_type", "legacy_barcode", "box", "position")
# The template offers one volume column, in microlitres.
_TEMPLATE_COLUMNS = [column for column in COLUMNS if column.key != "volume_ml"]


def _french() -> bool:
    return str(get_locale() or "en").startswith("fr")


def header_of(column: Column) -> str:
    """A column's header in the reader's language."""
    return column.french if _french() else column.key


def workbook() -> bytes:
    """The template, as the bytes of an .xlsx."""
    book = Workbook()
    rows = book.active
    rows.title = SHEET_NAMES[1] if _french() else SHEET_NAMES[0]
    _rows_sheet(rows)
    _instructions(book.create_sheet(_("Instructions")))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _rows_sheet(sheet) -> None:
    for number, column in enumerate(_TEMPLATE_COLUMNS, start=1):
        tabular.put(sheet, 1, number, header_of(column)).font = _BOLD
        letter = get_column_letter(number)
        sheet.column_dimensions[letter].width = max(14, len(header_of(column)) + 4)
        if column.key in _FORMATS:
            sheet.column_dimensions[letter].number_format = _FORMATS[column.key]
        elif column.key in _AS_TEXT:
            sheet.column_dimensions[letter].number_format = "@"
    sheet.freeze_panes = "A2"


def _instructions(sheet) -> None:
    lines = [
        _("Inventory template: one row per aliquot"),
        _(
            "Fill the first sheet, one row per aliquot already in a freezer. The rows of "
            "one participant, visit and tube type are one primary tube: give them the "
            "same times."
        ),
        _(
            "Headers may be in English or in French, in any order. Other columns are left "
            "out of the import and listed in its preview."
        ),
        _(
            "A participant new to the bank is enrolled: give their site, arm, inclusion "
            "date, consent date and disease status. For a participant the bank knows, "
            "these may be left empty; when given they must match."
        ),
        _(
            "Times without a time zone are read in the time zone of the participant's "
            "centre. Dates: 2026-01-05 or 05/01/2026 (day first)."
        ),
        _(
            "Each aliquot gets a new barcode of the bank; the code on its current label "
            "(legacy_barcode) still finds it when scanned. Print new labels after the "
            "import."
        ),
        _(
            "Boxes must be set up in the bank's storage first, unless a row gives "
            "box_type and rack: the box is then created in that rack."
        ),
        _(
            "Nothing is written until the preview shows no problem and the import is "
            "applied; a file is applied once."
        ),
    ]
    for number, text in enumerate(lines, start=1):
        tabular.put(sheet, number, 1, text)
    sheet["A1"].font = _TITLE
    top = len(lines) + 2
    headings = [
        _("Column"),
        _("Other language"),
        _("Required"),
        _("What it holds"),
        _("How to write it"),
        _("Example"),
    ]
    for number, heading in enumerate(headings, start=1):
        tabular.put(sheet, top, number, heading).font = _BOLD
    for offset, column in enumerate(COLUMNS, start=1):
        values = [
            header_of(column),
            column.key if _french() else column.french,
            _required(column),
            str(column.description),
            str(column.form),
            _example(column),
        ]
        for number, value in enumerate(values, start=1):
            tabular.put(sheet, top + offset, number, value).alignment = _WRAP
    _example_row(sheet, top + len(COLUMNS) + 2)
    for letter, width in zip("ABCDEF", (22, 22, 14, 48, 56, 22), strict=True):
        sheet.column_dimensions[letter].width = width


def _required(column: Column) -> str:
    if column.required:
        return _("yes")
    if column.key in ("site", "arm", "included_on", "consent_given_on", "disease_status"):
        return _("for a new participant")
    if column.key in ("box_type", "rack"):
        return _("for a new box")
    if column.key == "volume_ul":
        return _("yes (or volume_ml)")
    return _("no")


def _example(column: Column):
    value = column.example
    if column.key in ("included_on", "consent_given_on") and value:
        return date.fromisoformat(value)
    if column.key in ("collected_at", "spun_at", "frozen_at") and value:
        return datetime.fromisoformat(value)
    return value


def _example_row(sheet, top: int) -> None:
    tabular.put(sheet, top, 1, _("An example row, as the first sheet would hold it:")).font = _BOLD
    for number, column in enumerate(_TEMPLATE_COLUMNS, start=1):
        tabular.put(sheet, top + 1, number, header_of(column)).font = _BOLD
        cell = tabular.put(sheet, top + 2, number, _example(column))
        if column.key in _FORMATS:
            cell.number_format = _FORMATS[column.key]
