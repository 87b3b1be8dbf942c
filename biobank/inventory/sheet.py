"""The rows of an uploaded inventory file (.xlsx or .csv), read within the upload limits.

Every byte goes through :mod:`biobank.uploads`, as every uploaded spreadsheet does: an
.xlsx is checked part by part (a zip bomb, a sheet claiming the whole grid) before
calamine reads it (``uploads.open_fast_workbook``: an inventory may have tens of
thousands of rows), a CSV line by line; the first cap exceeded refuses the file with
``uploads.TooLarge``, naming the limit.

.xlsx: the sheet named "Inventory" (or "Inventaire") if there is one, else the first
sheet. .csv: comma, semicolon or tab separated (the one under which the header row
appears), UTF-8 with or without a byte-order mark, UTF-16 with one, else cp1252.

Pure: nothing here reads the database or a request; the limits are the caller's.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l

from biobank import uploads
from biobank.errors import Invalid
from biobank.inventory.columns import HEADER_SEARCH_ROWS, find_header, header_key
from biobank.uploads import UploadLimits

__all__ = ["SHEET_NAMES", "rows_of"]

# The sheet of the template that holds the rows, in either language.
SHEET_NAMES = ("Inventory", "Inventaire")
_SHEET_KEYS = {header_key(name) for name in SHEET_NAMES}
_DELIMITERS = ("\t", ";", ",")

Row = tuple[int, Sequence[Any]]  # the spreadsheet's row number, and its cells


def rows_of(data: bytes, filename: str, limits: UploadLimits) -> Iterator[Row]:
    """The rows of the file, each with the number a spreadsheet shows for it (for a CSV,
    the line it starts on); wholly empty rows are left out. Raises Invalid naming the
    file when it cannot be read, ``uploads.TooLarge`` when it is over a limit."""
    suffix = Path(filename).suffix.lower()
    if data.startswith(b"PK\x03\x04"):
        return _xlsx_rows(data, filename, limits)
    if data.startswith(b"\xd0\xcf\x11\xe0") or suffix == ".xls":
        raise _unreadable(
            _l(
                "%(name)s is an old Excel 97-2003 workbook: save it as .xlsx (or .csv) and "
                "upload it again.",
                name=filename,
            ),
            filename,
        )
    if suffix in (".xlsx", ".xlsm") or suffix not in (".csv", ".txt", ".tsv", ""):
        raise _unreadable(
            _l("%(name)s is not an .xlsx workbook nor a .csv file.", name=filename), filename
        )
    uploads.check_text_size(data, filename=filename, limits=limits)
    return _csv_rows(_decode(data), filename, limits)


def _unreadable(message, filename: str) -> Invalid:
    return Invalid(message, code="inventory.unreadable", fields={"file": filename})


def _xlsx_rows(data: bytes, filename: str, limits: UploadLimits) -> Generator[Row, None, None]:
    try:
        workbook = uploads.open_fast_workbook(data, filename=filename, limits=limits)
    except uploads.TooLarge:
        raise
    except Exception as err:  # zipfile, the XML parser and calamine raise their own errors
        raise _unreadable(
            _l("%(name)s is not a readable .xlsx workbook.", name=filename), filename
        ) from err
    with workbook:
        titles = workbook.titles
        if not titles:
            raise _unreadable(_l("%(name)s has no worksheet.", name=filename), filename)
        title = next((t for t in titles if header_key(t) in _SHEET_KEYS), titles[0])
        try:
            rows = workbook.rows(title)
            for number, cells in enumerate(rows, start=1):
                if any(cell is not None and cell != "" for cell in cells):
                    yield number, cells
        except (uploads.TooLarge, Invalid):
            raise
        except Exception as err:
            raise _unreadable(
                _l(
                    "%(name)s, sheet “%(sheet)s”, is damaged: save it again from the "
                    "spreadsheet program.",
                    name=filename,
                    sheet=title,
                ),
                filename,
            ) from err


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: read as the bytes below
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Windows exports are in the ANSI code page, cp1252 in Western Europe; latin-1
        # decodes the five bytes cp1252 leaves undefined.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _delimiter(lines: list[str]) -> str:
    """The delimiter under which a header row appears in the first lines; else the one
    they hold most of."""
    head = lines[:HEADER_SEARCH_ROWS]
    by_count = sorted(_DELIMITERS, key=lambda d: -sum(line.count(d) for line in head))
    for delimiter in by_count:
        try:
            rows = list(enumerate(csv.reader(iter(head), delimiter=delimiter), start=1))
        except csv.Error:
            continue
        if find_header(rows) is not None:
            return delimiter
    return by_count[0]


def _csv_rows(text: str, filename: str, limits: UploadLimits) -> Generator[Row, None, None]:
    if "\x00" in text:
        raise _unreadable(
            _l("%(name)s is not a text file: save the sheet as CSV or .xlsx.", name=filename),
            filename,
        )
    lines = uploads.text_lines(text, filename=filename, limits=limits)
    try:
        for line, cells in uploads.csv_rows(
            lines, _delimiter(lines), filename=filename, limits=limits
        ):
            if any(cell.strip() for cell in cells):
                yield line, cells
    except uploads.CsvError as err:
        raise _unreadable(
            _l("%(name)s, line %(line)d, is not readable as CSV.", name=filename, line=err.line),
            filename,
        ) from err
