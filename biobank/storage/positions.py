"""Positions in a freezer box: its grid, the canonical label of a cell, and typed positions.

A box is a grid of ``rows`` rows lettered from A and ``cols`` columns numbered from 1. A
cell is labelled by its row letter and its column number, the number zero-padded to the width
of the largest one, so an 8 × 12 box runs from "A01" to "H12" and a 9 × 9 box from "A1" to
"I9": labels of one box then sort in fill order as plain text, and match what rack scanners
print for 96-position racks.

What a technician types or a scanner writes is read leniently ("b4", " B 4 ", "B-4", "B04"
are all B4) but never guessed: a number before the letter ("4B"), two letters ("AA1") or
anything after the number ("A1.5") is refused rather than reinterpreted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_COLS",
    "MAX_ROWS",
    "Grid",
    "PositionError",
    "grid_for",
    "split_position",
]

ROW_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_ROWS = len(ROW_LETTERS)  # one letter a row: past Z there is no label a technician can read
MAX_COLS = 99  # two digits, as on every box and rack map in use

# Explicit ASCII classes: re's \d would also accept "٣" or "３" (Arabic-Indic and full-width
# digits), which int() converts silently, letting a pasted character pass as a column.
# Leading zeros are unbounded ("A001" is A1) but at most three significant digits are read,
# so a pasted number cannot make int() work on thousands of digits.
_POSITION = re.compile(r"([A-Za-z])\s*[-:/]?\s*0*([0-9]{1,3})")

# A message quotes what was typed; a pasted paragraph is cut so the message stays readable.
_QUOTE_LIMIT = 24


class PositionError(ValueError):
    """A position or a box size is unusable; ``str(err)`` is the message for the user."""


def split_position(text: str) -> tuple[int, int] | None:
    """Return the 1-based (row, column) written in ``text``, or None if it is not a position.

    Checks only the shape (one row letter, an optional space, "-", ":" or "/", a column
    number with optional leading zeros), not any box size: "Z0" gives (26, 0). Case and
    surrounding whitespace are ignored. Use ``Grid.parse`` to read a position of a box.
    """
    match = _POSITION.fullmatch(text.strip())
    if match is None:
        return None
    letter, digits = match.groups()
    return ROW_LETTERS.index(letter.upper()) + 1, int(digits)


def _quote(text: str) -> str:
    shown = text.strip()
    if len(shown) > _QUOTE_LIMIT:
        shown = shown[: _QUOTE_LIMIT - 1] + "…"
    return f'"{shown}"'


def _check_dimension(name: str, value: object, maximum: int) -> None:
    # bool is an int subclass: Grid(True, 12) would otherwise be a one-row box.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise PositionError(f"a box has 1 to {maximum} {name}, not {value!r}")


@dataclass(frozen=True)
class Grid:
    """The layout of a box: ``rows`` rows (A–Z at most) and ``cols`` columns (1–99 at most).

    Rows and columns are 1-based everywhere, as on the box. Constructing a grid outside those
    ranges raises ``PositionError``.
    """

    rows: int
    cols: int

    def __post_init__(self) -> None:
        _check_dimension("rows", self.rows, MAX_ROWS)
        _check_dimension("columns", self.cols, MAX_COLS)

    @property
    def size(self) -> int:
        """The number of positions in the box."""
        return self.rows * self.cols

    @property
    def description(self) -> str:
        """The box in words for messages, e.g. "8 × 12 box (rows A–H, columns 1–12)"."""
        last_row = ROW_LETTERS[self.rows - 1]
        rows = "row A" if self.rows == 1 else f"rows A–{last_row}"
        cols = "column 1" if self.cols == 1 else f"columns 1–{self.cols}"
        return f"{self.rows} × {self.cols} box ({rows}, {cols})"

    def contains(self, row: int, col: int) -> bool:
        """Whether the 1-based ``row`` and ``col`` are a position of this box."""
        return 1 <= row <= self.rows and 1 <= col <= self.cols

    def label(self, row: int, col: int) -> str:
        """Return the canonical label of the 1-based ``row`` and ``col``, e.g. (2, 4) -> "B04".

        The column is zero-padded to the width of the box's last column: "B4" in a box of
        fewer than 10 columns, "B04" otherwise.
        """
        if not self.contains(row, col):
            raise PositionError(f"row {row}, column {col} is outside the {self.description}")
        width = len(str(self.cols))
        return f"{ROW_LETTERS[row - 1]}{col:0{width}d}"

    def parse(self, text: str) -> tuple[int, int]:
        """Return the 1-based (row, column) of a typed or scanned position of this box.

        Accepts a row letter then a column number, in either case, with optional spaces, one
        "-", ":" or "/" between them and leading zeros: "B4", "b04", " B 4 ", "B-4". Raises
        ``PositionError`` naming the input and the box for anything else, including a position
        outside the box.
        """
        numbers = split_position(text)
        if numbers is None:
            if not text.strip():
                raise PositionError(
                    f"position {_quote(text)} is empty: expected a row letter and a column "
                    f'number, like "{self._example()}", in the {self.description}'
                )
            raise PositionError(
                f"position {_quote(text)} is not a row letter followed by a column number, "
                f'like "{self._example()}", in the {self.description}'
            )
        if not self.contains(*numbers):
            raise PositionError(f"position {_quote(text)} is outside the {self.description}")
        return numbers

    def canonical(self, text: str) -> str:
        """Return the canonical label of a typed or scanned position, e.g. " b 4 " -> "B04"."""
        return self.label(*self.parse(text))

    def fill_order(self) -> list[tuple[int, int]]:
        """Return every (row, column) in the order a technician fills a box: A1, A2, ... B1."""
        return [(row, col) for row in range(1, self.rows + 1) for col in range(1, self.cols + 1)]

    def all_labels(self) -> list[str]:
        """Return the canonical label of every position, in fill order."""
        return [self.label(row, col) for row, col in self.fill_order()]

    def _example(self) -> str:
        return self.label(min(2, self.rows), min(4, self.cols))


def grid_for(rows: int, cols: int) -> Grid:
    """Return the grid of a box of ``rows`` × ``cols``; raise ``PositionError`` if out of range."""
    return Grid(rows, cols)
