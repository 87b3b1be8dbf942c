"""Rack-scanner files: which tube barcode sits at which position of a scanned rack.

A rack scanner photographs the 2D codes under a rack of tubes and writes one line per
position. Vendors and sites configure the export differently, so this parser accepts the
variants seen in the files below rather than one vendor's layout, and reports anything it
cannot read unambiguously as a ``RackScanError`` naming the line and the column.

Variants accepted, and where they were seen:

* No header, three columns rack, position, tube ("TR00012345,A1,FX05653780") and no header,
  two columns position, tube ("A1,FX05653780"), "NO READ" for an unread tube; the rack
  barcode must be the same on every line; a leading UTF-8 BOM is stripped; a position may
  appear only once — sanger/limber, app/models/labware_creators/common_file_handling/
  csv_file_for_tube_rack.rb, csv_file_for_tube_rack_with_rack_barcode.rb, csv_file_base.rb.
* A space after the comma ("A1, FR05653780"), positions A1 as well as A01 — sanger/wrangler,
  tests/files/DN_48_no_read.csv and tests/files/FH00008452.csv.
* Metadata lines above the table ("Date & time of Trace = 23 Aug 2012 01:42:01 PM",
  "Rack Base Name: 02498606"), semicolons with padding ("A01;    1034998087"), CRLF line
  ends, and "No TrakMate" for an empty position — helixyte/TheLMA,
  thelma/automation/parsers/rackscanning.py.
* "A01,<barcode>" lines from a FluidX scanner, "No Tube" for an empty position and a
  separate no-read marker — Spirit (Idorsia Pharmaceuticals, J. Freyss),
  com/actelion/research/util/ui/scanner/FluidxScanner.java.

Beyond those: a header line found by its words (position/pos/well, barcode/tube/tubeid,
rack/rackid/rack barcode, any case and spacing, in any column order, extra columns
ignored), tab and semicolon separators, quoted cells, the rack named on a line of its own
("Rack: RK-0042" or "Rack ID;RK-0042"), "NOREAD", "ERROR", "NO TUBE", "EMPTY" or an empty
cell as markers, cp1252/latin-1 and UTF-16 (Excel "Unicode text") files, and the empty
padding cells and rows a spreadsheet adds when the file was opened and saved in one.

Positions are not checked against a box and barcodes not against their check character:
the service layer does that, so it can report each position as stored, unknown or wrong
rather than refusing the whole rack for one bad tube.

Besides ``MAX_BYTES``, the lines of the file, their length and their cells are read within
the limits of an upload (:mod:`biobank.uploads`), which refuses a file over them with its
own error.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass

from biobank import uploads
from biobank.samples.barcodes import normalize
from biobank.storage.positions import split_position
from biobank.uploads import UploadLimits

__all__ = [
    "MAX_BYTES",
    "NO_READ",
    "NO_TUBE",
    "TUBE",
    "RackRead",
    "RackScan",
    "RackScanError",
    "parse_rack_csv",
]

TUBE = "tube"
NO_TUBE = "no_tube"
NO_READ = "no_read"

# A 384-position scan with long barcodes is under 20 kB; a megabyte is a wrong file
# (a spreadsheet, an image, a log), refused before it is decoded and split.
MAX_BYTES = 1_000_000

# Markers are compared without case, spaces, "_" or "-", so "No Read", "NO_READ" and
# "NOREAD" are one marker. An empty cell counts as no tube: it is how scanners without a
# marker leave an empty position, and a tube that is there but unread is still caught when
# its aliquot is missing from the scan.
_NO_READ_MARKERS = frozenset({"NOREAD", "ERROR"})
_NO_TUBE_MARKERS = frozenset({"", "NOTUBE", "EMPTY", "NOTRAKMATE"})
_MARKERS = _NO_READ_MARKERS | _NO_TUBE_MARKERS

# Header words, compared lowercase with everything but letters and digits removed, so
# "Tube Barcode", "TubeBarcode" and "tube_barcode" are one word. "Code" alone is left out:
# it names too many things ("Code;1234" in a metadata line is not a header).
_POSITION = "position"
_BARCODE = "barcode"
_RACK = "rack"
_HEADER_WORDS = {
    **dict.fromkeys(
        (
            "position",
            "pos",
            "well",
            "wellposition",
            "tubeposition",
            "tubepos",
            "location",
            "tubelocation",
            "coordinate",
        ),
        _POSITION,
    ),
    **dict.fromkeys(
        ("barcode", "tube", "tubeid", "tubebarcode", "tubecode", "2dbarcode"),
        _BARCODE,
    ),
    **dict.fromkeys(
        (
            "rack",
            "rackid",
            "rackbarcode",
            "rackcode",
            "racknumber",
            "rackbasename",
            "tuberack",
            "tuberackid",
            "tuberackbarcode",
        ),
        _RACK,
    ),
}
_DEFAULT_NAMES = {_RACK: "Rack", _POSITION: "Position", _BARCODE: "Barcode"}

# Order is the preference on a tie: a tab or a semicolon in a comma file is rarer than a
# comma inside a cell of a semicolon file (decimal commas, "Freezer 3, shelf 2").
_DELIMITERS = ("\t", ";", ",")

# C0 controls other than tab never occur in a text export; a zip (.xlsx), an image or a
# Word file contains them within the first bytes.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KEY_VALUE = re.compile(r"\s*([^:=]+?)\s*[:=]\s*(.*?)\s*")
_NOT_WORD = re.compile(r"[^a-z0-9]")
_MARKER_NOISE = re.compile(r"[\s_-]+")


class RackScanError(ValueError):
    """A rack-scanner file cannot be read; ``str(err)`` is the message for the user.

    ``line`` (1-based) and ``column`` (its header name, or Rack/Position/Barcode in a file
    without header) say where, when the problem has a place; ``problem`` is the message
    without that place.
    """

    def __init__(self, problem: str, *, line: int | None = None, column: str | None = None):
        self.problem = problem
        self.line = line
        self.column = column
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f'column "{column}"')
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)


@dataclass(frozen=True)
class RackRead:
    """One position of a scan as the file gives it.

    ``position`` is as written, stripped ("A01" or "a1"); ``barcode`` is stripped and in
    uppercase, None when ``state`` is ``NO_TUBE`` or ``NO_READ``; ``state`` is ``TUBE``
    otherwise.
    """

    line: int
    position: str
    barcode: str | None
    state: str


@dataclass(frozen=True)
class RackScan:
    """A parsed scan: the rack barcode if the file names one, and the reads in file order."""

    rack: str | None
    reads: tuple[RackRead, ...]


@dataclass(frozen=True)
class _Row:
    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class _Layout:
    width: int
    position: int
    barcode: int
    rack: int | None
    names: tuple[str, ...]
    header_line: int | None


def parse_rack_csv(data: bytes, *, limits: UploadLimits | None = None) -> RackScan:
    """Parse the bytes of a rack-scanner export into a ``RackScan``.

    Raises ``RackScanError`` for a file that is not a readable scan: not text, no tube
    position, a header without a position or barcode column, a row with the wrong number
    of cells, an empty position, a position given twice, or two different rack barcodes.
    The message names the line and the column where there is one.
    """
    rows = _rows(_decode(data), limits or uploads.current_limits())
    header_at = _find_header(rows)
    if header_at is not None:
        layout = _layout_from_header(rows[header_at])
        preamble, body = rows[:header_at], rows[header_at + 1 :]
        _check_preamble(preamble, rows[header_at].line)
    else:
        start = next((i for i, row in enumerate(rows) if _is_table_row(row)), len(rows))
        preamble, body = rows[:start], rows[start:]
        layout = _layout_from_first_row(body[0]) if body else None
    if layout is None or not body:
        raise RackScanError("no tube positions in the file")

    rack = _preamble_rack(preamble)
    reads: list[RackRead] = []
    seen: dict[object, tuple[int, str]] = {}
    for row in body:
        if layout.header_line is not None and _is_header(row):
            raise RackScanError(
                f"a second header line (the first is line {layout.header_line}): "
                f"are two scans in one file?",
                line=row.line,
            )
        cells = _fit(row, layout)
        position = cells[layout.position]
        position_name = layout.names[layout.position]
        if not position:
            raise RackScanError("empty", line=row.line, column=position_name)
        key = split_position(position) or normalize(position)
        if key in seen:
            first_line, first_position = seen[key]
            raise RackScanError(
                f'position "{position}" is already on line {first_line} ("{first_position}")',
                line=row.line,
                column=position_name,
            )
        seen[key] = (row.line, position)
        if layout.rack is not None:
            rack = _agree(rack, cells[layout.rack], row.line, layout.names[layout.rack])
        barcode, state = _read_barcode(cells[layout.barcode])
        reads.append(RackRead(line=row.line, position=position, barcode=barcode, state=state))
    return RackScan(rack=rack[0] if rack else None, reads=tuple(reads))


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise RackScanError(
            f"the file has {len(data):,} bytes; a rack scan is far smaller "
            f"(at most {MAX_BYTES:,}): is it the scanner's CSV export?"
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise RackScanError("the file starts as UTF-16 text but is not valid UTF-16") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    # Windows exports are in the ANSI code page, cp1252 in Western Europe and the Americas;
    # latin-1 is the last resort because it decodes any byte, so decoding never fails.
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _rows(text: str, limits: UploadLimits) -> list[_Row]:
    # Physical lines are split here rather than by the csv module so that line numbers are
    # the ones an editor shows, whatever the quoting; no scanner puts a line break in a cell.
    split = uploads.text_lines(text, limits=limits, keepends=False)
    lines = list(enumerate(split, start=1))
    for number, line in lines:
        control = _CONTROL.search(line)
        if control:
            raise RackScanError(
                f"not a text file (control character U+{ord(control.group()):04X}): "
                f"export the scan as CSV",
                line=number,
            )
    delimiter = _detect_delimiter([line for _, line in lines if line.strip()])
    rows = []
    for number, line in lines:
        try:
            cells = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
        except csv.Error as err:
            raise RackScanError(f"not readable as CSV ({err})", line=number) from None
        stripped = tuple(cell.strip() for cell in cells)
        width = len(stripped)
        while width and not stripped[width - 1]:
            width -= 1  # spreadsheet padding after the last cell is no column
        uploads.check_columns(width, line=number, limits=limits)
        # Blank lines and spreadsheet padding rows (",,") carry nothing.
        if any(stripped):
            rows.append(_Row(number, stripped))
    return rows


def _detect_delimiter(lines: list[str]) -> str:
    # The separator on the most lines wins. csv.Sniffer guesses wrong on files this short,
    # and a sample of the first lines would see only a metadata block where there is one.
    counts = {delimiter: sum(delimiter in line for line in lines) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])  # first wins a tie
    return best if counts[best] else ","


def _header_word(cell: str) -> str | None:
    return _HEADER_WORDS.get(_NOT_WORD.sub("", cell.lower()))


def _is_header(row: _Row) -> bool:
    # A header names a position or barcode column and holds no position: a data row always
    # holds one, so a tube whose barcode happens to be "TUBE" is never taken for a header.
    roles = {_header_word(cell) for cell in row.cells}
    return bool(roles & {_POSITION, _BARCODE}) and not any(map(split_position, row.cells))


def _find_header(rows: list[_Row]) -> int | None:
    return next((index for index, row in enumerate(rows) if _is_header(row)), None)


def _layout_from_header(header: _Row) -> _Layout:
    cells = list(header.cells)
    while cells and not cells[-1]:
        cells.pop()  # spreadsheet padding after the last column name
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        role = _header_word(cell)
        if role is None:
            continue
        if role in found:
            raise RackScanError(
                f'two {role} columns, "{cells[found[role]]}" and "{cell}"', line=header.line
            )
        found[role] = index
    for role, examples in ((_POSITION, "Position, Pos or Well"), (_BARCODE, "Barcode or Tube")):
        if role not in found:
            raise RackScanError(
                f"the header has no {role} column (a column named {examples})", line=header.line
            )
    names = tuple(cell or f"column {index + 1}" for index, cell in enumerate(cells))
    return _Layout(
        width=len(cells),
        position=found[_POSITION],
        barcode=found[_BARCODE],
        rack=found.get(_RACK),
        names=names,
        header_line=header.line,
    )


def _layout_from_first_row(row: _Row) -> _Layout:
    # Without a header, three cells are rack, position, barcode and two are position,
    # barcode. Where the position is decides between the two, so that "RK1,A01," (an empty
    # well) keeps its rack and "A01,FX123," (a trailing separator) is not read as a rack.
    cells = row.cells
    if len(cells) >= 3 and cells[0] and split_position(cells[1]):
        width = 3
    elif split_position(cells[0]):
        width = 2
    elif len(cells) in (2, 3):
        width = len(cells)
    else:
        raise RackScanError(
            f"{_cells(len(cells))} and no header line: expected position and barcode, "
            f"or rack, position and barcode",
            line=row.line,
        )
    roles = (_POSITION, _BARCODE) if width == 2 else (_RACK, _POSITION, _BARCODE)
    return _Layout(
        width=width,
        position=roles.index(_POSITION),
        barcode=roles.index(_BARCODE),
        rack=roles.index(_RACK) if _RACK in roles else None,
        names=tuple(_DEFAULT_NAMES[role] for role in roles),
        header_line=None,
    )


def _is_table_row(row: _Row) -> bool:
    """Whether a row of a file without header starts the table rather than metadata.

    The table starts at the first row with a position where one can be (first or second
    cell); rows above it ("Scanner;XTR-96", "Rack: RK1") are metadata.
    """
    return _rack_in(row) is None and any(map(split_position, row.cells[:2]))


def _check_preamble(preamble: list[_Row], header_line: int) -> None:
    for row in preamble:
        filled = [cell for cell in row.cells if cell]
        if len(filled) >= 2 and any(map(split_position, filled)):
            raise RackScanError(
                f"a tube position above the header line {header_line}", line=row.line
            )


def _rack_in(row: _Row) -> str | None:
    """The rack a metadata row names ("Rack: RK1" or "Rack ID;RK1"), or None."""
    for index, cell in enumerate(row.cells):
        key_value = _KEY_VALUE.fullmatch(cell)
        if key_value and _header_word(key_value.group(1)) == _RACK and key_value.group(2):
            return key_value.group(2)
        following = row.cells[index + 1] if index + 1 < len(row.cells) else ""
        if _header_word(cell) == _RACK and following:
            return following
    return None


def _preamble_rack(preamble: list[_Row]) -> tuple[str, int, str] | None:
    rack = None
    for row in preamble:
        named = _rack_in(row)
        if named is not None:
            rack = _agree(rack, named, row.line, None)
    return rack


def _agree(
    known: tuple[str, int, str] | None, raw: str, line: int, column: str | None
) -> tuple[str, int, str] | None:
    """Check that a rack barcode matches the one named before; return the rack now known.

    A rack is (normalized barcode, line, as written). An empty or unread rack cell names no
    rack, so it conflicts with none: only two different barcodes do.
    """
    if _marker_key(raw) in _MARKERS:
        return known
    value = normalize(raw)
    if known is None:
        return value, line, raw
    if value != known[0]:
        raise RackScanError(
            f'rack "{raw}" differs from rack "{known[2]}" on line {known[1]}',
            line=line,
            column=column,
        )
    return known


def _fit(row: _Row, layout: _Layout) -> tuple[str, ...]:
    cells = row.cells
    extra = cells[layout.width :]
    if len(cells) < layout.width or any(extra):
        count = len(cells) - _trailing_blanks(cells) if any(extra) else len(cells)
        expected = f"{_cells(count)}, expected {layout.width} ({', '.join(layout.names)})"
        if layout.header_line is not None:
            expected += f" as in the header on line {layout.header_line}"
        raise RackScanError(expected, line=row.line)
    return cells[: layout.width]


def _trailing_blanks(cells: tuple[str, ...]) -> int:
    count = 0
    for cell in reversed(cells):
        if cell:
            break
        count += 1
    return count


def _cells(count: int) -> str:
    return "1 cell" if count == 1 else f"{count} cells"


def _marker_key(cell: str) -> str:
    return _MARKER_NOISE.sub("", normalize(cell))


def _read_barcode(cell: str) -> tuple[str | None, str]:
    key = _marker_key(cell)
    if key in _NO_TUBE_MARKERS:
        return None, NO_TUBE
    if key in _NO_READ_MARKERS:
        return None, NO_READ
    return normalize(cell), TUBE
