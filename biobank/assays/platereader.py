"""Read the files ELISA plate readers export.

Two shapes are understood:

* **Plate blocks** (:func:`read_reader_file`): the reader's own export, an 8 × 12
  grid of optical densities with the row letters A–H down its left side and the
  column numbers 1–12 across its top. Instruments put these blocks anywhere: after
  lines of metadata, side by side (one per wavelength), stacked, or one per sheet.
  Blocks are found by their headers alone, so no instrument-specific template is
  needed.
* **Long lists** (:func:`long_list`): what a laboratory information system exports,
  one row per well with a well id, a sample name and a value.

Files are ``.xlsx`` (read with openpyxl) or ``.csv`` / ``.txt`` (read with the csv
module; the delimiter and the encoding are guessed), both within the limits of an upload
(:mod:`biobank.uploads`, which refuses a file over them with its own error). Every
problem raises
:class:`ReaderFileError`, whose message says where in the file it is, e.g.
``sheet "Results", cell D14: ...`` or ``line 14, column 4: ...``, so the user can
open the file and fix it.

This module is pure: no Flask application, no database, nothing from the rest of
``biobank`` but the upload limits. The limits are the application's settings when it runs
in one, else the defaults; ``limits`` overrides them.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import PurePath
from typing import NamedTuple

from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from biobank import uploads
from biobank.assays import readerdate
from biobank.uploads import UploadLimits

__all__ = [
    "EMPTY",
    "OVERFLOW",
    "UNREADABLE",
    "WELLS",
    "Block",
    "NamedList",
    "ReaderFile",
    "ReaderFileError",
    "Reading",
    "corrected",
    "long_list",
    "marker",
    "read_plate_file",
    "read_reader_file",
]

ROW_LETTERS = "ABCDEFGH"
COLUMN_COUNT = 12
WELLS: tuple[str, ...] = tuple(
    f"{row}{column}" for row in ROW_LETTERS for column in range(1, COLUMN_COUNT + 1)
)

# What a well holds instead of a number: nothing, a reading over the reader's range
# (saturated), or a marker saying the reader has no reading for it.
EMPTY = "empty"
OVERFLOW = "overflow"
UNREADABLE = "unreadable"

# How far from a block's header row a label may sit: instruments write the
# wavelength or plate name just above the block, sometimes after a blank line.
LABEL_ROWS_ABOVE = 3
LABEL_CELLS_LEFT = 3

# A long list's header row must be near the top; further down it is data.
LONG_LIST_HEADER_ROWS = 30

XLSX_SUFFIXES = (".xlsx", ".xlsm")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
# Tab and ";" come first: on a tie they win over ",", which also appears inside
# numbers written with decimal commas.
CSV_DELIMITERS = ("\t", ";", ",")

_NUMBER = r"[+\-\u2212]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+\-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
# The markers readers write instead of a number, the one list to extend for a new
# instrument. They are compared case-insensitively, surrounding spaces stripped (see
# :func:`marker`).
# Over the reader's range (saturated): a word, a run of asterisks, or the upper limit
# preceded by ">" (">3.500", "> 4.0").
_OVERFLOW_WORDS = frozenset(
    {"over", "ovrflw", "overflow", "over range", "overrange", "sat", "#sat", "saturated", "range?"}
)
_OVERFLOW_RE = re.compile(rf"\*+|>\s*{_NUMBER}")
# No reading at all: "not available", an error code (the reader's, or Excel's when a
# formula failed), dashes or question marks.
_UNREADABLE_WORDS = frozenset(
    {
        "n/a", "na", "#n/a", "nan", "error", "err", "#err", "#error", "invalid",
        "#value!", "#div/0!", "#ref!", "#num!", "#name?", "#null!",
    }
)  # fmt: skip
_UNREADABLE_RE = re.compile(r"[-\u2013\u2014]+|\?+")
_HEADER_NUMBER_RE = re.compile(r"0*(\d+)(?:[.,]0*)?")
_WELL_ID_RE = re.compile(r"([A-H])0*(1[0-2]|[1-9])")
# Three digits standing alone (not part of a longer number or a decimal).
_WAVELENGTH_RE = re.compile(r"(?<![\d.])(\d{3})(?!\d|\.\d)")
_WAVELENGTH_RANGE = range(340, 1000)


class ReaderFileError(ValueError):
    """The file cannot be read; the message says where (sheet and cell, or line and column)."""


@dataclass(frozen=True)
class Reading:
    """One well's value as read from the file."""

    value: float | None  # None when empty, overflow or unreadable
    flag: str | None  # None, "empty", "overflow" (saturated) or "unreadable"
    raw: str  # the cell as written, stripped
    cell: str  # "Results!D14" (xlsx) or "line 14, column 4" (csv)


@dataclass(frozen=True)
class Block:
    """One 8 × 12 plate block found in a reader file."""

    sheet: str  # sheet name ("" for csv)
    label: str  # nearest text at or above/left of the header row, "" if none
    wavelength_nm: int | None  # a 3-digit wavelength 340–999 found in the label
    anchor: str  # the top-left header cell (a long list's column header), as Reading.cell
    wells: dict[str, Reading]  # all 96 keys of WELLS
    # A long list's sample names by well (its "Sample" or "Barcode" column), else empty.
    names: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderFile:
    """What a reader file holds: its reads, and the day it says the plate was read."""

    blocks: list[Block]
    read_on: readerdate.Found | None  # None when the file does not say


def read_reader_file(
    data: bytes, filename: str, *, limits: UploadLimits | None = None
) -> list[Block]:
    """Return every read of the file, in reading order (see :func:`read_plate_file`)."""
    return read_plate_file(data, filename, limits=limits).blocks


def read_plate_file(
    data: bytes, filename: str, *, limits: UploadLimits | None = None
) -> ReaderFile:
    """Every read of the file and the date it was read on, if the file says.

    The reads are the file's 8 × 12 blocks in reading order (sheet order, then top to
    bottom, then left to right); a file without any is read as a long list, one row per
    well, each column of readings becoming one read (see :func:`_list_blocks`). Raises
    :class:`ReaderFileError` if neither is found, if a block's headers are incomplete,
    or if a well holds something that is not a reading.
    """
    grids = _load(data, filename, limits=limits)
    blocks = [block for grid in grids for block in _blocks_in(grid)]
    if not blocks:
        blocks = next((found for grid in grids if (found := _list_blocks(grid))), [])
    if not blocks:
        where = ", ".join(f'"{grid.sheet}"' for grid in grids if grid.sheet is not None)
        looked = f" (looked at sheets {where})" if where else ""
        raise ReaderFileError(
            f"{filename}: no 8 × 12 block with A–H / 1–12 headers and no list with one row "
            f"per well (a column of well ids A1…H12 under a header) was found{looked}"
        )
    return ReaderFile(blocks, readerdate.find((grid.sheet, grid.rows) for grid in grids))


def corrected(primary: Block, reference: Block | None) -> dict[str, Reading]:
    """Subtract the reference wavelength from the primary one, well by well.

    This is the usual 450 nm − 540/570 nm correction for plate imperfections. A
    well overflowing at either wavelength has no usable value, so it stays an
    overflow; otherwise a well unreadable at either wavelength stays unreadable, and
    one empty at either stays empty. Without a
    reference the primary readings are returned as they are.
    """
    if reference is None:
        return dict(primary.wells)
    return {
        well: _subtract(reading, reference.wells[well]) for well, reading in primary.wells.items()
    }


class NamedList(NamedTuple):
    """A long list read by its named columns: well → reading, well → sample name, and the
    day the file says the plate was read."""

    readings: dict[str, Reading]
    names: dict[str, str]
    read_on: readerdate.Found | None


def long_list(
    data: bytes,
    filename: str,
    *,
    well_column: str = "Well",
    sample_column: str = "Sample",
    value_column: str = "Value",
    limits: UploadLimits | None = None,
) -> NamedList:
    """Read a one-row-per-well list (the shape a LIS exports).

    The header row, somewhere in the first 30 rows of the first sheet (or of the
    CSV), holds the three column names (case and surrounding spaces ignored).
    Each following row gives a well id ("A1", "A01", "a1"), a sample name (may be
    empty) and a value. Rows empty in all three columns are skipped.

    Returns ``(well → Reading, well → sample name, read date)``; wells not listed are
    absent.
    """
    grid = _load(data, filename, first_sheet_only=True, limits=limits)[0]
    names = {"well": well_column, "sample": sample_column, "value": value_column}
    header_row, columns = _find_list_header(grid, names)

    readings: dict[str, Reading] = {}
    samples: dict[str, str] = {}
    first_seen: dict[str, str] = {}
    for r in range(header_row + 1, len(grid.rows)):
        cells = {key: grid.get(r, c) for key, c in columns.items()}
        if all(_text(value) == "" for value in cells.values()):
            continue  # blank line or a note in some other column
        well = _well_id(grid, r, columns["well"], well_column)
        if well in first_seen:
            raise grid.error(
                r,
                columns["well"],
                f"well {well} is listed twice (first at {first_seen[well]})",
                well_column,
            )
        first_seen[well] = grid.where(r, columns["well"])
        readings[well] = _read_cell(grid, r, columns["value"], value_column)
        samples[well] = _text(cells["sample"])
    return NamedList(readings, samples, readerdate.find([(grid.sheet, grid.rows)]))


# --------------------------------------------------------------------------
# Files → grids of cell values
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """The cells of one sheet (or of a CSV file) and how to name their places.

    ``rows[r][c]`` is the value at 0-based row ``r`` and column ``c``: whatever
    openpyxl gives for xlsx, a string for CSV. For CSV, ``lines[r]`` is the
    physical line where row ``r`` starts (a quoted field may span lines).
    """

    sheet: str | None  # None for CSV
    rows: list[list[object]]
    lines: list[int]

    def get(self, r: int, c: int) -> object:
        """The value at (r, c), None outside the written area."""
        if 0 <= r < len(self.rows) and 0 <= c < len(self.rows[r]):
            return self.rows[r][c]
        return None

    def where(self, r: int, c: int) -> str:
        """The place of (r, c) as stored in Reading.cell: "Results!D14" or "line 14, column 4"."""
        if self.sheet is None:
            return f"line {self.lines[r]}, column {c + 1}"
        return f"{self.sheet}!{_coordinate(r, c)}"

    def error(self, r: int, c: int, message: str, column: str = "") -> ReaderFileError:
        """An error about one cell: 'sheet "Results", cell D14: ...' or 'line 14, column 4: ...'.

        ``column`` (a long list's column name) is added after the place:
        'sheet "Export", cell C5 (column "OD"): ...'.
        """
        if self.sheet is None:
            place = f"line {self.lines[r]}, column {c + 1}"
        else:
            place = f'sheet "{self.sheet}", cell {_coordinate(r, c)}'
        if column:
            place += f' (column "{column}")'
        return ReaderFileError(f"{place}: {message}")

    def row_error(self, r: int, message: str) -> ReaderFileError:
        """An error about a whole row: 'sheet "Results", row 4: ...' or 'line 4: ...'."""
        if self.sheet is None:
            return ReaderFileError(f"line {self.lines[r]}: {message}")
        return ReaderFileError(f'sheet "{self.sheet}", row {r + 1}: {message}')


def _coordinate(r: int, c: int) -> str:
    """Excel's name for 0-based (r, c), e.g. (13, 3) → "D14"."""
    return f"{get_column_letter(c + 1)}{r + 1}"


def _load(
    data: bytes,
    filename: str,
    *,
    first_sheet_only: bool = False,
    limits: UploadLimits | None = None,
) -> list[_Grid]:
    """Turn the file into grids, one per worksheet (a CSV file is one grid)."""
    limits = limits or uploads.current_limits()
    suffix = PurePath(filename).suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _load_xlsx(data, filename, first_sheet_only=first_sheet_only, limits=limits)
    if suffix in TEXT_SUFFIXES:
        return [_load_csv(data, filename, limits)]
    if suffix == ".xls":
        raise ReaderFileError(
            f"{filename}: the old Excel .xls format cannot be read; save the file as .xlsx or .csv"
        )
    raise ReaderFileError(f"{filename}: expected an .xlsx, .csv or .txt file")


_UNREADABLE = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, EOFError)


def _load_xlsx(
    data: bytes, filename: str, *, first_sheet_only: bool, limits: UploadLimits
) -> list[_Grid]:
    """Read every worksheet's values (cached results for formulas, as Excel shows them)."""
    try:
        workbook = uploads.open_workbook(data, filename=filename, limits=limits)
    except _UNREADABLE as exc:
        raise ReaderFileError(f"{filename}: not a readable .xlsx workbook ({exc})") from exc
    with workbook:
        sheets = workbook.worksheets[:1] if first_sheet_only else workbook.worksheets
        try:
            return [
                _Grid(sheet.title, list(map(list, workbook.rows(sheet))), []) for sheet in sheets
            ]
        except _UNREADABLE as exc:
            raise ReaderFileError(f"{filename}: not a readable .xlsx workbook ({exc})") from exc


def _load_csv(data: bytes, filename: str, limits: UploadLimits) -> _Grid:
    """Read a delimited text file into one grid, remembering each row's line number."""
    uploads.check_text_size(data, filename=filename, limits=limits)
    text = _decode(data)
    lines = uploads.text_lines(text, filename=filename, limits=limits)
    delimiter = _sniff_delimiter(lines)
    rows: list[list[object]] = []
    starts: list[int] = []
    try:
        for start, row in uploads.csv_rows(lines, delimiter, filename=filename, limits=limits):
            rows.append(list(row))
            starts.append(start)
    except uploads.CsvError as exc:
        raise ReaderFileError(f"line {exc.line}: {exc.reason}") from exc
    return _Grid(None, rows, starts)


def _decode(data: bytes) -> str:
    """Decode a text export: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252.

    Windows instrument software commonly writes cp1252 ("µL", "°C"); a file that is
    not valid UTF-8 is almost always that.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _sniff_delimiter(lines: list[str]) -> str:
    """Pick the delimiter, among tab, ";" and ",", found on the most non-blank lines.

    csv.Sniffer is not used: French Excel exports separate with ";" and write
    decimal commas, so "," is also everywhere and fools it. Counting lines instead
    works because a ";" export has ";" on every line with a comma and more.
    """
    counts = {
        delimiter: sum(delimiter in line for line in lines if line.strip())
        for delimiter in CSV_DELIMITERS
    }
    best = max(CSV_DELIMITERS, key=lambda delimiter: counts[delimiter])  # first wins ties
    return best if counts[best] else ","


# --------------------------------------------------------------------------
# Finding 8 × 12 blocks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rect:
    """The cells a block occupies, headers included (inclusive bounds)."""

    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def of_block(cls, anchor_r: int, anchor_c: int) -> _Rect:
        return cls(anchor_r, anchor_c, anchor_r + len(ROW_LETTERS), anchor_c + COLUMN_COUNT)

    def contains(self, r: int, c: int) -> bool:
        return self.top <= r <= self.bottom and self.left <= c <= self.right


def _blocks_in(grid: _Grid) -> list[Block]:
    """All blocks of one grid, in reading order."""
    anchors = _find_anchors(grid)
    rects = [_Rect.of_block(r, c) for r, c in anchors]
    blocks = []
    for r, c in anchors:
        others = [rect for rect in rects if (rect.top, rect.left) != (r, c)]
        label = _find_label(grid, r, c, others)
        side_by_side = [a for a in anchors if a[0] == r]
        listed = _listed_wavelengths(grid, r, len(side_by_side))
        wavelength = _wavelength(label)
        if wavelength is None and listed:
            # SoftMax Pro names its reads once, above the blocks: "450 540".
            wavelength = listed[side_by_side.index((r, c))]
            label = f"{wavelength} nm"
        blocks.append(
            Block(
                sheet=grid.sheet or "",
                label=label,
                wavelength_nm=wavelength,
                anchor=grid.where(r, c),
                wells=_read_wells(grid, r, c),
            )
        )
    return blocks


def _listed_wavelengths(grid: _Grid, r: int, count: int) -> list[int]:
    """The wavelengths a cell of the few rows above row ``r`` lists, one per block of the
    row, as SoftMax Pro writes them on its "Plate:" line ("450 540"); empty if none. A lone
    number is taken only on a "Plate:" line, where it cannot be anything else."""
    for above in range(r - 1, max(r - 1 - LABEL_ROWS_ABOVE, -1), -1):
        plate_line = _text(grid.get(above, 0) or grid.get(above, 1)).casefold().startswith("plate")
        for value in grid.rows[above]:
            words = _text(value).split()
            listed = [int(w) for w in words if w.isdigit() and int(w) in _WAVELENGTH_RANGE]
            if len(listed) == len(words) == count and (count > 1 or plate_line):
                return listed
    return []


def _find_anchors(grid: _Grid) -> list[tuple[int, int]]:
    """The (row, column) of each block's top-left header cell, in reading order.

    A block starts wherever a row holds 1..12 in consecutive cells; the letters
    A–H must then run down the column to the left of the "1", or the file is
    malformed and an error names the offending cell.
    """
    anchors: list[tuple[int, int]] = []
    rects: list[_Rect] = []
    for r, row in enumerate(grid.rows):
        c = 0
        while c + COLUMN_COUNT <= len(row):
            # Inside a block already found, cells are readings, never headers.
            if _header_number(row[c]) != 1 or any(rect.contains(r, c) for rect in rects):
                c += 1
                continue
            if not _is_header_run(row, c):
                c += 1
                continue
            _check_header(grid, r, c)
            anchors.append((r, c - 1))
            rects.append(_Rect.of_block(r, c - 1))
            c += COLUMN_COUNT
    return anchors


def _header_number(value: object) -> int | None:
    """A column header as an int: 3, 3.0, "3", "03" and "3.0" all give 3."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        match = _HEADER_NUMBER_RE.fullmatch(value.strip())
        return int(match.group(1)) if match else None
    return None


def _is_header_run(row: list[object], c: int) -> bool:
    """Whether row[c:c+12] reads 1, 2, ..., 12."""
    cells = row[c : c + COLUMN_COUNT]
    return len(cells) == COLUMN_COUNT and all(
        _header_number(value) == k + 1 for k, value in enumerate(cells)
    )


def _check_header(grid: _Grid, r: int, c: int) -> None:
    """Check that the 1..12 run at (r, c) heads a proper 8 × 12 block."""
    header = grid.where(r, c)
    if c == 0:
        raise grid.error(
            r, c, "column headers 1–12 start in the first column, leaving no room for row letters"
        )
    if _header_number(grid.get(r, c + COLUMN_COUNT)) == COLUMN_COUNT + 1:
        raise grid.error(
            r,
            c + COLUMN_COUNT,
            "a column 13 follows 1–12: only 96-well (8 × 12) plates can be read",
        )
    if _unlettered(grid, r, c):
        return
    for i, letter in enumerate(ROW_LETTERS):
        found = _text(grid.get(r + 1 + i, c - 1))
        if found.upper() != letter:
            shown = f'"{found}"' if found else "an empty cell"
            raise grid.error(
                r + 1 + i,
                c - 1,
                f"expected row letter {letter} of the block whose column headers 1–12 "
                f"start at {header}, found {shown}",
            )


def _unlettered(grid: _Grid, r: int, c: int) -> bool:
    """Whether the block headed at (r, c) is SoftMax Pro's plate format: no row letters, the
    rows A–H in order, the cell left of the "1" reading "Temperature(°C)" (the first block)
    or empty (the next ones, side by side), and the column below it holding nothing but the
    read's temperature. Any letter in that column makes it a lettered block."""
    corner = _text(grid.get(r, c - 1)).casefold()
    if corner and not corner.startswith("temp"):
        return False
    left = [grid.get(r + 1 + i, c - 1) for i in range(len(ROW_LETTERS))]
    return all(_text(v) == "" or _header_number(v) is not None or _is_number(v) for v in left)


def _is_number(value: object) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return bool(_NUMBER_RE.fullmatch(_text(value)))


def _read_wells(grid: _Grid, anchor_r: int, anchor_c: int) -> dict[str, Reading]:
    """The 96 readings under and right of the headers, keyed A1..H12."""
    wells = {}
    for i, letter in enumerate(ROW_LETTERS):
        for j in range(COLUMN_COUNT):
            wells[f"{letter}{j + 1}"] = _read_cell(grid, anchor_r + 1 + i, anchor_c + 1 + j)
    return wells


def _find_label(grid: _Grid, r: int, c: int, others: list[_Rect]) -> str:
    """The nearest text naming the block whose top-left header is (r, c).

    Looked for, nearest first: the top-left header cell itself (some readers write
    the wavelength there), a few cells left on the header row, then each of a few
    rows above, at the anchor column, across the block's width, then to the left.
    Cells of other blocks are skipped, so side-by-side or stacked blocks do not
    steal each other's labels (or take a neighbour's numbers as a label).
    """
    places = [(r, c)]
    places += [(r, c - k) for k in range(1, LABEL_CELLS_LEFT + 1)]
    for above in range(r - 1, r - 1 - LABEL_ROWS_ABOVE, -1):
        places += [(above, c + k) for k in range(COLUMN_COUNT + 1)]
        places += [(above, c - k) for k in range(1, LABEL_CELLS_LEFT + 1)]
    for pr, pc in places:
        if pr < 0 or pc < 0 or any(rect.contains(pr, pc) for rect in others):
            continue
        text = _text(grid.get(pr, pc))
        # "<>" and similar punctuation in the corner cell name nothing.
        if any(ch.isalnum() for ch in text):
            return text
    return ""


def _wavelength(label: str) -> int | None:
    """The first stand-alone 3-digit number 340–999 in the label ("Read 1: 450 nm" → 450)."""
    for match in _WAVELENGTH_RE.finditer(label):
        if int(match.group(1)) in _WAVELENGTH_RANGE:
            return int(match.group(1))
    return None


# --------------------------------------------------------------------------
# Cell values → readings
# --------------------------------------------------------------------------


def _text(value: object) -> str:
    """A cell as text, stripped; whole floats without ".0" (Excel stores 450 as 450.0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def _read_cell(grid: _Grid, r: int, c: int, column: str = "") -> Reading:
    """The reading at (r, c); an unreadable value raises an error naming the cell."""
    value = grid.get(r, c)
    try:
        number, flag = _interpret(value)
    except ValueError as exc:
        raise grid.error(r, c, str(exc), column) from None
    return Reading(value=number, flag=flag, raw=_text(value), cell=grid.where(r, c))


def marker(text: str) -> str | None:
    """What a reader's marker means: OVERFLOW (over the reader's range: OVER, OVRFLW,
    Sat, *****, >3.500…), UNREADABLE (no reading: N/A, NaN, Error, #N/A, -, ?????…),
    EMPTY (nothing written), or None when the text is no known marker. Case and
    surrounding spaces are ignored; a number is not a marker."""
    text = text.strip()
    if text == "":
        return EMPTY
    folded = text.casefold()
    if folded in _OVERFLOW_WORDS or _OVERFLOW_RE.fullmatch(text):
        return OVERFLOW
    if folded in _UNREADABLE_WORDS or _UNREADABLE_RE.fullmatch(text):
        return UNREADABLE
    return None


def _interpret(value: object) -> tuple[float | None, str | None]:
    """(value, flag) for one cell; raises ValueError with a message for the user.

    Accepts numbers, numbers stored as text, decimal commas, scientific notation
    and negative values (some readers subtract a blank themselves); the markers of
    :func:`marker` give (None, their flag). Any other text is refused: it says the
    block was not read where it should have been, or holds a marker to learn.
    """
    if isinstance(value, bool):
        raise ValueError(f'"{value}" is not a reading')
    if isinstance(value, int | float):
        return _finite(float(value), str(value)), None
    text = _text(value)
    flag = marker(text)
    if flag is not None:
        return None, flag
    if _NUMBER_RE.fullmatch(text):
        # Decimal commas come from French (and other) locales; U+2212 from word processors.
        return _finite(float(text.replace(",", ".").replace("\u2212", "-")), text), None
    raise ValueError(
        f'cannot read "{text}": expected a number, an empty cell, a saturation marker '
        "(OVER, OVRFLW, Sat, *****, >4.000) or a no-reading marker (N/A, Error, -)"
    )


def _finite(number: float, text: str) -> float:
    """Reject infinities and NaN, which no instrument means to write."""
    if not math.isfinite(number):
        raise ValueError(f'"{text}" is not a finite number')
    return number


def _subtract(primary: Reading, reference: Reading) -> Reading:
    """primary − reference for one well: overflow wins over unreadable, which wins over empty."""
    raw = f"{primary.raw}-{reference.raw}"
    flags = {primary.flag, reference.flag}
    for flag in (OVERFLOW, UNREADABLE, EMPTY):
        if flag in flags:
            return Reading(None, flag, raw, primary.cell)
    assert primary.value is not None and reference.value is not None
    return Reading(primary.value - reference.value, None, raw, primary.cell)


# --------------------------------------------------------------------------
# Long lists
# --------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return name.strip().casefold()


def _find_list_header(grid: _Grid, names: dict[str, str]) -> tuple[int, dict[str, int]]:
    """The header row and the column of each configured name.

    The row with the most of the names wins (a metadata line such as "Sample: x"
    may hold one of them); if it lacks any, the error names that row and column.
    """
    wanted = {key: _normalise(name) for key, name in names.items()}
    best_row, best_columns = -1, {}
    for r in range(min(LONG_LIST_HEADER_ROWS, len(grid.rows))):
        columns: dict[str, int] = {}
        for c, value in enumerate(grid.rows[r]):
            for key, name in wanted.items():
                if key not in columns and _normalise(_text(value)) == name:
                    columns[key] = c
        if len(columns) > len(best_columns):
            best_row, best_columns = r, columns
    quoted = ", ".join(f'"{name}"' for name in names.values())
    if not best_columns:
        where = f'sheet "{grid.sheet}": ' if grid.sheet is not None else ""
        raise ReaderFileError(
            f"{where}no header row with the columns {quoted} "
            f"in the first {LONG_LIST_HEADER_ROWS} rows"
        )
    missing = [names[key] for key in names if key not in best_columns]
    if missing:
        found = ", ".join(f'"{_text(v)}"' for v in grid.rows[best_row] if _text(v)) or "none"
        raise grid.row_error(
            best_row,
            f'the header row has no "{missing[0]}" column (expected {quoted}; found {found})',
        )
    return best_row, best_columns


def _well_id(grid: _Grid, r: int, c: int, column: str) -> str:
    """The well id at (r, c), normalised to "A1".."H12" ("a01" → "A1")."""
    text = _text(grid.get(r, c))
    if not text:
        raise grid.error(r, c, "the well id is missing", column)
    match = _WELL_ID_RE.fullmatch(text.upper())
    if not match:
        raise grid.error(r, c, f'unknown well id "{text}" (expected A1 to H12)', column)
    return f"{match.group(1)}{int(match.group(2))}"


# --------------------------------------------------------------------------
# Long lists found without being told: one row per well, a column per read
# --------------------------------------------------------------------------

# A well id as lists write it: "A1", "A01", "a1", "A 1", "A-01", "A:1". Rows up to P and
# columns up to 24 match, so that a 384-well list is named as such instead of being cut
# short at its first well beyond H12.
_LIST_WELL_RE = re.compile(r"([A-P])\s*[-:_]?\s*0*(\d{1,2})")
# Fewer well ids than this down a column are a note, not a list.
LIST_MIN_WELLS = 8
# Columns of a list looked at: a list is a few columns wide; a row far wider is no reading.
LIST_MAX_COLUMNS = 200
# Headers naming the sample in a list (compared as _folded: case, accents, spaces and
# punctuation ignored). A reader's own "Well ID" or "Content" ("STD1", "Sample X1") names
# the kind of well, not the sample, and is not compared with the plate map.
_SAMPLE_HEADERS = frozenset(
    {"sample", "sampleid", "samplename", "samplecode", "samplebarcode", "barcode", "tube",
     "echantillon", "nomechantillon", "codebarre", "codebarres", "probe", "probenname"}
)  # fmt: skip
# Numeric columns of a list that are no reading: places, counts, settings.
_NOT_READINGS = frozenset(
    {"well", "wellno", "wellnumber", "wellindex", "index", "no", "n", "nr", "number", "row",
     "col", "column", "rownumber", "columnnumber", "replicate", "rep", "replicatenumber",
     "dilution", "dilutionfactor", "factor", "plate", "plateno", "platenumber", "cycle",
     "kineticcycle", "time", "temperature", "temp", "tempc", "temperaturec", "x", "y",
     "puits", "ligne", "colonne", "wavelength", "wavelengthnm", "lambda", "nm"}
)  # fmt: skip
_WAVELENGTH_HEADERS = frozenset({"wavelength", "wavelengthnm", "lambda", "lambdanm", "nm"})


def _folded(text: str) -> str:
    """Text compared as a header: lower case, accents and everything but letters and digits
    dropped ("Échantillon" → "echantillon", "Well Position" → "wellposition")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.casefold())


def _list_well(value: object) -> tuple[str, bool] | None:
    """(well, whether it is on a 96-well plate) for a cell holding a well id, else None."""
    if not isinstance(value, str):
        return None
    match = _LIST_WELL_RE.fullmatch(value.strip().upper())
    if not match or not 1 <= int(match.group(2)) <= 24:
        return None
    letter, column = match.group(1), int(match.group(2))
    return f"{letter}{column}", letter in ROW_LETTERS and column <= COLUMN_COUNT


def _blank_row(row: list[object]) -> bool:
    return all(_text(value) == "" for value in row)


def _well_runs(grid: _Grid) -> list[tuple[int, list[int]]]:
    """Every run of rows holding a well id in one column, as (column, rows), found in one
    pass over the cells (a file's width times its length could be far more than its
    cells). Blank lines inside a run are skipped; any other row ends it."""
    runs: list[tuple[int, list[int]]] = []
    open_runs: dict[int, list[int]] = {}
    for r, row in enumerate(grid.rows):
        if _blank_row(row):
            continue
        here = {c for c, value in enumerate(row) if _list_well(value) is not None}
        for c in [c for c in open_runs if c not in here]:
            runs.append((c, open_runs.pop(c)))
        for c in here:
            open_runs.setdefault(c, []).append(r)
    runs.extend(open_runs.items())
    return runs


@dataclass(frozen=True)
class _List:
    """Where a long list sits: its well column, its header row (None when it has none) and
    its data rows."""

    well_column: int
    header: int | None
    rows: list[int]

    def name(self, grid: _Grid, c: int) -> str:
        """The header of column ``c``, or "column E" when the list has no header."""
        text = _text(grid.get(self.header, c)) if self.header is not None else ""
        return text or f"column {get_column_letter(c + 1)}"


def _find_list(grid: _Grid) -> _List | None:
    """The longest run of well ids down one column, with the header above it."""
    runs = _well_runs(grid)
    if not runs:
        return None
    c, rows = max(runs, key=lambda run: (len(run[1]), -run[0]))
    if len(rows) < LIST_MIN_WELLS:
        return None
    above = next((r for r in range(rows[0] - 1, -1, -1) if not _blank_row(grid.rows[r])), None)
    header = above if above is not None and _text(grid.get(above, c)) else None
    return _List(c, header, rows)


def _list_blocks(grid: _Grid) -> list[Block]:
    """A long list's reads, one block per column of readings (per wavelength, when the list
    gives one row per well and wavelength). Empty when the grid holds no list."""
    found = _find_list(grid)
    if found is None:
        return []
    wells = []
    for r in found.rows:
        well, on_96 = _list_well(grid.get(r, found.well_column))  # type: ignore[misc]
        if not on_96:
            raise grid.error(
                r,
                found.well_column,
                f"well {well} is not on a 96-well plate: only 96-well (8 × 12) plates can be read",
                found.name(grid, found.well_column),
            )
        wells.append(well)
    listed_rows = [*found.rows, *([] if found.header is None else [found.header])]
    width = min(max(len(grid.rows[r]) for r in listed_rows), LIST_MAX_COLUMNS)
    others = [c for c in range(width) if c != found.well_column]
    sample = next((c for c in others if _folded(found.name(grid, c)) in _SAMPLE_HEADERS), None)
    by_wavelength = _wavelength_column(grid, found, others)
    readings = [
        c for c in others if c not in (sample, by_wavelength) and _is_reading_column(grid, found, c)
    ]
    if not readings:
        columns = ", ".join(f'"{found.name(grid, c)}"' for c in others[:12]) or "none"
        columns += ", …" if len(others) > 12 else ""
        raise grid.row_error(
            found.header if found.header is not None else found.rows[0],
            f"a list of wells was found but no column of readings in it (columns: {columns})",
        )
    groups = _wavelength_groups(grid, found, wells, by_wavelength)
    blocks = []
    for c in readings:
        for wavelength, rows in groups:
            blocks.append(_list_block(grid, found, c, rows, wavelength, sample))
    return blocks


def _is_reading_column(grid: _Grid, found: _List, c: int) -> bool:
    """Whether column ``c`` holds readings: numbers and reader markers, at least one number,
    its header naming no place or setting. A column mostly of numbers with a stray text
    is a reading column with a mistake: the error names the cell."""
    if _folded(found.name(grid, c)) in _NOT_READINGS:
        return False
    numbers, wrong = 0, []
    for r in found.rows:
        value = grid.get(r, c)
        try:
            number, flag = _interpret(value)
        except ValueError:
            wrong.append(r)
            continue
        numbers += number is not None and flag is None
    if numbers == 0 or len(wrong) * 2 > numbers + len(wrong):
        return False
    if wrong:
        _read_cell(grid, wrong[0], c, found.name(grid, c))  # raises, naming the cell
    return not _counts_wells(grid, found, c)


def _counts_wells(grid: _Grid, found: _List, c: int) -> bool:
    """Whether column ``c`` just numbers the rows 1, 2, 3… (a well index without a header)."""
    values = [grid.get(r, c) for r in found.rows]
    return all(_header_number(v) == k for k, v in enumerate(values, 1))


def _wavelength_column(grid: _Grid, found: _List, others: list[int]) -> int | None:
    """A column giving each row's wavelength (a list with one row per well and read)."""
    for c in others:
        values = [_header_number(grid.get(r, c)) for r in found.rows]
        named = _folded(found.name(grid, c)) in _WAVELENGTH_HEADERS
        if (named or len(set(values)) > 1) and all(v in _WAVELENGTH_RANGE for v in values):
            return c
    return None


def _wavelength_groups(
    grid: _Grid, found: _List, wells: list[str], by_wavelength: int | None
) -> list[tuple[int | None, list[tuple[int, str]]]]:
    """The list's rows, each with its well, grouped by wavelength when a column gives it.
    A well listed twice in one group is an error naming both places."""
    groups: dict[int | None, list[tuple[int, str]]] = {}
    for r, well in zip(found.rows, wells, strict=True):
        wavelength = None if by_wavelength is None else _header_number(grid.get(r, by_wavelength))
        groups.setdefault(wavelength, []).append((r, well))
    for rows in groups.values():
        first: dict[str, int] = {}
        for r, well in rows:
            if well in first:
                raise grid.error(
                    r,
                    found.well_column,
                    f"well {well} is listed twice (first at "
                    f"{grid.where(first[well], found.well_column)})",
                    found.name(grid, found.well_column),
                )
            first[well] = r
    return list(groups.items())


def _list_block(
    grid: _Grid,
    found: _List,
    c: int,
    rows: list[tuple[int, str]],
    wavelength: int | None,
    sample: int | None,
) -> Block:
    """One column of readings (at one wavelength) as a plate block; a well the list does
    not give is empty."""
    name = found.name(grid, c)
    wells = {well: Reading(None, EMPTY, "", "not in the list") for well in WELLS}
    names: dict[str, str] = {}
    for r, well in rows:
        wells[well] = _read_cell(grid, r, c, name)
        if sample is not None and _text(grid.get(r, sample)):
            names[well] = _text(grid.get(r, sample))
    label = f"{name} at {wavelength} nm" if wavelength is not None else name
    anchor_row = found.header if found.header is not None else rows[0][0]
    return Block(
        sheet=grid.sheet or "",
        label=label,
        wavelength_nm=wavelength if wavelength is not None else _list_wavelength(name),
        anchor=grid.where(anchor_row, c),
        wells=wells,
        names=names,
    )


def _list_wavelength(header: str) -> int | None:
    """The wavelength a column header names ("OD450", "Abs 450nm", "450", "Read 1:450");
    None when it names none, or two ("450-540", "Delta OD 450/570": a corrected read)."""
    found = {int(m.group(1)) for m in _WAVELENGTH_RE.finditer(header)}
    found &= set(_WAVELENGTH_RANGE)
    return found.pop() if len(found) == 1 else None
