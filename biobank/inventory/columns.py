"""The columns of an inventory spreadsheet, and how a header row is read.

A centre fills the template (one row per aliquot) in English or in French: each column is
known by its English name (``participant``, ``collected_at``, ``volume_ul``…) and by its
French header ("date d'inclusion", "prélevé le", "volume (µL)"…), compared as keys: case,
accents, spaces and punctuation do not matter, so "Prélevé le", "PRELEVE_LE" and
"prélevé  le" are one column. The columns may come in any order; a column the import does
not know is left out and listed, so that a typo in a header is seen, not silently lost.

The volume is read in microlitres under ``volume_ul`` / "volume (µL)", and in millilitres
under ``volume_ml`` / "volume (mL)".

Pure: nothing here reads the database or a request.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

__all__ = [
    "COLUMNS",
    "HEADER_SEARCH_ROWS",
    "Column",
    "Header",
    "HeaderError",
    "find_header",
    "header_key",
]

# The header row is looked for in the first rows: a centre's export may carry a title.
HEADER_SEARCH_ROWS = 20
# A row naming at least this many known columns is the header row.
HEADER_MIN_MATCHES = 3


@dataclass(frozen=True)
class Column:
    """One column of the template."""

    key: str  # the English header, and the name the import knows it by
    french: str  # the French header
    description: Any  # what it holds (lazy text)
    form: Any  # how to write it (lazy text)
    example: Any  # the value of the template's example row
    required: bool = False  # every file must have it
    # Other spellings met in centres' own spreadsheets.
    aliases: tuple[str, ...] = ()
    # For a volume: microlitres per unit written (1 for µL, 1000 for mL).
    microlitres: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, self.french, *self.aliases)


COLUMNS: tuple[Column, ...] = (
    Column(
        "participant",
        "participant",
        _l("The participant's pseudonymised study code."),
        _l("Centre letters, a dash, a number: LIM-001. Never a name."),
        "LIM-001",
        required=True,
        aliases=("participant_code", "code participant", "code du participant"),
    ),
    Column(
        "site",
        "centre",
        _l("The participant's centre, by its code."),
        _l("A site code of the bank: LIM."),
        "LIM",
        aliases=("center", "site code", "code centre"),
    ),
    Column(
        "arm",
        "bras",
        _l("The participant's arm of the trial."),
        _l("An arm code of the protocol: G1, G2."),
        "G2",
    ),
    Column(
        "included_on",
        "date d'inclusion",
        _l("The day the participant was included (day 0 of the visit windows)."),
        _l("A date: 2026-01-05 or 05/01/2026 (day first)."),
        "2026-01-05",
        aliases=("inclusion date", "date inclusion"),
    ),
    Column(
        "consent_given_on",
        "date du consentement",
        _l("The day the participant signed the biobank consent."),
        _l("A date: 2026-01-05 or 05/01/2026 (day first)."),
        "2026-01-03",
        aliases=("consent date", "date de consentement"),
    ),
    Column(
        "disease_status",
        "statut de la maladie",
        _l("The participant's disease at inclusion."),
        _l("de_novo, relapsed or refractory (de novo, en rechute, réfractaire)."),
        "de_novo",
        aliases=("disease status", "statut"),
    ),
    Column(
        "visit",
        "visite",
        _l("The protocol visit the blood was drawn at."),
        _l("A visit code of the protocol: BL, M2, M4, M6, EOI, EOM."),
        "BL",
        required=True,
        aliases=("visit code", "code visite"),
    ),
    Column(
        "tube_type",
        "type de tube",
        _l("The primary tube the aliquot was made from."),
        _l("A tube type of the protocol: SST (serum), EDTA (plasma)."),
        "SST",
        required=True,
        aliases=("tube", "tube type"),
    ),
    Column(
        "collected_at",
        "prélevé le",
        _l("When the blood was drawn."),
        _l(
            "A date and a time: 2026-01-05 08:30 or 05/01/2026 08:30; in the centre's time "
            "zone unless a zone is written (2026-01-05T08:30+01:00)."
        ),
        "2026-01-05 08:30",
        required=True,
        aliases=("collected at", "date de prélèvement", "prélèvement"),
    ),
    Column(
        "spun_at",
        "centrifugé le",
        _l("When the primary tube was centrifuged."),
        _l("A date and a time, as for collected_at."),
        "2026-01-05 09:30",
        required=True,
        aliases=("spun at", "centrifuged at", "date de centrifugation"),
    ),
    Column(
        "frozen_at",
        "congelé le",
        _l("When the aliquots were frozen."),
        _l("A date and a time, as for collected_at."),
        "2026-01-05 10:00",
        required=True,
        aliases=("frozen at", "date de congélation"),
    ),
    Column(
        "volume_ul",
        "volume (µL)",
        _l("The aliquot's volume in microlitres."),
        _l(
            "A whole number of µL, more than 0 and at most the protocol's aliquot volume. "
            "A column named volume_ml or “volume (mL)” is read in millilitres."
        ),
        500,
        aliases=("volume ul", "volume µl"),
        microlitres=1,
    ),
    Column(
        "volume_ml",
        "volume (mL)",
        _l("The aliquot's volume in millilitres (instead of volume_ul)."),
        _l("A number of mL: 0.5 or 0,5."),
        0.5,
        aliases=("volume ml",),
        microlitres=1000,
    ),
    Column(
        "legacy_barcode",
        "ancien code-barres",
        _l("The code on the tube's label now: scanning it will find the aliquot."),
        _l("Any code of up to 64 characters, once in the file and new to the bank."),
        "LIM-SER-00017",
        required=True,
        aliases=("legacy barcode", "old barcode", "ancien code barre", "code-barres d'origine"),
    ),
    Column(
        "box",
        "boîte",
        _l("The box the tube is in, by the box's barcode (leave empty if not stored)."),
        _l("A box barcode of the bank's storage: BX-0123."),
        "BX-0123",
        aliases=("box barcode", "code boîte"),
    ),
    Column(
        "position",
        "position",
        _l("The tube's position in its box (with box)."),
        _l("A row letter and a column number: A1, B04."),
        "A1",
        aliases=("emplacement", "well"),
    ),
    Column(
        "box_type",
        "type de boîte",
        _l("Only for a box the bank does not have yet: its type, to create it."),
        _l("A box type of the bank: 81-place 2-inch cryobox."),
        None,
        aliases=("box type",),
    ),
    Column(
        "rack",
        "portoir",
        _l("Only for a box the bank does not have yet: the rack to create it in."),
        _l("A rack barcode of the bank's storage: RK-0012."),
        None,
        aliases=("rack barcode",),
    ),
)
BY_KEY = {column.key: column for column in COLUMNS}
VOLUME_KEYS = tuple(column.key for column in COLUMNS if column.microlitres)

# Characters that read as a letter of the key: the micro sign and the Greek mu are "u".
_SPELLED = str.maketrans({"µ": "u", "μ": "u", "ß": "ss", "œ": "oe", "æ": "ae"})
_NOT_KEY = re.compile(r"[\W_]+")


def header_key(text: str) -> str:
    """``text`` as a key: no accents, no case, no spaces or punctuation ("Prélevé le" and
    "PRELEVE_LE" are both "prelevele")."""
    text = unicodedata.normalize("NFKD", str(text).casefold().translate(_SPELLED))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return _NOT_KEY.sub("", text)


_KEYS = {header_key(name): column.key for column in COLUMNS for name in column.names}


@dataclass(frozen=True)
class HeaderError:
    """A problem of the header row: its row number, the column (as written, or the
    English name of a missing one) and what is wrong."""

    row: int
    column: str
    message: Any


@dataclass
class Header:
    """The header row found: where, which column of the sheet holds each known column
    (by index), each one's header as written, and the columns left out."""

    row: int
    positions: dict[str, int] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    problems: list[HeaderError] = field(default_factory=list)

    def title(self, key: str) -> str:
        """The header of column ``key`` as written in the file, else its English name."""
        return self.written.get(key, key)

    @property
    def volume_key(self) -> str | None:
        return next((key for key in VOLUME_KEYS if key in self.positions), None)


def _matches(cells: Sequence[Any]) -> int:
    return sum(1 for cell in cells if isinstance(cell, str) and header_key(cell) in _KEYS)


def find_header(rows: Sequence[tuple[int, Sequence[Any]]]) -> Header | None:
    """The header among the first rows (row number, cells): the first that names at least
    three known columns, read into a Header; None when no row does."""
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        if _matches(cells) >= HEADER_MIN_MATCHES:
            return _read_header(number, cells)
    return None


def _read_header(number: int, cells: Sequence[Any]) -> Header:
    header = Header(number)
    for index, cell in enumerate(cells):
        written = "" if cell is None else str(cell).strip()
        if not written:
            continue
        key = _KEYS.get(header_key(written))
        if key is None:
            header.ignored.append(written)
            continue
        if key in header.positions:
            header.problems.append(
                HeaderError(
                    number,
                    written,
                    _l(
                        "Columns “%(first)s” and “%(second)s” are the same column: keep one.",
                        first=header.written[key],
                        second=written,
                    ),
                )
            )
            continue
        header.positions[key] = index
        header.written[key] = written
    _check_required(header)
    return header


def _check_required(header: Header) -> None:
    for column in COLUMNS:
        if column.required and column.key not in header.positions:
            header.problems.append(
                HeaderError(
                    header.row,
                    column.key,
                    _l(
                        "The column %(name)s (in French “%(french)s”) is missing.",
                        name=column.key,
                        french=column.french,
                    ),
                )
            )
    present = [key for key in VOLUME_KEYS if key in header.positions]
    if not present:
        header.problems.append(
            HeaderError(
                header.row,
                "volume_ul",
                _l(
                    "The column volume_ul (in French “volume (µL)”), or volume_ml for "
                    "millilitres, is missing."
                ),
            )
        )
    elif len(present) > 1:
        header.problems.append(
            HeaderError(
                header.row,
                header.written[present[1]],
                _l(
                    "Columns “%(first)s” and “%(second)s” both give the volume: keep one.",
                    first=header.written[present[0]],
                    second=header.written[present[1]],
                ),
            )
        )
