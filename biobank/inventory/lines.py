"""The rows of an inventory file as Lines: each known column's cell read, every cell that
cannot be read a Problem of its row and column.

Pure: nothing here reads the database or a request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from biobank.inventory import cells
from biobank.inventory.columns import BY_KEY, Header
from biobank.samples.models import Aliquot

# The longest code of an old label: the column's length.
LEGACY_BARCODE_LENGTH = Aliquot.__table__.c.legacy_barcode.type.length


@dataclass(frozen=True)
class Problem:
    """Something wrong (or worth knowing) in the file: the spreadsheet's row number, the
    column's header as written, and a message for the user."""

    row: int | None
    column: str | None
    message: Any  # lazy text

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": str(self.message)}


@dataclass(slots=True)
class Line:
    """One row of the file, its cells read; None where empty or unreadable."""

    row: int
    participant: str | None = None
    site: str | None = None
    arm: str | None = None
    included_on: date | None = None
    consent_given_on: date | None = None
    disease_status: str | None = None
    visit: str | None = None
    tube_type: str | None = None
    collected_at: datetime | None = None
    spun_at: datetime | None = None
    frozen_at: datetime | None = None
    volume_ul: int | None = None
    legacy_barcode: str | None = None
    box: str | None = None
    position: str | None = None
    box_type: str | None = None
    rack: str | None = None
    # Filled in by the checks: the (row, column) of the position in its box.
    cell: tuple[int, int] | None = None


_UPPER_TEXT = ("participant", "site", "arm", "visit", "tube_type", "box", "rack")
_PLAIN_TEXT = ("position", "box_type", "disease_status")
_DAYS = ("included_on", "consent_given_on")
_MOMENTS = ("collected_at", "spun_at", "frozen_at")
_REQUIRED_CELLS = (
    "participant",
    "visit",
    "tube_type",
    "collected_at",
    "spun_at",
    "frozen_at",
    "volume_ul",
    "legacy_barcode",
)


def _readers(header: Header) -> list[tuple[str, int, Any]]:
    """(field, index in the row, reader) for each known column of the file."""
    readers = []
    for key, index in header.positions.items():
        if key in _UPPER_TEXT:
            readers.append((key, index, _upper))
        elif key in _PLAIN_TEXT:
            readers.append((key, index, cells.text))
        elif key in _DAYS:
            readers.append((key, index, cells.day))
        elif key in _MOMENTS:
            readers.append((key, index, cells.moment))
        elif key == "legacy_barcode":
            readers.append((key, index, _legacy))
        elif BY_KEY[key].microlitres:
            per_unit = BY_KEY[key].microlitres
            readers.append(("volume_ul", index, lambda v, n=per_unit: cells.volume_ul(v, n)))
    # Most cells repeat (a participant's code, a visit, a day, a box): each value is read
    # once and its result shared, which keeps 50,000 rows to a few megabytes. The old
    # labels' codes are all different: they are read as they come.
    return [
        (key, index, read if key == "legacy_barcode" else _remembered(read))
        for key, index, read in readers
    ]


def _remembered(read):
    results: dict[Any, Any] = {}

    def remembered(value):
        try:
            return results[value]
        except KeyError:
            result = results[value] = read(value)
            return result
        except TypeError:  # a value that cannot be a key: read each time
            return read(value)

    return remembered


def _upper(value: Any) -> str | None:
    written = cells.text(value)
    return written.upper() if written else None


def _legacy(value: Any) -> str | None:
    """The code of an old label as the scans compare it: surrounding spaces dropped, its
    case kept (samples' old-label lookup)."""
    code = cells.text(value)
    if code is None:
        return None
    if len(code) > LEGACY_BARCODE_LENGTH:
        raise cells.CellError(
            _l("A label's code has at most %(n)d characters.", n=LEGACY_BARCODE_LENGTH)
        )
    if not code.isprintable():
        raise cells.CellError(_l("The code holds characters a label cannot carry."))
    return code


def read_lines(
    raw: Iterable[tuple[int, Sequence[Any]]], header: Header, problems: list[Problem]
) -> list[Line]:
    """Each data row as a Line; a cell that cannot be read is a problem of its row."""
    readers = _readers(header)
    titles = {key: header.title(key) for key in header.positions}
    volume_title = header.title(header.volume_key) if header.volume_key else "volume_ul"
    # A missing column is the header's problem, said once, not an empty cell on each row.
    present = {*header.positions, "volume_ul"} if header.volume_key else set(header.positions)
    required = [key for key in _REQUIRED_CELLS if key in present]
    lines = []
    for number, row in raw:
        if number <= header.row:
            continue
        values = [row[index] if index < len(row) else None for _, index, _ in readers]
        if all(value is None or value == "" for value in values):
            continue  # a row with nothing in the known columns: not an aliquot
        line = Line(number)
        for (key, _, read), value in zip(readers, values, strict=True):
            if value is None or value == "":
                continue
            try:
                setattr(line, key, read(value))
            except cells.CellError as err:
                title = volume_title if key == "volume_ul" else titles[key]
                problems.append(Problem(number, title, err.message))
        for key in required:
            if getattr(line, key) is None:
                title = volume_title if key == "volume_ul" else header.title(key)
                if not _already_reported(problems, number, title):
                    problems.append(Problem(number, title, _l("This cell is empty.")))
        lines.append(line)
    return lines


def _already_reported(problems: list[Problem], row: int, column: str) -> bool:
    """Whether the last problems already name this cell (an unreadable cell is empty
    for the rules, and is reported once)."""
    for problem in reversed(problems):
        if problem.row != row:
            return False
        if problem.column == column:
            return True
    return False
