"""Reading uploaded spreadsheets and text files within limits.

An uploaded file is read by code that trusts its shape: a workbook of a few kilobytes
can declare a sheet as large as Excel allows (a cell in A1 and one in XFD1048576) or
pack millions of cells into a zip of a few hundred kilobytes, and a CSV can be one
endless line. Every reader of an uploaded spreadsheet or CSV (plate reader exports, plate
maps, result sheets, rack scans) goes through this module, which reads within the caps of
:class:`UploadLimits` and refuses a file as soon as one is exceeded, with a
:class:`TooLarge` error (a domain error, 400) that names the limit and where in the file
it was exceeded.

``.xlsx`` (:func:`open_workbook`): before openpyxl parses anything, every part of the zip
is checked: how many parts, what they declare they unpack to and how tightly they are
packed, then what they actually unpack to, read in chunks and parsed by a streaming XML
parser that only counts (sheets, rows, columns and cells that hold a value, cells and
shared strings looked at, other elements) and stops at the first cap. Only then does
openpyxl open the workbook, read-only and with the values Excel last computed
(``data_only``), and :meth:`Workbook.rows` reads each sheet up to its last cell with a
value, found by that count: a sheet's recorded ``<dimension>`` is never trusted, and
trailing empty cells and rows are never materialised. :func:`open_fast_workbook` makes
the same checks and reads the values with calamine instead, for large files.

``.csv`` / ``.txt``: :func:`check_text_size` before decoding, :func:`text_lines` (lines,
and the length of each) and :func:`csv_rows` (columns and cells) while reading.

The limits come from the settings (``UPLOAD_*`` in biobank/config.py) through
:func:`current_limits`, which gives the defaults outside an application, so the readers
stay usable, and testable, without one.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from xml.parsers import expat

import openpyxl
from flask import current_app, has_app_context, has_request_context
from flask_babel import format_decimal, gettext
from python_calamine import CalamineWorkbook

from biobank.config import Defaults
from biobank.errors import Invalid, size_text

__all__ = [
    "CsvError",
    "TooLarge",
    "Unreadable",
    "UploadLimits",
    "Workbook",
    "check_columns",
    "check_text_size",
    "csv_rows",
    "current_limits",
    "open_fast_workbook",
    "open_workbook",
    "text_lines",
]


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded file may hold; the settings ``UPLOAD_<NAME>`` (upper case)."""

    max_sheets: int = Defaults.UPLOAD_MAX_SHEETS
    max_rows: int = Defaults.UPLOAD_MAX_ROWS
    max_columns: int = Defaults.UPLOAD_MAX_COLUMNS
    max_cells: int = Defaults.UPLOAD_MAX_CELLS
    max_unzipped_bytes: int = Defaults.UPLOAD_MAX_UNZIPPED_BYTES
    max_zip_ratio: int = Defaults.UPLOAD_MAX_ZIP_RATIO
    max_text_bytes: int = Defaults.UPLOAD_MAX_TEXT_BYTES
    max_line_length: int = Defaults.UPLOAD_MAX_LINE_LENGTH

    @classmethod
    def from_config(cls, config: Mapping) -> UploadLimits:
        """The limits set in ``config`` (``UPLOAD_MAX_ROWS`` …), the defaults for the rest."""
        given = {}
        for item in fields(cls):
            key = f"UPLOAD_{item.name.upper()}"
            if config.get(key) is not None:
                given[item.name] = int(config[key])
        return cls(**given)


def current_limits() -> UploadLimits:
    """The limits of the running application, or the defaults outside one (a script, a
    unit test of a reader)."""
    if has_app_context():
        return UploadLimits.from_config(current_app.config)
    return UploadLimits()


class TooLarge(Invalid):
    """An uploaded file exceeds one of the limits: it is refused, nothing is written."""

    default_code = "upload.limit"


class Unreadable(ValueError):
    """The file is damaged in a way the limits' check noticed (the caller words it as it
    words any unreadable file of its kind)."""


class CsvError(csv.Error):
    """A line the csv module cannot read; ``line`` is where the row started."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


# Parts of one workbook: a real one has ten to a few hundred (sheets, drawings, images).
MAX_PARTS = 1_000
# A part packed tighter than max_zip_ratio is refused only from this size on: small
# parts (styles, an empty sheet) pack very tightly and harm nothing.
RATIO_FROM_BYTES = 1024 * 1024
# Elements of one part that are neither cells, rows nor shared strings (styles, column
# widths, conditional formats, names…), all of which openpyxl builds objects for. Real
# files have a few thousand; openpyxl needs about a kilobyte and 25 µs for each.
MAX_OTHER_ELEMENTS = 100_000
# Elements of the whole workbook, for each cell allowed: a cell, its value and a share of
# its row and shared string.
ELEMENTS_PER_CELL = 4
CHUNK = 64 * 1024

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_RELATIONSHIP_ID = "http://schemas.openxmlformats.org/officeDocument/2006/relationships id"
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?[0-9]+")


# --------------------------------------------------------------------------- messages


def _number(value: int) -> str:
    """A count as the reader writes numbers ("50,000", "50 000")."""
    return format_decimal(value) if has_request_context() else f"{value:,}"


def _refuse(message: str, filename: str | None) -> TooLarge:
    text = f"{filename}: {message}" if filename else message
    return TooLarge(text, fields={"file": text})


def _column_name(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# --------------------------------------------------------------------------- workbooks


@dataclass
class _Sheet:
    """What the check found in one worksheet part: where its last value is."""

    last_row: int = 0
    last_column: int = 0


@dataclass
class _Package:
    """The workbook being checked: its counts so far, and what names its sheets."""

    limits: UploadLimits
    filename: str | None
    cells: int = 0
    strings: int = 0
    sheets: int = 0
    elements: int = 0
    found: dict[str, _Sheet] = field(default_factory=dict)
    # For naming a sheet in a message: the workbook part, its sheets (name, relationship
    # id), and each relationships part's targets.
    workbook_part: str | None = None
    sheet_ids: list[tuple[str, str]] = field(default_factory=list)
    targets: dict[str, dict[str, str]] = field(default_factory=dict)

    def title_of(self, part: str) -> str:
        """The sheet's name as the user sees it in the workbook, else the part's path."""
        if self.workbook_part is not None:
            folder, name = posixpath.split(self.workbook_part)
            targets = self.targets.get(posixpath.join(folder, "_rels", f"{name}.rels"), {})
            for title, rid in self.sheet_ids:
                target = targets.get(rid)
                if target is None:
                    continue
                path = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}"
                if posixpath.normpath(path) == part:
                    return title
        return part


class _PartCheck:
    """The counting handlers of expat for one part; a cap exceeded raises at once."""

    def __init__(self, package: _Package, part: str) -> None:
        self.package = package
        self.part = part
        self.limits = package.limits
        self.sheet = _Sheet()
        self.root: str | None = None
        self.inside = 0  # depth inside a cell or a shared string
        self.row = 0
        self.column = 0
        self.cell_column = 0
        self.others = 0
        self.element_cap = ELEMENTS_PER_CELL * self.limits.max_cells + MAX_OTHER_ELEMENTS

    def start(self, name: str, attributes: dict[str, str]) -> None:
        package = self.package
        package.elements += 1
        if package.elements > self.element_cap:
            raise _refuse(
                gettext(
                    "The workbook holds more than %(limit)s XML elements, the limit for an upload.",
                    limit=_number(self.element_cap),
                ),
                package.filename,
            )
        namespace, _, local = name.rpartition(" ")
        if self.root is None:
            self.root = local
            if namespace == _MAIN and local == "workbook":
                package.workbook_part = self.part
        if self.inside:
            self.inside += 1
            if self.inside == 2 and namespace == _MAIN and local in ("v", "is"):
                self._value()
            return
        if namespace == _MAIN:
            if local == "c":
                self._cell(attributes.get("r"))
                return
            if local == "row":
                self._row(attributes.get("r"))
                return
            if local == "si":
                self.inside = 1
                package.strings += 1
                if package.strings > self.limits.max_cells:
                    raise _refuse(
                        gettext(
                            "The workbook holds more than %(limit)s texts, the limit for an "
                            "upload.",
                            limit=_number(self.limits.max_cells),
                        ),
                        package.filename,
                    )
                return
            if local == "sheet":
                package.sheets += 1
                if package.sheets > self.limits.max_sheets:
                    raise _refuse(
                        gettext(
                            "The workbook has more than %(limit)s sheets, the limit for an upload.",
                            limit=_number(self.limits.max_sheets),
                        ),
                        package.filename,
                    )
                package.sheet_ids.append(
                    (attributes.get("name", ""), attributes.get(_RELATIONSHIP_ID, ""))
                )
        elif namespace == _RELATIONSHIPS and local == "Relationship":
            targets = package.targets.setdefault(self.part, {})
            if attributes.get("TargetMode") != "External":
                targets[attributes.get("Id", "")] = attributes.get("Target", "")
        self.others += 1
        if self.others > MAX_OTHER_ELEMENTS:
            raise _refuse(
                gettext(
                    "Part %(part)s of the workbook holds more than %(limit)s elements, the "
                    "limit for an upload.",
                    part=self.part,
                    limit=_number(MAX_OTHER_ELEMENTS),
                ),
                package.filename,
            )

    def doctype(self, *_args) -> None:
        # No part of a workbook has a DTD; one could declare entities that openpyxl's
        # parser would expand into what was never counted.
        raise Unreadable(f"part {self.part} declares a DTD")

    def end(self, _name: str) -> None:
        if self.inside:
            self.inside -= 1

    def _row(self, number: str | None) -> None:
        # As openpyxl numbers rows: the "r" attribute, else one more than the last.
        if number is None:
            self.row += 1
        else:
            try:
                self.row = int(number)
            except ValueError:
                try:
                    value = float(number)
                except ValueError:
                    raise Unreadable(f"row number {number!r} in {self.part}") from None
                if not value.is_integer():
                    raise Unreadable(f"row number {number!r} in {self.part}") from None
                self.row = int(value)
        self.column = 0

    def _cell(self, reference: str | None) -> None:
        package = self.package
        self.inside = 1
        package.cells += 1
        if package.cells > self.limits.max_cells:
            raise _refuse(
                gettext(
                    "The workbook has more than %(limit)s cells (counted up to sheet "
                    '"%(sheet)s"), the limit for an upload.',
                    limit=_number(self.limits.max_cells),
                    sheet=package.title_of(self.part),
                ),
                package.filename,
            )
        # As openpyxl places cells: by the column of "r", else next to the last one.
        match = _CELL_REF.fullmatch(reference) if reference else None
        if match:
            column = 0
            for letter in match.group(1).upper():
                column = column * 26 + ord(letter) - ord("A") + 1
            self.column = column
        else:
            self.column += 1
        self.cell_column = self.column

    def _value(self) -> None:
        """The cell being read holds a value: its row and column must be within the caps."""
        limits = self.limits
        if self.row > limits.max_rows:
            raise _refuse(
                gettext(
                    'Sheet "%(sheet)s" has more than %(limit)s rows, the limit for an upload.',
                    sheet=self.package.title_of(self.part),
                    limit=_number(limits.max_rows),
                ),
                self.package.filename,
            )
        if self.cell_column > limits.max_columns:
            raise _refuse(
                gettext(
                    'Sheet "%(sheet)s" has more than %(limit)s columns (a value in %(cell)s), '
                    "the limit for an upload.",
                    sheet=self.package.title_of(self.part),
                    limit=_number(limits.max_columns),
                    cell=f"{_column_name(self.cell_column)}{self.row}",
                ),
                self.package.filename,
            )
        sheet = self.sheet
        sheet.last_row = max(sheet.last_row, self.row)
        sheet.last_column = max(sheet.last_column, self.cell_column)


def _check_package(data: bytes, package: _Package) -> None:
    """Check every part of the zip before openpyxl reads any (see the module's doc)."""
    limits, filename = package.limits, package.filename
    # Counted on the bytes, before zipfile builds an object for each entry.
    if data.count(b"PK\x01\x02") > MAX_PARTS:
        raise _refuse(
            gettext(
                "The workbook has more than %(limit)s parts, the limit for an upload.",
                limit=_number(MAX_PARTS),
            ),
            filename,
        )
    too_large = gettext(
        "The workbook unpacks to more than %(limit)s, the limit for an upload.",
        limit=size_text(limits.max_unzipped_bytes),
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        declared = 0
        for info in members:
            declared += info.file_size
            if declared > limits.max_unzipped_bytes:
                raise _refuse(too_large, filename)
            if info.file_size > RATIO_FROM_BYTES and (
                info.file_size > info.compress_size * limits.max_zip_ratio
            ):
                raise _refuse(
                    gettext(
                        "Part %(part)s of the workbook is packed more than %(limit)s times "
                        "smaller than its content, the limit for an upload.",
                        part=info.filename,
                        limit=_number(limits.max_zip_ratio),
                    ),
                    filename,
                )
        # The relationships and the workbook part first, for naming sheets in messages.
        members.sort(
            key=lambda info: (not info.filename.endswith(".rels"), "sheet" in info.filename)
        )
        unpacked = 0
        for info in members:
            check = _PartCheck(package, info.filename)
            parser = expat.ParserCreate(namespace_separator=" ")
            parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
            parser.StartDoctypeDeclHandler = check.doctype
            parser.StartElementHandler = check.start
            parser.EndElementHandler = check.end
            parsing = True
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    # zipfile stops at the declared size; counted all the same.
                    unpacked += len(chunk)
                    if unpacked > limits.max_unzipped_bytes:
                        raise _refuse(too_large, filename)
                    if parsing:
                        parsing = _feed(parser, chunk, final=False)
            if parsing:
                _feed(parser, b"", final=True)
            package.found[info.filename] = check.sheet


def _feed(parser, chunk: bytes, *, final: bool) -> bool:
    """Parse a chunk; False once the part is found not to be XML (an image, a printer's
    settings, a damaged part). Nothing more of it is parsed: openpyxl's parser is the same
    expat and stops at the same place, so whatever it can read of the part was counted."""
    try:
        parser.Parse(chunk, final)
    except expat.ExpatError:
        return False
    return True


class Workbook:
    """An uploaded workbook, checked, open read-only with its cells' values.

    ``worksheets`` are openpyxl's read-only worksheets; read a sheet's cells with
    :meth:`rows`. Close it (or use it in a ``with`` block) when done.
    """

    def __init__(self, book, package: _Package) -> None:
        self.book = book
        self._package = package

    @property
    def worksheets(self) -> list:
        return self.book.worksheets

    def rows(self, sheet) -> Iterator[tuple]:
        """The sheet's rows in order, from row 1 to its last row with a value, each a tuple
        of values up to its last value (``()`` for an empty row): ``rows[r - 1][c - 1]``
        is the cell at row r, column c."""
        limits = self._package.limits
        found = self._package.found.get(getattr(sheet, "_worksheet_path", ""))
        if found is None:
            # Every part was checked, so this does not happen; should openpyxl ever name a
            # sheet's part otherwise, read no further than the caps.
            sheet.reset_dimensions()
            found = _Sheet(limits.max_rows, limits.max_columns)
        if not found.last_row:
            return
        cells = sheet.iter_rows(
            min_row=1,
            max_row=found.last_row,
            min_col=1,
            max_col=found.last_column,
            values_only=True,
        )
        for row in cells:
            end = len(row)
            while end and row[end - 1] is None:
                end -= 1
            yield row if end == len(row) else row[:end]

    def close(self) -> None:
        self.book.close()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def open_workbook(
    data: bytes, *, filename: str | None = None, limits: UploadLimits | None = None
) -> Workbook:
    """Check an uploaded .xlsx against the limits, then open it read-only with values.

    Raises :class:`TooLarge` for a cap exceeded; a file that is no workbook raises what
    zipfile and openpyxl raise (``BadZipFile``, ``KeyError``, …) or :class:`Unreadable`,
    for the caller to word as it words any unreadable file.
    """
    package = _Package(limits or current_limits(), filename)
    _check_package(bytes(data), package)
    with warnings.catch_warnings():
        # Instrument software often writes workbooks without a default style; openpyxl
        # warns about it, but the values are unaffected.
        warnings.simplefilter("ignore", UserWarning)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    return Workbook(book, package)


class FastWorkbook:
    """An uploaded workbook, checked as :func:`open_workbook` checks it, whose values are
    read by calamine (a reader written in Rust, about fifteen times faster than openpyxl
    on a large sheet): for files of tens of thousands of rows, such as an inventory.

    Values come as openpyxl gives them (``None`` for an empty cell, a whole number as an
    int, the values Excel last computed for formulas), but for a cell formatted as a date
    without a time: a ``date``, where openpyxl gives a ``datetime`` at midnight, so that a
    reader can tell a date typed without its time. Sheets are named by their titles
    (:attr:`titles`).
    """

    def __init__(self, book) -> None:
        self.book = book

    @property
    def titles(self) -> list[str]:
        return list(self.book.sheet_names)

    def rows(self, title: str) -> Iterator[tuple]:
        """The sheet's rows from row 1 to its last row with a value, each a tuple of values
        up to its last value (``()`` for an empty row), as :meth:`Workbook.rows`."""
        sheet = self.book.get_sheet_by_name(title)
        # Row by row, converted as read (the whole grid at once would double the memory a
        # large sheet takes). calamine's rows start at row 1 but at the first column with
        # a value: the columns before it are put back, so that cells keep their column
        # (tests/test_uploads.py holds calamine to it).
        before = [None] * (sheet.start[1] if sheet.start else 0)
        for row in sheet.iter_rows():
            values = before + [_as_openpyxl_reads(value) for value in row]
            while values and values[-1] is None:
                values.pop()
            yield tuple(values)

    def close(self) -> None:
        self.book.close()

    def __enter__(self) -> FastWorkbook:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _as_openpyxl_reads(value):
    if value == "" and isinstance(value, str):
        return None  # calamine fills the cells between values with empty strings
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # an xlsx stores 500 as a number; openpyxl reads it as an int
    return value


def open_fast_workbook(
    data: bytes, *, filename: str | None = None, limits: UploadLimits | None = None
) -> FastWorkbook:
    """Check an uploaded .xlsx against the limits (as :func:`open_workbook`), then open it
    with calamine. Raises :class:`TooLarge` for a cap exceeded, and what calamine raises
    for a file that is no workbook, for the caller to word."""
    package = _Package(limits or current_limits(), filename)
    _check_package(bytes(data), package)
    return FastWorkbook(CalamineWorkbook.from_filelike(io.BytesIO(data)))


# --------------------------------------------------------------------------- text files


def check_text_size(
    data: bytes, *, filename: str | None = None, limits: UploadLimits | None = None
) -> None:
    """Refuse a text file larger than the limit, before it is decoded."""
    limits = limits or current_limits()
    if len(data) > limits.max_text_bytes:
        raise _refuse(
            gettext(
                "The file is larger than %(limit)s, the limit for a text upload.",
                limit=size_text(limits.max_text_bytes),
            ),
            filename,
        )


def text_lines(
    text: str,
    *,
    filename: str | None = None,
    limits: UploadLimits | None = None,
    keepends: bool = True,
) -> list[str]:
    """The lines of ``text`` (ending at "\\r\\n", "\\r" or "\\n", the ends kept as the csv
    module wants them unless ``keepends`` is false), refusing at once a line longer than
    the limit or more lines than the rows allowed."""
    limits = limits or current_limits()
    lines: list[str] = []
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if number > limits.max_rows:
            raise _refuse(
                gettext(
                    "The file has more than %(limit)s lines, the limit for an upload.",
                    limit=_number(limits.max_rows),
                ),
                filename,
            )
        content = line.rstrip("\r\n")
        if len(content) > limits.max_line_length:
            raise _refuse(
                gettext(
                    "Line %(line)s is longer than %(limit)s characters, the limit for an upload.",
                    line=_number(number),
                    limit=_number(limits.max_line_length),
                ),
                filename,
            )
        lines.append(line if keepends else content)
    return lines


def check_columns(
    count: int, *, line: int, filename: str | None = None, limits: UploadLimits | None = None
) -> None:
    """Refuse a row of more cells than the columns allowed (trailing empty cells left out)."""
    limits = limits or current_limits()
    if count > limits.max_columns:
        raise _refuse(
            gettext(
                "Line %(line)s has more than %(limit)s columns, the limit for an upload.",
                line=_number(line),
                limit=_number(limits.max_columns),
            ),
            filename,
        )


def csv_rows(
    lines: Iterable[str],
    delimiter: str,
    *,
    filename: str | None = None,
    limits: UploadLimits | None = None,
    **options,
) -> Iterator[tuple[int, list[str]]]:
    """The rows of ``lines`` (from :func:`text_lines`, ends kept), each with the number of
    the line it starts on, trailing empty cells left out. Refuses a row wider than the
    columns allowed, and more cells in all than allowed; a line the csv module cannot read
    raises :class:`CsvError`."""
    limits = limits or current_limits()
    reader = csv.reader(iter(lines), delimiter=delimiter, **options)
    cells = 0
    start = 1  # a row starts on the line after the one where the previous row ended
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise CsvError(reader.line_num, str(err)) from None
        end = len(row)
        while end and not row[end - 1]:
            end -= 1
        check_columns(end, line=start, filename=filename, limits=limits)
        cells += end
        if cells > limits.max_cells:
            raise _refuse(
                gettext(
                    "The file has more than %(limit)s cells (counted up to line %(line)s), "
                    "the limit for an upload.",
                    limit=_number(limits.max_cells),
                    line=_number(start),
                ),
                filename,
            )
        yield start, row[:end] if end < len(row) else row
        start = reader.line_num + 1
