"""96-well plate maps: the xlsx form technicians edit, and layout templates that fill it.

A plate map says what sits in each well of a 96-well plate: an aliquot barcode, a
standard (``STD1`` … ``STDn``), a reagent blank (``BLANK``) or a kit control
(``CTRL-L``, ``CTRL-H``). Replicate wells share a name. The workbook form is an
interface other scripts depend on:

* sheet ``Layout``: the 8 × 12 grid, row letters A–H in A2:A9, column numbers 1–12
  in B1:M1, one content per cell, empty cells for empty wells;
* sheet ``Standards``: columns ``Name``, ``Concentration``, ``Unit``;
* optional sheet ``Dilutions``: columns ``Barcode``, ``Dilution`` (absent = neat, 1);
* optional sheet ``Controls``: columns ``Name``, ``Low``, ``High`` (the kit range,
  in the standards' unit; absent = controls without a range).

:func:`write_plate_map` adds a ``List`` sheet (one row per well with whatever details
the caller knows) and a title under the grid; :func:`read_plate_map` ignores both.

Reading forgives what a person does to a spreadsheet (sheet-name case, spaces around
values, lower-case barcodes, numbers typed as text, decimal commas, a title above a
header row, columns in any order) and refuses, naming the sheet and cell, whatever
would silently change a result: an undeclared or twice-declared standard, an unusable
concentration or dilution, a dilution for a barcode that is not on the plate, mixed
units.

Layout templates are TOML files (``layouts/*.toml`` next to this module) that say
which standards, blanks and controls a kit needs and how many replicate wells each
gets; :func:`lay_out` fills a plate from one in a fixed, documented order.

Pure: openpyxl, tomllib, the shared cell writer (``biobank/tabular.py``) and the upload
limits (``biobank/uploads.py``, which reads an uploaded workbook within its caps), nothing
from a Flask application, the database or the rest of the application.
"""

from __future__ import annotations

import io
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from biobank import tabular, uploads
from biobank.uploads import UploadLimits

__all__ = [
    "BLANK",
    "DIRECTIONS",
    "ROWS",
    "WELLS",
    "Control",
    "LayoutTemplate",
    "PlateMap",
    "PlateMapError",
    "Standard",
    "lay_out",
    "load_layout_templates",
    "read_plate_map",
    "write_plate_map",
]

ROWS = "ABCDEFGH"
COLUMNS = tuple(range(1, 13))
WELLS: tuple[str, ...] = tuple(f"{row}{column}" for row in ROWS for column in COLUMNS)
BLANK = "BLANK"
DIRECTIONS = ("columns", "rows")
LAYOUTS_FOLDER = Path(__file__).with_name("layouts")

# Sheet names, as written; read case-insensitively.
LAYOUT, STANDARDS, DILUTIONS, CONTROLS, LIST = (
    "Layout",
    "Standards",
    "Dilutions",
    "Controls",
    "List",
)
_LIST_COLUMNS = ("Well", "Content", "Kind", "Dilution")

# A header row may sit under a title or a note, but not further down.
_HEADER_SEARCH_ROWS = 5
# Enough to say what is wrong with a badly edited file without burying the first problem.
_MAX_PROBLEMS = 20

_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# What a person may type for a standard or a control, and the canonical forms. A
# control needs its separator: generated aliquot barcodes are plain alphanumerics, so
# "CTRLABCDE" must stay a barcode, while "CTRL L" or "ctrl-h" cannot be one. Standard
# numbers stop at 99 for the same reason ("STD" plus six digits could be a barcode).
_STANDARD_TYPED = re.compile(r"STD[\s_-]*(\d{1,3})")
_CONTROL_TYPED = re.compile(r"CTRL(?:\s*[-_]\s*|\s+)([A-Z0-9]{1,8})")
_STANDARD = re.compile(r"STD[1-9][0-9]?")
_CONTROL = re.compile(r"CTRL-[A-Z0-9]{1,8}")
_BARCODE = re.compile(r"[!-~]+")  # printable ASCII, no space
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# "1,000" reads as 1.0 with a decimal comma and as 1000 with a thousands separator.
_AMBIGUOUS_COMMA = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}")

_FILLS = {
    "standard": PatternFill("solid", fgColor="DDEBF7"),
    "blank": PatternFill("solid", fgColor="EDEDED"),
    "control": PatternFill("solid", fgColor="FCE4D6"),
}


class PlateMapError(ValueError):
    """A plate map or a layout template is unusable.

    ``str(err)`` is the message for the user: each problem names the sheet and cell
    (``Standards!B4``) or the template file and key. ``err.problems`` lists them.
    """

    def __init__(self, *problems: str) -> None:
        shown = list(problems[:_MAX_PROBLEMS])
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - _MAX_PROBLEMS} more problems")
        super().__init__("; ".join(shown))
        self.problems: tuple[str, ...] = tuple(problems)


def _stored(value: Any) -> Any:
    """A number as a workbook keeps it: a float of 16 significant digits.

    openpyxl writes numbers with ``%.16g``; rounding on construction as well makes
    ``read_plate_map(write_plate_map(p)) == p`` hold for every plate, not only for
    numbers a person would type. Anything else is left for validation to refuse.
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(f"{value:.16g}")
    return value


@dataclass(frozen=True)
class Standard:
    """A calibrator: ``STDn`` at a nominal concentration (0 for the zero standard)."""

    name: str
    concentration: float
    unit: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "concentration", _stored(self.concentration))


@dataclass(frozen=True)
class Control:
    """A kit control and its acceptance range (``None`` where the range is not known)."""

    name: str
    low: float | None
    high: float | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _stored(self.low))
        object.__setattr__(self, "high", _stored(self.high))


def content_kind(content: str) -> str:
    """Classify a canonical well content: ``standard``, ``blank``, ``control`` or ``sample``."""
    if _STANDARD.fullmatch(content):
        return "standard"
    if content == BLANK:
        return "blank"
    if _CONTROL.fullmatch(content):
        return "control"
    return "sample"


@dataclass(frozen=True)
class PlateMap:
    """What each well of a plate holds.

    ``wells`` maps a well (``"A1"``) to its content; empty wells are absent.
    ``dilutions`` maps a sample barcode to its dilution factor; a factor of 1 is
    dropped on construction, so "absent" and "1" compare equal. Numbers here and in
    :class:`Standard` and :class:`Control` are kept to 16 significant digits, as the
    workbook stores them.
    """

    wells: dict[str, str]
    standards: tuple[Standard, ...]
    dilutions: dict[str, float]
    controls: tuple[Control, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "wells", dict(self.wells))
        object.__setattr__(self, "standards", tuple(self.standards))
        stored = {barcode: _stored(factor) for barcode, factor in self.dilutions.items()}
        dilutions = {barcode: factor for barcode, factor in stored.items() if factor != 1}
        object.__setattr__(self, "dilutions", dilutions)
        object.__setattr__(self, "controls", tuple(self.controls))

    def groups(self) -> dict[str, list[str]]:
        """Map each content to its wells, in ``WELLS`` order; contents in first-well order."""
        groups: dict[str, list[str]] = {}
        for well in WELLS:
            content = self.wells.get(well)
            if content is not None:
                groups.setdefault(content, []).append(well)
        return groups

    def kind(self, content: str) -> str:
        """Return ``standard``, ``blank``, ``control`` or ``sample`` for a well content."""
        return content_kind(content)

    def samples(self) -> list[str]:
        """Return the sample barcodes in the order of their first well in ``WELLS`` (row-major)."""
        return [content for content in self.groups() if content_kind(content) == "sample"]


# --------------------------------------------------------------------------- values


def _canonical_content(text: str) -> str:
    """Return the canonical form of a well content, or raise ``ValueError`` saying why not."""
    value = text.strip().translate(_ASCII_UPPER)
    if not value:
        raise ValueError("is empty")
    if match := _STANDARD_TYPED.fullmatch(value):
        number = int(match[1])
        if not 1 <= number <= 99:
            raise ValueError(f"{text.strip()!r}: standards are numbered STD1 to STD99")
        return f"STD{number}"
    if match := _CONTROL_TYPED.fullmatch(value):
        return f"CTRL-{match[1]}"
    if value == BLANK:
        return BLANK
    if not _BARCODE.fullmatch(value):
        raise ValueError(
            f"{text.strip()!r} is not a barcode: a barcode has no space and no character "
            "outside plain ASCII"
        )
    return value


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "an empty cell"
    return repr(value.strip()) if isinstance(value, str) else repr(value)


def _cell_text(value: Any) -> str | None:
    """Text of a cell that should hold a name or a barcode; ``None`` when empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        raise ValueError(f"{value} is TRUE/FALSE, not a name")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise ValueError(f"{_shown(value)} is not a name or a barcode")


def _number(value: Any) -> float:
    """Parse a number typed by a person: numbers, or text with a decimal point or comma."""
    if isinstance(value, bool):
        raise ValueError(f"{value} is TRUE/FALSE, not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _AMBIGUOUS_COMMA.fullmatch(text):
            raise ValueError(
                f"{text!r} is ambiguous (a decimal comma or a thousands separator?): "
                "write it without a thousands separator, e.g. 1000 or 1.5"
            )
        if "," in text and "." in text:
            raise ValueError(f"{text!r} mixes ',' and '.': write the number without separators")
        text = text.replace(",", ".")
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"{_shown(value)} is not a number")
        number = float(text)
    else:
        raise ValueError(f"{_shown(value)} is not a number")
    if not math.isfinite(number):
        raise ValueError(f"{_shown(value)} is not a finite number")
    return number


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- reading


@dataclass
class _Table:
    """Rows under a header row found by name; cell values keyed by lower-case header."""

    title: str
    columns: dict[str, int]  # header → 0-based column index
    rows: list[tuple[int, dict[str, Any]]]  # (1-based row number, header → value)

    def ref(self, header: str, row: int) -> str:
        return f"{self.title}!{get_column_letter(self.columns[header] + 1)}{row}"


def _header_name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split()).lower()
    return None


def _sheet_rows(
    book: uploads.Workbook, ws: Worksheet, max_row: int | None = None, width: int = 0
) -> list[list[Any]]:
    # Up to the last cell with a value, whatever the file's <dimension> tag says.
    rows = [list(row) for row in islice(book.rows(ws), max_row)]
    if max_row is not None:
        rows.extend([] for _ in range(max_row - len(rows)))
    for row in rows:
        row.extend([None] * (width - len(row)))
    return rows


def _read_table(book: uploads.Workbook, ws: Worksheet, required: tuple[str, ...]) -> _Table | None:
    """Find the header row among the first rows of ``ws`` and return the rows under it.

    Returns ``None`` for a sheet with nothing in it, which counts as an absent sheet.
    """
    rows = _sheet_rows(book, ws)
    width = max((len(row) for row in rows), default=0)
    for row in rows:
        row.extend([None] * (width - len(row)))
    if not any(_cell_is_filled(value) for row in rows for value in row):
        return None
    wanted = ", ".join(name.capitalize() for name in required)
    best: tuple[int, int, dict[str, list[int]]] | None = None  # (matches, row, names)
    for number, row in enumerate(rows[:_HEADER_SEARCH_ROWS], start=1):
        names: dict[str, list[int]] = {}
        for index, value in enumerate(row):
            name = _header_name(value)
            if name is not None:
                names.setdefault(name, []).append(index)
        matches = sum(1 for name in required if name in names)
        if names and (best is None or matches > best[0]):
            best = (matches, number, names)
        if matches == len(required):
            twice = [name for name in required if len(names[name]) > 1]
            if twice:
                cells = " and ".join(
                    f"{ws.title}!{get_column_letter(i + 1)}{number}" for i in names[twice[0]]
                )
                raise PlateMapError(
                    f"{ws.title} row {number}: header {twice[0].capitalize()!r} appears twice "
                    f"({cells}); keep one column"
                )
            columns = {name: names[name][0] for name in required}
            data = []
            for row_number, values in enumerate(rows[number:], start=number + 1):
                cells = {name: values[index] for name, index in columns.items()}
                if any(_cell_is_filled(value) for value in cells.values()):
                    data.append((row_number, cells))
            return _Table(ws.title, columns, data)
    if best is None:
        raise PlateMapError(
            f"{ws.title}: no header row in rows 1–{_HEADER_SEARCH_ROWS}; "
            f"write the headers {wanted} in one row"
        )
    _, number, names = best
    missing = [name.capitalize() for name in required if name not in names]
    others = [
        f"{ws.title}!{get_column_letter(index + 1)}{number} holds {rows[number - 1][index]!r}"
        for name, indexes in names.items()
        if name not in required
        for index in indexes
    ]
    found = f" ({'; '.join(others)})" if others else ""
    raise PlateMapError(
        f"{ws.title} row {number}: header {' and '.join(map(repr, missing))} missing{found}; "
        f"the header row needs {wanted}, in any order, in one of rows 1–{_HEADER_SEARCH_ROWS}"
    )


def _cell_is_filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _header_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    return None


def _layout_ref(title: str, well: str) -> str:
    return f"{title}!{get_column_letter(int(well[1:]) + 1)}{ROWS.index(well[0]) + 2}"


def _read_layout(book: uploads.Workbook, ws: Worksheet) -> dict[str, str]:
    rows = _sheet_rows(book, ws, max_row=len(ROWS) + 1, width=len(COLUMNS) + 1)
    problems = []
    for column in COLUMNS:
        value = rows[0][column]
        if _header_number(value) != column:
            problems.append(
                f"{ws.title}!{get_column_letter(column + 1)}1: column header should be "
                f"{column}, found {_shown(value)}"
            )
    for index, letter in enumerate(ROWS):
        value = rows[index + 1][0]
        if not (isinstance(value, str) and value.strip().upper() == letter):
            problems.append(
                f"{ws.title}!A{index + 2}: row header should be {letter}, found {_shown(value)}"
            )
    if problems:
        problems.append(
            f"{ws.title} holds the plate grid with row letters A–H in A2:A9 and column "
            "numbers 1–12 in B1:M1"
        )
        raise PlateMapError(*problems)
    wells: dict[str, str] = {}
    for well in WELLS:
        value = rows[ROWS.index(well[0]) + 1][int(well[1:])]
        try:
            text = _cell_text(value)
            if text is not None:
                wells[well] = _canonical_content(text)
        except ValueError as err:
            problems.append(f"{_layout_ref(ws.title, well)} (well {well}): {err}")
    if problems:
        raise PlateMapError(*problems)
    return wells


def _read_standards(table: _Table, problems: list[str]) -> tuple[tuple[Standard, ...], set[str]]:
    """Return the valid standards and the names of every row, valid or not."""
    standards: list[Standard] = []
    declared: dict[str, str] = {}
    first_unit: tuple[str, str] | None = None  # (unit, cell)
    for row, cells in table.rows:
        name_ref = table.ref("name", row)
        try:
            text = _cell_text(cells["name"])
            if text is None:
                raise ValueError("name missing: write STD1, STD2, …")
            name = _canonical_content(text)
            if content_kind(name) != "standard":
                raise ValueError(f"{text!r} is not a standard name: write STD1, STD2, …")
        except ValueError as err:
            problems.append(f"{name_ref}: {err}")
            continue
        if name in declared:
            problems.append(f"{name_ref}: {name} is declared twice (first in {declared[name]})")
            continue
        declared[name] = name_ref
        concentration = _checked(
            problems, table.ref("concentration", row), _concentration, cells["concentration"]
        )
        unit_ref = table.ref("unit", row)
        unit = cells["unit"].strip() if isinstance(cells["unit"], str) else None
        if not unit:
            problems.append(f"{unit_ref}: unit of {name} missing, e.g. pg/mL")
            continue
        if first_unit is None:
            first_unit = (unit, unit_ref)
        elif unit != first_unit[0]:
            problems.append(
                f"{unit_ref}: unit {unit!r} differs from {first_unit[0]!r} in {first_unit[1]}; "
                "all standards share one unit"
            )
            continue
        if concentration is not None:
            standards.append(Standard(name, concentration, unit))
    return tuple(standards), set(declared)


def _concentration(value: Any) -> float:
    if not _cell_is_filled(value):
        raise ValueError("concentration missing")
    number = _number(value)
    if number < 0:
        raise ValueError(
            f"concentration {_shown(value)} is negative: a standard is positive, or 0 for "
            "the zero standard"
        )
    return number


def _dilution(value: Any) -> float:
    if not _cell_is_filled(value):
        raise ValueError("dilution factor missing")
    number = _number(value)
    if number < 1:
        raise ValueError(
            f"dilution {_shown(value)} is below 1: a dilution factor is 1 for a neat sample, "
            "2 for one part sample in two"
        )
    return number


def _range_limit(value: Any) -> float | None:
    if not _cell_is_filled(value):
        return None
    number = _number(value)
    if number < 0:
        raise ValueError(f"{_shown(value)} is negative")
    return number


def _checked(problems: list[str], ref: str, parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except ValueError as err:
        problems.append(f"{ref}: {err}")
        return None


def _read_dilutions(table: _Table, wells: dict[str, str], problems: list[str]) -> dict[str, float]:
    on_plate = set(wells.values())
    dilutions: dict[str, float] = {}
    declared: dict[str, str] = {}
    for row, cells in table.rows:
        ref = table.ref("barcode", row)
        try:
            text = _cell_text(cells["barcode"])
            if text is None:
                raise ValueError("barcode missing")
            barcode = _canonical_content(text)
        except ValueError as err:
            problems.append(f"{ref}: {err}")
            continue
        if content_kind(barcode) != "sample":
            problems.append(f"{ref}: {barcode} is not a sample; only samples are diluted")
            continue
        if barcode not in on_plate:
            problems.append(f"{ref}: barcode {barcode} is not on the plate (sheet {LAYOUT})")
            continue
        if barcode in declared:
            problems.append(f"{ref}: {barcode} is listed twice (first in {declared[barcode]})")
            continue
        declared[barcode] = ref
        factor = _checked(problems, table.ref("dilution", row), _dilution, cells["dilution"])
        if factor is not None:
            dilutions[barcode] = factor
    return dilutions


def _read_controls(table: _Table, problems: list[str]) -> tuple[Control, ...]:
    controls: list[Control] = []
    declared: dict[str, str] = {}
    for row, cells in table.rows:
        ref = table.ref("name", row)
        try:
            text = _cell_text(cells["name"])
            if text is None:
                raise ValueError("name missing: write CTRL-L, CTRL-H, …")
            name = _canonical_content(text)
            if content_kind(name) != "control":
                raise ValueError(f"{text!r} is not a control name: write CTRL-L, CTRL-H, …")
        except ValueError as err:
            problems.append(f"{ref}: {err}")
            continue
        if name in declared:
            problems.append(f"{ref}: {name} is declared twice (first in {declared[name]})")
            continue
        declared[name] = ref
        count = len(problems)
        low = _checked(problems, table.ref("low", row), _range_limit, cells["low"])
        high = _checked(problems, table.ref("high", row), _range_limit, cells["high"])
        if len(problems) > count:
            continue
        if low is not None and high is not None and low > high:
            problems.append(
                f"{table.ref('low', row)}: low limit {low:g} of {name} is above its high limit "
                f"{high:g} in {table.ref('high', row)}"
            )
            continue
        controls.append(Control(name, low, high))
    return tuple(controls)


def read_plate_map(data: bytes, *, limits: UploadLimits | None = None) -> PlateMap:
    """Read a plate-map workbook (xlsx bytes); raise ``PlateMapError`` naming sheet and cell.

    A workbook over the limits of an upload raises ``uploads.TooLarge`` instead."""
    try:
        workbook = uploads.open_workbook(bytes(data), limits=limits)
    except uploads.TooLarge:
        raise
    except Exception as err:  # openpyxl raises a zoo of zip, XML and key errors
        raise PlateMapError(
            f"not an Excel .xlsx workbook ({type(err).__name__}); save the plate map as .xlsx"
        ) from err
    try:
        sheets = _sheets_by_name(workbook.worksheets)
        if LAYOUT.lower() not in sheets:
            names = ", ".join(repr(ws.title) for ws in workbook.worksheets) or "none"
            raise PlateMapError(
                f"no sheet named {LAYOUT!r} (sheets: {names}); the plate grid goes in a sheet "
                f"{LAYOUT!r}"
            )
        layout = sheets[LAYOUT.lower()]
        wells = _read_layout(workbook, layout)
        tables = {
            key: _read_table(workbook, sheets[key.lower()], required)
            if key.lower() in sheets
            else None
            for key, required in (
                (STANDARDS, ("name", "concentration", "unit")),
                (DILUTIONS, ("barcode", "dilution")),
                (CONTROLS, ("name", "low", "high")),
            )
        }
    finally:
        workbook.close()

    problems: list[str] = []
    standards_table = tables[STANDARDS]
    standards: tuple[Standard, ...] = ()
    declared: set[str] = set()
    if standards_table is not None:
        standards, declared = _read_standards(standards_table, problems)
    for content, plate_wells in PlateMap(wells, (), {}).groups().items():
        if content_kind(content) == "standard" and content not in declared:
            ref = _layout_ref(layout.title, plate_wells[0])
            if standards_table is None:
                problems.append(
                    f"{ref}: {content} is on the plate but the workbook has no sheet "
                    f"{STANDARDS!r} with its concentration"
                )
            else:
                problems.append(
                    f"{ref}: {content} has no row in sheet {standards_table.title!r}; "
                    "add its concentration"
                )
    dilutions = _read_dilutions(tables[DILUTIONS], wells, problems) if tables[DILUTIONS] else {}
    controls = _read_controls(tables[CONTROLS], problems) if tables[CONTROLS] else ()
    if problems:
        raise PlateMapError(*problems)
    return PlateMap(wells, standards, dilutions, controls)


def _sheets_by_name(worksheets: Iterable[Any]) -> dict[str, Any]:
    ours = {name.lower() for name in (LAYOUT, STANDARDS, DILUTIONS, CONTROLS)}
    sheets: dict[str, Any] = {}
    for ws in worksheets:
        if not hasattr(ws, "iter_rows"):  # a chart sheet
            continue
        key = ws.title.strip().lower()
        if key in sheets and key in ours:
            raise PlateMapError(
                f"sheets {sheets[key].title!r} and {ws.title!r} have the same name; keep one"
            )
        sheets.setdefault(key, ws)
    return sheets


# --------------------------------------------------------------------------- writing


def _check_plate(plate: PlateMap) -> None:
    """Refuse a plate that read_plate_map would reject or read back differently."""
    problems: list[str] = []
    for well, content in plate.wells.items():
        if well not in WELLS:
            problems.append(f"well {well!r} is not a well of a 96-well plate (A1 to H12)")
            continue
        if not isinstance(content, str):
            problems.append(f"well {well}: {content!r} is not text")
            continue
        try:
            canonical = _canonical_content(content)
        except ValueError as err:
            problems.append(f"well {well}: {err}")
            continue
        if canonical != content:
            problems.append(f"well {well}: {content!r} should be written {canonical!r}")
    names: set[str] = set()
    units = {str(standard.unit) for standard in plate.standards}
    for standard in plate.standards:
        if not (isinstance(standard.name, str) and _STANDARD.fullmatch(standard.name)):
            problems.append(f"standard {standard.name!r}: not a name STD1 … STD99")
        elif standard.name in names:
            problems.append(f"standard {standard.name}: declared twice")
        names.add(standard.name)
        if not (_is_number(standard.concentration) and standard.concentration >= 0):
            problems.append(
                f"standard {standard.name}: concentration {standard.concentration!r} is not a "
                "number ≥ 0"
            )
        if not (
            isinstance(standard.unit, str)
            and standard.unit
            and standard.unit.strip() == standard.unit
        ):
            problems.append(f"standard {standard.name}: unit {standard.unit!r} is not a unit")
    if len(units) > 1:
        problems.append(f"standards in several units: {sorted(units)}")
    groups = plate.groups()
    for content in groups:
        if content_kind(content) == "standard" and content not in names:
            problems.append(f"well {groups[content][0]}: {content} is not among the standards")
    for barcode, factor in plate.dilutions.items():
        if barcode not in groups or content_kind(barcode) != "sample":
            problems.append(f"dilution for {barcode!r}, which is not a sample on the plate")
        if not (_is_number(factor) and factor >= 1):
            problems.append(f"dilution of {barcode}: {factor!r} is not a number ≥ 1")
    seen: set[str] = set()
    for control in plate.controls:
        if not (isinstance(control.name, str) and _CONTROL.fullmatch(control.name)):
            problems.append(f"control {control.name!r}: not a name like CTRL-L")
        elif control.name in seen:
            problems.append(f"control {control.name}: declared twice")
        seen.add(control.name)
        for limit in (control.low, control.high):
            if limit is not None and not (_is_number(limit) and limit >= 0):
                problems.append(f"control {control.name}: limit {limit!r} is not a number ≥ 0")
        if _is_number(control.low) and _is_number(control.high) and control.low > control.high:
            problems.append(f"control {control.name}: low {control.low} above high {control.high}")
    if problems:
        raise PlateMapError(*problems)


def _fit_columns(ws: Worksheet, minimum: int = 8, maximum: int = 50) -> None:
    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is not None:
                length = len(str(cell.value))
                widths[cell.column] = max(widths.get(cell.column, 0), length)
    for column, length in widths.items():
        width = min(max(length + 2, minimum), maximum)
        ws.column_dimensions[get_column_letter(column)].width = width


def _table_sheet(
    workbook: Workbook,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    verbatim: bool = False,
) -> Worksheet:
    """A sheet of ``rows`` under a bold ``header``. Texts are stored as text and never as
    a formula (biobank/tabular.py): a sheet read back (``verbatim``) keeps each code as
    it is, marked as text; the others quote what could start a formula."""
    ws = workbook.create_sheet(title)
    ws.append(tabular.xlsx_row(ws, header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(tabular.xlsx_row(ws, row, verbatim=verbatim))
    ws.freeze_panes = "A2"
    _fit_columns(ws)
    return ws


def write_plate_map(
    plate: PlateMap,
    *,
    title: str = "",
    details: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """Write ``plate`` as a plate-map workbook (xlsx bytes) that read_plate_map reads back equal.

    ``details`` maps a content (a barcode, usually) to extra columns for the ``List``
    sheet, e.g. ``{"7KQ3M9XW4": {"Participant": "P-012", "Visit": "C1D1"}}``.
    Raises ``PlateMapError`` for a plate the form cannot hold.
    """
    _check_plate(plate)
    details = details or {}
    groups = plate.groups()
    workbook = Workbook()
    workbook.properties.title = title or "Plate map"

    ws = workbook.active
    ws.title = LAYOUT
    bold, centre = Font(bold=True), Alignment(horizontal="center", vertical="center")
    for column in COLUMNS:
        cell = ws.cell(1, column + 1, column)
        cell.font, cell.alignment = bold, centre
    for index, letter in enumerate(ROWS):
        cell = ws.cell(index + 2, 1, letter)
        cell.font, cell.alignment = bold, centre
    for well, content in plate.wells.items():
        # Read back by read_plate_map: the code as it is, marked as text.
        cell = tabular.put(ws, ROWS.index(well[0]) + 2, int(well[1:]) + 1, content, verbatim=True)
        cell.alignment = centre
        fill = _FILLS.get(content_kind(content))
        if fill is not None:
            cell.fill = fill
    ws.column_dimensions["A"].width = 4
    width = max([8, *(len(content) + 2 for content in plate.wells.values())])
    for column in COLUMNS:
        ws.column_dimensions[get_column_letter(column + 1)].width = width
    if title:
        # Under the grid, not above it: the grid's position is the interface.
        title_cell = tabular.put(ws, len(ROWS) + 3, 1, title)
        title_cell.font = Font(bold=True, size=14)
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True

    _table_sheet(
        workbook,
        STANDARDS,
        ("Name", "Concentration", "Unit"),
        ((s.name, s.concentration, s.unit) for s in plate.standards),
        verbatim=True,
    )
    if plate.dilutions:
        _table_sheet(
            workbook,
            DILUTIONS,
            ("Barcode", "Dilution"),
            (
                (barcode, plate.dilutions[barcode])
                for barcode in groups
                if barcode in plate.dilutions
            ),
            verbatim=True,
        )
    if plate.controls:
        _table_sheet(
            workbook,
            CONTROLS,
            ("Name", "Low", "High"),
            ((c.name, c.low, c.high) for c in plate.controls),
            verbatim=True,
        )

    extra: list[str] = []
    for content in groups:
        for key in details.get(content, {}):
            if key not in extra:
                extra.append(key)
    clash = [key for key in extra if key.strip().lower() in {c.lower() for c in _LIST_COLUMNS}]
    if clash:
        raise PlateMapError(f"details column {clash[0]!r} clashes with a column of sheet {LIST!r}")
    rows = []
    for well in WELLS:
        content = plate.wells.get(well)
        if content is None:
            continue
        kind = content_kind(content)
        dilution = plate.dilutions.get(content, 1) if kind == "sample" else None
        more = details.get(content, {})
        rows.append([well, content, kind, dilution, *(_plain(more.get(key)) for key in extra)])
    list_sheet = _table_sheet(workbook, LIST, (*_LIST_COLUMNS, *extra), rows)
    if rows:
        list_sheet.auto_filter.ref = list_sheet.dimensions

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class LayoutTemplate:
    """Which standards, blanks and controls a kit needs on a plate, and in how many wells.

    ``standards`` keep their declared order (highest first or lowest first); the
    direction is ``columns`` (A1, B1, …, H1, A2, …) or ``rows`` (A1, A2, …, A12, B1, …).
    Built from a TOML file by :func:`load_layout_templates`; errors name the key.
    """

    name: str
    description: str
    unit: str
    standards: tuple[Standard, ...]
    standard_replicates: int = 2
    blanks: int = 0
    controls: tuple[Control, ...] = ()
    control_replicates: int = 2
    sample_replicates: int = 2
    direction: str = "columns"

    def __post_init__(self) -> None:
        object.__setattr__(self, "standards", tuple(self.standards))
        object.__setattr__(self, "controls", tuple(self.controls))
        problems = _template_problems(self)
        if problems:
            raise PlateMapError(*problems)

    @property
    def fixed_wells(self) -> int:
        """Wells taken by standards, blanks and controls."""
        return (
            len(self.standards) * self.standard_replicates
            + self.blanks
            + len(self.controls) * self.control_replicates
        )

    @property
    def sample_capacity(self) -> int:
        """How many samples fit, each in ``sample_replicates`` wells, after the fixed wells."""
        return (len(WELLS) - self.fixed_wells) // self.sample_replicates


def _template_problems(t: LayoutTemplate) -> list[str]:
    problems = []
    for key in ("standard_replicates", "control_replicates", "sample_replicates"):
        value = getattr(t, key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            problems.append(f"{key}: {value!r} is not a whole number ≥ 1")
    if not (isinstance(t.blanks, int) and not isinstance(t.blanks, bool) and t.blanks >= 0):
        problems.append(f"blanks: {t.blanks!r} is not a whole number ≥ 0")
    if t.direction not in DIRECTIONS:
        problems.append(f"direction: {t.direction!r} is neither 'columns' nor 'rows'")
    if not (isinstance(t.unit, str) and t.unit.strip() and t.unit.strip() == t.unit):
        problems.append(f"unit: {t.unit!r} is not a unit such as 'pg/mL'")
    if not t.standards:
        problems.append("standards: none declared; a curve needs standards")
    names: set[str] = set()
    for standard in t.standards:
        if not (isinstance(standard.name, str) and _STANDARD.fullmatch(standard.name)):
            problems.append(f"standards: {standard.name!r} is not a name STD1 … STD99")
        elif standard.name in names:
            problems.append(f"standards: {standard.name} declared twice")
        names.add(standard.name)
        if standard.unit != t.unit:
            problems.append(f"standards: {standard.name} is in {standard.unit!r}, not {t.unit!r}")
        if not (_is_number(standard.concentration) and standard.concentration >= 0):
            problems.append(
                f"standards: {standard.name} = {standard.concentration!r} is not a number ≥ 0"
            )
    concentrations = [s.concentration for s in t.standards if _is_number(s.concentration)]
    if len(concentrations) == len(t.standards) and len(concentrations) > 1:
        steps = [b - a for a, b in pairwise(concentrations)]
        if not (all(step < 0 for step in steps) or all(step > 0 for step in steps)):
            problems.append(
                f"standards: {concentrations} are neither strictly decreasing nor strictly "
                "increasing"
            )
    seen: set[str] = set()
    for control in t.controls:
        label = f"controls: {control.name!r}"
        if not (isinstance(control.name, str) and _CONTROL.fullmatch(control.name)):
            problems.append(f"{label} is not a control name like CTRL-L or CTRL-H")
        elif control.name in seen:
            problems.append(f"{label} declared twice")
        seen.add(control.name)
        for key, limit in (("low", control.low), ("high", control.high)):
            if limit is not None and not (_is_number(limit) and limit >= 0):
                problems.append(f"{label}: {key} {limit!r} is not a number ≥ 0")
        if _is_number(control.low) and _is_number(control.high) and control.low > control.high:
            problems.append(f"{label}: low {control.low} is above high {control.high}")
    if not problems and t.sample_capacity < 1:
        problems.append(
            f"standards, blanks, controls: they take {t.fixed_wells} of the {len(WELLS)} wells, "
            f"leaving no room for one sample in {t.sample_replicates} wells"
        )
    return problems


_TEMPLATE_KEYS = {
    "description": "text",
    "unit": "text such as 'pg/mL'",
    "standards": "a list of concentrations, STD1 first",
    "standard_replicates": "whole number",
    "blanks": "whole number",
    "controls": "[[controls]] tables with name, low and high",
    "control_replicates": "whole number",
    "sample_replicates": "whole number",
    "direction": "'columns' or 'rows'",
}
_CONTROL_KEYS = ("name", "low", "high")


def load_layout_templates(folder: Path | None = None) -> dict[str, LayoutTemplate]:
    """Load every ``*.toml`` layout template of ``folder``, keyed by file name without suffix.

    The default folder is ``layouts/`` next to this module. Raises ``PlateMapError``
    naming the file and the key of the first template that does not validate.
    """
    folder = Path(folder) if folder is not None else LAYOUTS_FOLDER
    if not folder.is_dir():
        raise PlateMapError(f"{folder}: no such folder of layout templates")
    return {path.stem: _load_template(path) for path in sorted(folder.glob("*.toml"))}


def _load_template(path: Path) -> LayoutTemplate:
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise PlateMapError(f"{where}: not valid TOML: {err}") from err
    problems = [
        f"{where}: {key}: unknown key; known keys are {', '.join(_TEMPLATE_KEYS)}"
        for key in data
        if key not in _TEMPLATE_KEYS
    ]
    for key in ("description", "unit", "standards"):
        if key not in data:
            problems.append(f"{where}: {key}: missing ({_TEMPLATE_KEYS[key]})")
    if problems:
        raise PlateMapError(*problems)

    def expect(key: str, test: Any, default: Any) -> Any:
        value = data.get(key, default)
        if not test(value):
            problems.append(f"{where}: {key}: {value!r} is not {_TEMPLATE_KEYS[key]}")
        return value

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    description = expect("description", lambda v: isinstance(v, str) and v.strip(), None)
    unit = expect("unit", lambda v: isinstance(v, str) and v.strip(), None)
    raw_standards = expect(
        "standards", lambda v: isinstance(v, list) and v and all(map(_is_number, v)), None
    )
    values = {
        key: expect(key, whole, 2 if key.endswith("replicates") else 0)
        for key in ("standard_replicates", "blanks", "control_replicates", "sample_replicates")
    }
    direction = expect("direction", lambda v: v in DIRECTIONS, "columns")
    raw_controls = expect("controls", lambda v: isinstance(v, list), [])
    controls: list[Control] = []
    for number, table in enumerate(raw_controls if isinstance(raw_controls, list) else [], 1):
        label = f"{where}: [[controls]] #{number}"
        if not isinstance(table, dict):
            problems.append(f"{label}: not a table with {', '.join(_CONTROL_KEYS)}")
            continue
        unknown = [key for key in table if key not in _CONTROL_KEYS]
        if unknown:
            problems.append(
                f"{label}: {unknown[0]}: unknown key; known keys are {', '.join(_CONTROL_KEYS)}"
            )
        name = table.get("name")
        if not isinstance(name, str):
            problems.append(f"{label}: name: missing or not text (CTRL-L, CTRL-H, …)")
            continue
        limits = []
        for key in ("low", "high"):
            limit = table.get(key)
            if limit is not None and not _is_number(limit):
                problems.append(f"{label} ({name}): {key}: {limit!r} is not a number")
                limit = None
            limits.append(limit)
        controls.append(Control(name.strip(), *limits))
    if problems:
        raise PlateMapError(*problems)
    unit = unit.strip()
    standards = tuple(
        Standard(f"STD{index}", float(value), unit) for index, value in enumerate(raw_standards, 1)
    )
    try:
        return LayoutTemplate(
            name=path.stem,
            description=description.strip(),
            unit=unit,
            standards=standards,
            controls=tuple(controls),
            direction=direction,
            **values,
        )
    except PlateMapError as err:
        raise PlateMapError(*(f"{where}: {problem}" for problem in err.problems)) from None


def _fill_order(direction: str) -> list[str]:
    if direction == "rows":
        return list(WELLS)
    return [f"{row}{column}" for column in COLUMNS for row in ROWS]


def lay_out(template: LayoutTemplate, samples: Sequence[tuple[str, float]]) -> PlateMap:
    """Fill a plate from ``template``: standards, then blanks, then controls, then samples.

    ``samples`` are ``(barcode, dilution factor)`` pairs, placed in the given order.
    Each content takes its replicate wells next to each other along the template's
    direction (A1 and B1 for a duplicate filled by columns). The same input always
    gives the same plate. Raises ``PlateMapError`` when the samples do not fit, saying
    how many do, or for an unusable barcode or dilution.
    """
    samples = list(samples)
    capacity = template.sample_capacity
    if len(samples) > capacity:
        raise PlateMapError(
            f"{len(samples)} samples do not fit on one plate laid out as {template.name!r}: "
            f"it holds at most {capacity} samples in {template.sample_replicates} wells each "
            f"({len(WELLS) - template.fixed_wells} wells are left after the standards, blanks "
            f"and controls); split the samples over {math.ceil(len(samples) / capacity)} plates"
        )
    problems = []
    barcodes: dict[str, int] = {}
    dilutions: dict[str, float] = {}
    for number, (raw, factor) in enumerate(samples, 1):
        label = f"sample {number} ({raw!r})"
        try:
            barcode = _canonical_content(raw) if isinstance(raw, str) else None
        except ValueError as err:
            problems.append(f"{label}: {err}")
            continue
        if barcode is None or content_kind(barcode) != "sample":
            problems.append(f"{label}: not a sample barcode")
            continue
        if barcode in barcodes:
            problems.append(
                f"{label}: also sample {barcodes[barcode]}; replicate wells come from the "
                "template, list each sample once"
            )
            continue
        barcodes[barcode] = number
        if not (_is_number(factor) and factor >= 1):
            problems.append(f"{label}: dilution {factor!r} is not a number ≥ 1")
            continue
        dilutions[barcode] = float(factor)
    if problems:
        raise PlateMapError(*problems)

    contents: list[str] = []
    for standard in template.standards:
        contents += [standard.name] * template.standard_replicates
    contents += [BLANK] * template.blanks
    for control in template.controls:
        contents += [control.name] * template.control_replicates
    for barcode in barcodes:
        contents += [barcode] * template.sample_replicates
    placed = dict(zip(_fill_order(template.direction), contents, strict=False))
    wells = {well: placed[well] for well in WELLS if well in placed}
    return PlateMap(wells, template.standards, dilutions, template.controls)
