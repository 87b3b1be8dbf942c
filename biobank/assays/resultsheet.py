"""Laboratory result sheets: one row per sample and analyte, read into ``ResultRow``s.

Hospital laboratories send M-protein and other chemistry results (serum protein
electrophoresis M-spike, immunofixation, free light chains, VEGF, any analyte an
administrator declares) as spreadsheets with one result per row: barcode, analyte, value,
unit, method, date. :func:`read_results` reads such a sheet (.xlsx or .csv) against the
declared analytes (:func:`load_analytes`, by default ``analytes.toml`` next to this file)
and returns every row with its analyte resolved to a code and its value converted into the
analyte's canonical unit by :mod:`biobank.assays.units`.

What the reader accepts:

* the header row anywhere in the first 20 rows, its names in any case and column order,
  the configured names (``DEFAULT_COLUMNS`` or the caller's) and common English and
  French synonyms ("Sample ID", "Code-barres", "Analyse", "Résultat", "Unité", ...);
* .xlsx: the sheet named "Results" if there is one, else the first sheet; date cells,
  numbers and numbers stored as text; formulas by their cached values;
* .csv: comma, semicolon or tab separated (whichever gives a header), UTF-8 with or
  without a byte-order mark, UTF-16 with one (Excel "Unicode text"), else cp1252;
* values "12.5", "12,5", "1 920", "< 0.5", "<0,5", "> 70"; "1,920" is refused as
  ambiguous (a thousands separator or a decimal comma) rather than read 1000 times off;
* qualitative values in the words of ``analytes.toml`` ("Négatif" is "negative"), followed
  by free text kept as the result's detail ("Positive IgA lambda");
* dates "2026-03-02" and "02/03/2026" (day first, as French laboratories write them).

Nothing is guessed and nothing is skipped silently but a wholly empty row. Every problem
of the file is collected, addressed by row and cell as the user sees them in a
spreadsheet (``row 7, cell D7 ("Value"): ...``), and raised together as one
:class:`ResultSheetError`, so the file is fixed once; no row is returned from a file with
a problem.

The file is read within the limits of an upload (:mod:`biobank.uploads`: sheets, rows,
columns, cells, unpacked size, line length), which refuses a file over them with its own
error before reading further.

Pure: nothing here touches a Flask application or the database; the limits are the
application's settings when it runs in one, else the defaults (``limits`` overrides them).
"""

from __future__ import annotations

import codecs
import csv
import functools
import math
import operator
import re
import tomllib
import unicodedata
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter

from biobank import uploads
from biobank.assays import units
from biobank.uploads import UploadLimits

__all__ = [
    "DEFAULT_ANALYTES_PATH",
    "DEFAULT_COLUMNS",
    "KINDS",
    "MAX_BYTES",
    "MAX_ROWS",
    "NUMERIC",
    "QUALITATIVE",
    "AnalyteError",
    "AnalyteSpec",
    "ResultRow",
    "ResultSheetError",
    "load_analytes",
    "parse_analytes",
    "read_results",
]

DEFAULT_ANALYTES_PATH = Path(__file__).with_name("analytes.toml")

NUMERIC = "numeric"
QUALITATIVE = "qualitative"
KINDS = (NUMERIC, QUALITATIVE)

DEFAULT_COLUMNS = {
    "barcode": "Barcode",
    "analyte": "Analyte",
    "value": "Value",
    "unit": "Unit",
    "method": "Method",
    "date": "Date",
    "detail": "Comment",
}

# A result sheet of a whole trial is a few tens of thousands of rows and a few megabytes;
# beyond these it is the wrong file, refused before it fills the memory.
MAX_BYTES = 50_000_000
MAX_ROWS = 200_000
HEADER_ROWS = 20
_SHOWN_PROBLEMS = 5

_REQUIRED = ("barcode", "analyte", "value")

# Header names besides the configured ones, compared as keys (see _key): case, accents,
# spaces and punctuation do not matter. A collection date is not a measurement date, so
# "Date de prélèvement" is deliberately absent.
_SYNONYMS = {
    "barcode": (
        "Barcode",
        "Sample ID",
        "Sample",
        "Sample barcode",
        "Sample code",
        "Specimen ID",
        "Aliquot",
        "Aliquot barcode",
        "Tube",
        "Code-barres",
        "Code barre",
        "Échantillon",
        "N° échantillon",
        "ID échantillon",
        "Numéro d'échantillon",
    ),
    "analyte": (
        "Analyte",
        "Test",
        "Test code",
        "Assay",
        "Parameter",
        "Analyse",
        "Code analyse",
        "Paramètre",
        "Examen",
    ),
    "value": ("Value", "Result", "Résultat", "Valeur"),
    "unit": ("Unit", "Units", "Unité", "Unités"),
    "method": ("Method", "Méthode", "Technique"),
    "date": (
        "Date",
        "Date de mesure",
        "Measurement date",
        "Date measured",
        "Measured on",
        "Analysis date",
        "Date d'analyse",
        "Date analyse",
    ),
    "detail": (
        "Comment",
        "Comments",
        "Commentaire",
        "Commentaires",
        "Remark",
        "Remarque",
        "Note",
        "Notes",
        "Detail",
        "Détail",
        "Isotype",
    ),
}

_CODE = re.compile(r"[A-Z0-9][A-Z0-9_]{0,31}")
_NOT_KEY = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")
_DETAIL_LEAD = " \t\r\n:;,.-–—/"

# Numbers: an optional "<" or ">", French grouping by spaces ("1 920"), a decimal comma.
_COMPARATOR = re.compile(r"([<>])\s*(.*)", re.S)
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?:[.,]\d+)?")
_GROUP_SPACE = re.compile(r"[ \u00a0\u202f\u2009]")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_AMBIGUOUS_COMMA = re.compile(r"[-+]?0*[1-9]\d{0,2},\d{3}")

_ISO_DATE = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?")
_SHORT_YEAR = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}")


class ResultSheetError(ValueError):
    """The sheet cannot be read; ``problems`` lists every problem found, each naming its row
    and cell, and the message joins the first few."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        message = "; ".join(self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ResultSheetError], tuple[list[str]]]:
        return (type(self), (self.problems,))


class AnalyteError(ValueError):
    """The analyte declarations are unusable; the message starts with the offending key,
    e.g. ``analytes[2].unit: unknown unit "mg/dl/L"``."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)

    def __reduce__(self) -> tuple[type[AnalyteError], tuple[str, str]]:
        return (type(self), (self.key, self.problem))


@dataclass(frozen=True)
class AnalyteSpec:
    """An analyte results can be reported for.

    ``unit`` is the canonical unit of a numeric analyte (``""``: dimensionless, and for
    every qualitative one); ``values`` the normalised results of a qualitative one, and
    ``value_aliases`` other words for them as (word, value) pairs ("négatif", "negative").
    """

    code: str
    name: str
    kind: str
    unit: str
    values: tuple[str, ...]
    aliases: tuple[str, ...]
    value_aliases: tuple[tuple[str, str], ...] = ()
    digits: int = 4  # significant digits a numeric value is written with


@dataclass(frozen=True, slots=True)  # slots: a sheet makes tens of thousands of them
class ResultRow:
    """One result of the sheet, its analyte resolved and its value in canonical units."""

    row: int  # spreadsheet row number (1-based, as the user sees it)
    barcode: str  # upper-cased, stripped
    analyte: str  # the analyte code (aliases resolved)
    value: float | None  # in the analyte's canonical unit; None for qualitative
    comparator: str | None  # "<" or ">" when reported as "< 0.5" / "> 70"
    text: str | None  # qualitative result normalised ("negative"/"positive")
    detail: str  # free text kept with it (isotype "IgA lambda", comments)
    unit: str  # canonical unit of the analyte ("" for qualitative/ratio)
    reported_value: str  # as written
    reported_unit: str  # as written
    method: str
    measured_on: date | None


# --------------------------------------------------------------------------- analytes


def load_analytes(path: Path | None = None) -> dict[str, AnalyteSpec]:
    """Read the analyte declarations (default: ``analytes.toml`` next to this module).

    Returns the analytes by code, in file order. Raises :class:`AnalyteError` naming the
    key for any problem with the content; ``OSError`` for a missing file is not wrapped.
    """
    raw = Path(path or DEFAULT_ANALYTES_PATH).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnalyteError("", f"the file is not valid UTF-8 (byte {err.start})") from None
    return parse_analytes(text)


def parse_analytes(text: str) -> dict[str, AnalyteSpec]:
    """Parse and validate analyte declarations in the TOML layout of ``analytes.toml``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise AnalyteError("", f"TOML syntax error: {err}") from None
    unknown = sorted(set(document) - {"analytes", "value_words"})
    if unknown:
        raise AnalyteError(
            unknown[0], 'unknown key: the file holds "[value_words]" and "[[analytes]]" tables'
        )
    value_words = _parse_value_words(document.get("value_words", {}))
    entries = document.get("analytes")
    if not isinstance(entries, list) or not entries:
        raise AnalyteError("analytes", "declare at least one analyte as an [[analytes]] table")
    analytes: dict[str, AnalyteSpec] = {}
    names: dict[str, str] = {}  # key of every name -> code of its analyte
    for number, entry in enumerate(entries):
        where = f"analytes[{number}]"
        spec = _with_value_words(_parse_analyte(entry, where), value_words)
        if spec.code in analytes:
            raise AnalyteError(f"{where}.code", f"{spec.code} is declared twice")
        for field, name in _names(spec):
            other = names.setdefault(_key(name), spec.code)
            if other != spec.code:
                raise AnalyteError(
                    f"{where}.{field}", f'"{name}" is already a name of {other}: use another'
                )
        analytes[spec.code] = spec
    return analytes


def _parse_value_words(table: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise AnalyteError("value_words", "must be a table: value = [words]")
    seen: dict[str, str] = {}
    for value in table:
        for word in (value, *_text_list(table, value, "value_words")):
            if seen.setdefault(_key(word), value) != value:
                raise AnalyteError(
                    f"value_words.{value}", f'"{word}" already means {seen[_key(word)]}'
                )
    return {value: _text_list(table, value, "value_words") for value in table}


def _with_value_words(spec: AnalyteSpec, value_words: Mapping[str, Sequence[str]]) -> AnalyteSpec:
    """``spec`` with the shared words for its values added after its own; a word the
    analyte already uses for one of its values keeps that meaning."""
    if spec.kind != QUALITATIVE:
        return spec
    taken = {_key(word) for word, _ in spec.value_aliases} | {_key(v) for v in spec.values}
    shared = []
    for value in spec.values:
        for word in value_words.get(value, ()):
            if _key(word) not in taken:
                taken.add(_key(word))
                shared.append((word, value))
    return replace(spec, value_aliases=(*spec.value_aliases, *shared))


@functools.cache
def _default_value_words() -> dict[str, tuple[str, ...]]:
    document = tomllib.loads(DEFAULT_ANALYTES_PATH.read_text(encoding="utf-8-sig"))
    return _parse_value_words(document.get("value_words", {}))


_ANALYTE_KEYS = ("code", "name", "kind", "unit", "digits", "values", "value_aliases", "aliases")


def _digits(entry: Mapping[str, Any], where: str) -> int:
    digits = entry.get("digits", 4)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 15:
        raise AnalyteError(f"{where}.digits", "a number of significant digits from 1 to 15")
    return digits


def _parse_analyte(entry: Any, where: str) -> AnalyteSpec:
    if not isinstance(entry, dict):
        raise AnalyteError(where, "must be a table")
    for key in entry:
        if key not in _ANALYTE_KEYS:
            raise AnalyteError(
                f"{where}.{key}", f"unknown key (allowed: {', '.join(_ANALYTE_KEYS)})"
            )
    code = entry.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise AnalyteError(
            f"{where}.code",
            "must be an uppercase code of letters, digits and '_', at most 32 characters",
        )
    name = _text_field(entry, "name", where, required=True)
    kind = entry.get("kind")
    if kind not in KINDS:
        raise AnalyteError(f"{where}.kind", f'must be "{NUMERIC}" or "{QUALITATIVE}"')
    aliases = _text_list(entry, "aliases", where)
    if kind == NUMERIC:
        for key in ("values", "value_aliases"):
            if key in entry:
                raise AnalyteError(f"{where}.{key}", "only a qualitative analyte has values")
        unit = entry.get("unit")
        if not isinstance(unit, str):
            raise AnalyteError(f"{where}.unit", 'a numeric analyte needs its unit ("" for a ratio)')
        try:
            unit = units.normalize_unit(unit)
        except units.UnitError as err:
            raise AnalyteError(f"{where}.unit", str(err)) from None
        return AnalyteSpec(code, name, kind, unit, (), aliases, digits=_digits(entry, where))
    if entry.get("unit", "") != "":
        raise AnalyteError(f"{where}.unit", "a qualitative analyte has no unit")
    if "digits" in entry:
        raise AnalyteError(f"{where}.digits", "only a numeric analyte has digits")
    values = _text_list(entry, "values", where)
    if not values:
        raise AnalyteError(f"{where}.values", "list the values, e.g. ['negative', 'positive']")
    words: dict[str, str] = {}
    for index, value in enumerate(values):
        if words.setdefault(_key(value), value) != value:
            raise AnalyteError(f"{where}.values[{index}]", f'"{value}" is listed twice')
    pairs = []
    value_aliases = entry.get("value_aliases", {})
    if not isinstance(value_aliases, dict):
        raise AnalyteError(f"{where}.value_aliases", "must be a table: value = [words]")
    for value in value_aliases:
        if value not in values:
            raise AnalyteError(
                f"{where}.value_aliases.{value}", f"not one of the values ({', '.join(values)})"
            )
        for word in _text_list(value_aliases, value, f"{where}.value_aliases"):
            if words.setdefault(_key(word), value) != value:
                raise AnalyteError(
                    f"{where}.value_aliases.{value}", f'"{word}" already means another value'
                )
            pairs.append((word, value))
    return AnalyteSpec(code, name, kind, "", values, aliases, tuple(pairs))


def _text_field(entry: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not _key(value)):
        raise AnalyteError(f"{where}.{key}", "must be a non-empty text")
    return value.strip()


def _text_list(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = entry.get(key, [])
    if not isinstance(items, list):
        raise AnalyteError(f"{where}.{key}", "must be a list of texts")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _key(item):
            raise AnalyteError(f"{where}.{key}[{index}]", "must be a non-empty text")
    return tuple(item.strip() for item in items)


def _names(spec: AnalyteSpec) -> Iterator[tuple[str, str]]:
    yield "code", spec.code
    yield "name", spec.name
    for index, alias in enumerate(spec.aliases):
        yield f"aliases[{index}]", alias


def _key(text: str) -> str:
    # Names are compared without case, accents, spaces or punctuation: "M-spike",
    # "M spike" and "m_spike" are one name, "Négatif" and "negatif" one word.
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_KEY.sub("", stripped.casefold())


def _analyte_index(analytes: Mapping[str, AnalyteSpec]) -> dict[str, AnalyteSpec]:
    index: dict[str, AnalyteSpec] = {}
    for spec in analytes.values():
        for _, name in _names(spec):
            other = index.setdefault(_key(name), spec)
            if other.code != spec.code:
                raise ValueError(f'"{name}" names both {other.code} and {spec.code}')
    return index


# --------------------------------------------------------------------------- sheets


@dataclass(frozen=True)
class _Column:
    index: int  # 0-based position in the row
    letter: str
    title: str  # as written in the header


@dataclass(frozen=True)
class _Header:
    row: int
    columns: Mapping[str, _Column]  # role -> column


def read_results(
    data: bytes,
    filename: str,
    *,
    analytes: Mapping[str, AnalyteSpec],
    columns: Mapping[str, str] | None = None,
    limits: UploadLimits | None = None,
) -> list[ResultRow]:
    """Read a laboratory result sheet (.xlsx or .csv) into one ``ResultRow`` per result.

    ``analytes`` are the analytes results may be given for, by code (see
    :func:`load_analytes`); ``columns`` overrides the header names of ``DEFAULT_COLUMNS``
    by role (the usual synonyms are recognised besides). Raises :class:`ResultSheetError`
    listing every problem of the file; nothing is returned from a file with a problem.
    """
    names = dict(DEFAULT_COLUMNS)
    for role, name in (columns or {}).items():
        if role not in DEFAULT_COLUMNS:
            raise ValueError(f"unknown column role {role!r} (roles: {', '.join(DEFAULT_COLUMNS)})")
        names[role] = name
    if len({_key(name) for name in names.values()}) < len(names):
        raise ValueError(f"two columns have the same name: {names}")
    index = _analyte_index(analytes)
    if len(data) > MAX_BYTES:
        raise ResultSheetError(
            [
                f"{filename}: {len(data):,} bytes is far more than a result sheet (at most "
                f"{MAX_BYTES:,}): split it"
            ]
        )
    rows = _sheet_rows(data, filename, names, limits or uploads.current_limits())
    try:
        return _Reader(names, index, analytes).read(rows)
    finally:
        rows.close()  # an unfinished xlsx generator closes its workbook now, not at exit


def _sheet_rows(
    data: bytes, filename: str, names: Mapping[str, str], limits: UploadLimits
) -> Generator[Sequence[Any], None, None]:
    suffix = Path(filename).suffix.lower()
    if data.startswith(b"PK\x03\x04"):
        return _xlsx_rows(data, filename, limits)
    if data.startswith(b"\xd0\xcf\x11\xe0") or suffix == ".xls":
        raise ResultSheetError(
            [f"{filename}: an old Excel 97-2003 workbook: save it as .xlsx (or .csv) and retry"]
        )
    if suffix in (".xlsx", ".xlsm"):
        raise ResultSheetError([f"{filename}: not a readable .xlsx workbook"])
    if suffix not in (".csv", ".txt", ".tsv", ""):
        raise ResultSheetError([f"{filename}: expected an .xlsx or .csv file"])
    uploads.check_text_size(data, filename=filename, limits=limits)
    return _csv_rows(_decode(data, filename), names, filename, limits)


def _xlsx_rows(
    data: bytes, filename: str, limits: UploadLimits
) -> Generator[Sequence[Any], None, None]:
    try:
        workbook = uploads.open_workbook(data, filename=filename, limits=limits)
    except uploads.TooLarge:
        raise
    except Exception as err:  # openpyxl raises anything from zipfile, XML and its own code
        raise ResultSheetError(
            [f"{filename}: not a readable .xlsx workbook ({type(err).__name__}: {err})"]
        ) from None
    try:
        sheets = workbook.worksheets
        if not sheets:
            raise ResultSheetError([f"{filename}: the workbook has no worksheet"])
        sheet = next((ws for ws in sheets if ws.title.strip().casefold() == "results"), sheets[0])
        # The <dimension> a writer records can be wrong: the rows are read up to the last
        # cell that holds a value, whatever it says.
        try:
            yield from workbook.rows(sheet)
        except (ResultSheetError, uploads.TooLarge):
            raise
        except Exception as err:
            raise ResultSheetError(
                [f'{filename}, sheet "{sheet.title}": damaged ({type(err).__name__}: {err})']
            ) from None
    finally:
        workbook.close()


def _decode(data: bytes, filename: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ResultSheetError(
                [f"{filename}: starts as UTF-16 text but is not valid UTF-16"]
            ) from None
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


_DELIMITERS = ("\t", ";", ",")


def _csv_rows(
    text: str, names: Mapping[str, str], filename: str, limits: UploadLimits
) -> Generator[Sequence[Any], None, None]:
    if "\x00" in text:
        raise ResultSheetError(["not a text file (it holds NUL bytes): export the sheet as CSV"])
    lines = uploads.text_lines(text, filename=filename, limits=limits)
    # The delimiter is the one under which a header row appears; csv.Sniffer guesses from
    # a sample and is thrown by a title line or by decimal commas in a semicolon file.
    head = lines[:HEADER_ROWS]
    counts = {delimiter: sum(line.count(delimiter) for line in head) for delimiter in _DELIMITERS}
    candidates = sorted(_DELIMITERS, key=lambda delimiter: -counts[delimiter])
    chosen = candidates[0]
    for delimiter in candidates:
        reader = csv.reader(iter(lines), delimiter=delimiter)
        try:
            sample = [row for _, row in zip(range(HEADER_ROWS), reader, strict=False)]
        except csv.Error:
            continue
        if any(_match_header(number, row, names) for number, row in enumerate(sample, 1)):
            chosen = delimiter
            break
    try:
        for _line, row in uploads.csv_rows(lines, chosen, filename=filename, limits=limits):
            yield row
    except uploads.CsvError as err:
        raise ResultSheetError([f"row {err.line}: not readable as CSV ({err.reason})"]) from None


def _header_roles(
    cells: Sequence[Any], names: Mapping[str, str]
) -> dict[str, list[tuple[bool, _Column]]]:
    """The cells of a row that name a column, by role, each flagged if its name is the
    configured one rather than a synonym."""
    configured = {_key(name): role for role, name in names.items()}
    found: dict[str, list[tuple[bool, _Column]]] = {}
    for position, cell in enumerate(cells):
        if not isinstance(cell, str) or not cell.strip():
            continue
        key = _key(cell)
        role = configured.get(key) or _SYNONYM_ROLES.get(key)
        if role is not None:
            column = _Column(position, get_column_letter(position + 1), cell.strip())
            found.setdefault(role, []).append((key in configured, column))
    return found


def _match_header(number: int, cells: Sequence[Any], names: Mapping[str, str]) -> _Header | None:
    """The columns of ``cells`` if it is the header row (it names the required columns)."""
    found = _header_roles(cells, names)
    if not all(role in found for role in _REQUIRED):
        return None
    chosen: dict[str, _Column] = {}
    problems = []
    for role, matches in found.items():
        # The configured name wins over a synonym: a sheet may have both a "Sample ID"
        # of the laboratory's own and the "Barcode" of the tube.
        preferred = [column for is_configured, column in matches if is_configured] or [
            column for _, column in matches
        ]
        if len(preferred) > 1:
            cells_named = " and ".join(f'{c.letter}{number} ("{c.title}")' for c in preferred)
            problems.append(
                f"row {number}: cells {cells_named} could both be the {role} column: rename "
                f"one, or set the {role} column name to the one to read"
            )
        chosen[role] = preferred[0]
    if problems:
        raise ResultSheetError(problems)
    return _Header(number, chosen)


_SYNONYM_ROLES = {_key(name): role for role, synonyms in _SYNONYMS.items() for name in synonyms}


# --------------------------------------------------------------------------- rows


class _RowProblem(Exception):
    """What is wrong with one cell; the reader adds the row and the cell."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_ROLES = tuple(DEFAULT_COLUMNS)  # the order _Reader.row unpacks a row's cells in
_MISSING = object()


class _Reader:
    def __init__(
        self,
        names: Mapping[str, str],
        index: Mapping[str, AnalyteSpec],
        analytes: Mapping[str, AnalyteSpec],
    ) -> None:
        self.names = names
        self.index = index
        self.known = ", ".join(analytes) or "none declared"
        self.value_words = {
            spec.code: _value_words(spec) for spec in analytes.values() if spec.kind == QUALITATIVE
        }
        # A sheet repeats a handful of analyte names and units thousands of times: each
        # distinct spelling is resolved once.
        self.analyte_cache: dict[Any, AnalyteSpec | str] = {}
        self.unit_cache: dict[tuple[Any, str], tuple[str, str | None]] = {}
        self.qualitative_cache: dict[tuple[Any, str], tuple[str, str] | str] = {}
        self.first_rows: dict[tuple[str, str], int] = {}
        self.columns: Mapping[str, _Column] = {}
        self.width = 0
        self.pick: Any = None

    def read(self, rows: Iterable[Sequence[Any]]) -> list[ResultRow]:
        header: _Header | None = None
        near: tuple[int, int, set[str]] = (0, 0, set())  # the row most like a header
        results: list[ResultRow] = []
        problems: list[str] = []
        for number, cells in enumerate(rows, start=1):
            if header is None:
                header = _match_header(number, cells, self.names)
                if header is None:
                    roles = set(_header_roles(cells, self.names))
                    if len(roles) > near[1]:
                        near = (number, len(roles), roles)
                    if number >= HEADER_ROWS:
                        break
                else:
                    self._use(header)
                continue
            result = self.row(number, cells, problems)
            if result is not None:
                results.append(result)
        if header is None:
            raise ResultSheetError([self._no_header(*near)])
        if problems:
            raise ResultSheetError(problems)
        return results

    def _use(self, header: _Header) -> None:
        self.columns = header.columns
        # A role without a column reads the cell just past the last column, always padded
        # with None, so that every row unpacks the same way with one itemgetter.
        padding = max(column.index for column in header.columns.values()) + 1
        self.width = padding + 1
        self.pick = operator.itemgetter(
            *(header.columns[role].index if role in header.columns else padding for role in _ROLES)
        )

    def _no_header(self, number: int, count: int, roles: set[str]) -> str:
        def named(role: str) -> str:
            synonyms = [name for name in _SYNONYMS[role] if _key(name) != _key(self.names[role])]
            return f'"{self.names[role]}" (or {", ".join(synonyms[:3])})'

        missing = [role for role in _REQUIRED if role not in roles]
        if count >= 2:
            return (
                f"row {number} looks like the header but names no "
                f"{' and no '.join(role + ' column' for role in missing)}: name it "
                + " and ".join(named(role) for role in missing)
            )
        return (
            f"no header row in the first {HEADER_ROWS} rows: the sheet needs a row naming its "
            f"columns, at least {', '.join(named(role) for role in _REQUIRED)}"
        )

    def row(self, number: int, cells: Sequence[Any], problems: list[str]) -> ResultRow | None:
        """The result of one row after the header, or None (its problems added to
        ``problems``, or a wholly empty row)."""
        # Cut at the padding cell and pad, so that it is None however long the row is.
        padding = self.width - 1
        if len(cells) != self.width or cells[padding] is not None:
            cells = (*cells[:padding], *(None,) * (self.width - min(len(cells), padding)))
        raw = self.pick(cells)
        for cell in raw:
            if cell is not None and (type(cell) is not str or cell.strip()):
                break
        else:
            return None  # an empty row, as spreadsheets leave between blocks and at the end
        if number > MAX_ROWS:
            raise ResultSheetError(
                [f"row {number}: more than {MAX_ROWS:,} rows: split the sheet into smaller files"]
            )
        barcode_cell, analyte_cell, value_cell, unit_cell, method_cell, date_cell, comment = raw
        count = len(problems)

        barcode = barcode_cell.strip() if type(barcode_cell) is str else _text(barcode_cell)
        barcode = barcode.upper()
        if not barcode:
            self._problem(problems, number, "barcode", "no barcode: write the aliquot's barcode")

        spec = self.analyte_cache.get(analyte_cell, _MISSING)
        if spec is _MISSING:
            spec = self.analyte_cache[analyte_cell] = self._analyte(analyte_cell)
        if type(spec) is str:
            self._problem(problems, number, "analyte", spec)
            spec = None

        if barcode and spec is not None:
            first = self.first_rows.setdefault((barcode, spec.code), number)
            if first != number:
                self._problem(
                    problems,
                    number,
                    "barcode",
                    f"{barcode} has a second {spec.code} result (the first is on row "
                    f"{first}): keep one of rows {first} and {number}",
                )

        value = comparator = text = None
        detail = comment.strip() if type(comment) is str else _text(comment)
        if _blank(value_cell):
            self._problem(
                problems, number, "value", "no result: write the result, or delete the row"
            )
        elif spec is not None and spec.kind == NUMERIC:
            try:
                comparator, value = _parse_number(value_cell)
            except _RowProblem as err:
                self._problem(problems, number, "value", err.problem)
            unit, problem = self._unit(unit_cell, spec)
            if problem is not None:
                self._problem(problems, number, "unit", problem)
            elif value is not None:
                value = units.convert(value, unit, spec.unit)
        elif spec is not None:
            key = (value_cell, spec.code)
            found = self.qualitative_cache.get(key)
            if found is None:
                try:
                    found = self._qualitative(value_cell, spec)
                except _RowProblem as err:
                    found = err.problem
                self.qualitative_cache[key] = found
            if type(found) is str:
                self._problem(problems, number, "value", found)
            else:
                text, extra = found
                detail = f"{extra}; {detail}" if extra and detail else extra or detail
            if not _blank(unit_cell):
                unit, problem = self._unit(unit_cell, spec)
                if problem is not None:
                    self._problem(problems, number, "unit", problem)

        measured_on = None
        if type(date_cell) is datetime:
            measured_on = date_cell.date()
        else:
            try:
                measured_on = _parse_date(date_cell)
            except _RowProblem as err:
                self._problem(problems, number, "date", err.problem)

        if len(problems) > count or spec is None:
            return None
        return ResultRow(
            row=number,
            barcode=barcode,
            analyte=spec.code,
            value=value,
            comparator=comparator,
            text=text,
            detail=detail,
            unit=spec.unit,
            reported_value=_text(value_cell),
            reported_unit=_text(unit_cell),
            method=method_cell.strip() if type(method_cell) is str else _text(method_cell),
            measured_on=measured_on,
        )

    def _problem(self, problems: list[str], number: int, role: str, problem: str) -> None:
        problems.append(_at(number, self.columns.get(role), problem))

    def _analyte(self, cell: Any) -> AnalyteSpec | str:
        """The analyte a cell names, or the problem with it."""
        name = _text(cell)
        if not name:
            return f"no analyte: write one of {self.known}"
        spec = self.index.get(_key(name))
        if spec is None:
            return f'unknown analyte "{name}": the known analytes are {self.known}'
        return spec

    def _unit(self, cell: Any, spec: AnalyteSpec) -> tuple[str, str | None]:
        """The canonical unit of a cell and None, or "" and the problem with it."""
        key = (cell, spec.code)
        found = self.unit_cache.get(key)
        if found is None:
            found = self.unit_cache[key] = _unit_of(_text(cell), spec, "unit" in self.columns)
        return found

    def _qualitative(self, cell: Any, spec: AnalyteSpec) -> tuple[str, str]:
        if not isinstance(cell, str):
            raise _RowProblem(_allowed(spec, _text(cell)))
        text = cell.strip()
        words = list(_WORD.finditer(text))
        lookup = self.value_words[spec.code]
        # The longest run of leading words that is a value: values may be several words
        # ("not detected"); what follows is the detail ("Positive IgA lambda").
        for count in range(len(words), 0, -1):
            value = lookup.get(_key(" ".join(m.group() for m in words[:count])))
            if value is not None:
                detail = text[words[count - 1].end() :].lstrip(_DETAIL_LEAD).strip()
                if detail.startswith("(") and detail.endswith(")"):
                    detail = detail[1:-1].strip()
                return value, detail
        raise _RowProblem(_allowed(spec, text))


def _unit_of(unit: str, spec: AnalyteSpec, has_column: bool) -> tuple[str, str | None]:
    if spec.kind == QUALITATIVE:
        try:
            if units.normalize_unit(unit) == units.DIMENSIONLESS:
                return "", None
        except units.UnitError:
            pass
        return (
            "",
            f'{spec.code} is qualitative: it has no unit (leave the cell empty, not "{unit}")',
        )
    if not unit and spec.unit:
        where = "" if has_column else " (the sheet has no Unit column)"
        return "", (
            f"no unit{where}: write the unit of the {spec.code} result (it is kept in {spec.unit})"
        )
    try:
        normalized = units.normalize_unit(unit)
    except units.UnitError:
        return "", f'unknown unit "{unit}": {_unit_advice(spec)}'
    if not units.is_convertible(normalized, spec.unit):
        return "", f"{spec.code} cannot be in {normalized or 'a ratio (no unit)'}: " + _unit_advice(
            spec
        )
    return normalized, None


def _unit_advice(spec: AnalyteSpec) -> str:
    if not spec.unit:
        return f'{spec.code} is a ratio: leave the unit empty or write "ratio"'
    compatible = [unit for unit in units.UNITS if units.is_convertible(unit, spec.unit)]
    return f"{spec.code} is kept in {spec.unit}; write it in one of {', '.join(compatible)}"


def _value_words(spec: AnalyteSpec) -> dict[str, str]:
    # The shared words of analytes.toml apply to every qualitative analyte whose values
    # they name, also to one declared later and rebuilt from the database without them.
    spec = _with_value_words(spec, _default_value_words())
    words = {_key(value): value for value in spec.values}
    for word, value in spec.value_aliases:
        words.setdefault(_key(word), value)
    return words


def _allowed(spec: AnalyteSpec, text: str) -> str:
    values = " or ".join(f'"{value}"' for value in spec.values)
    return f'"{text}" is not a result of {spec.code}: write {values}, then any detail'


def _at(number: int, column: _Column | None, problem: str) -> str:
    if column is None:
        return f"row {number}: {problem}"
    return f'row {number}, cell {column.letter}{number} ("{column.title}"): {problem}'


def _cell(cells: Sequence[Any], index: int) -> Any:
    return cells[index] if index < len(cells) else None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    """A cell as the user reads it: numbers without a spurious ".0", dates in ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time(0):
        return value.date().isoformat()
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


def _parse_number(cell: Any) -> tuple[str | None, float]:
    comparator = None
    kind = type(cell)
    if kind is float or kind is int:  # not bool, whose type is bool
        number = float(cell)
    elif kind is not str:
        formatted = "a true/false value" if kind is bool else "a date"
        if not isinstance(cell, bool | date | time | timedelta):
            formatted = kind.__name__
        raise _RowProblem(
            f"{_text(cell)} is not a number (the cell is formatted as {formatted}): "
            "format it as a number",
        )
    else:
        text = cell.strip()
        match = _COMPARATOR.fullmatch(text)
        if match:
            comparator, text = match.group(1), match.group(2).strip()
        if _GROUPED.fullmatch(text):
            text = _GROUP_SPACE.sub("", text)
        if "," in text:
            if "." in text or text.count(",") > 1:
                raise _RowProblem(
                    f'cannot read "{cell.strip()}" as a number: write it without a thousands '
                    "separator, with one decimal point or comma (1234.5 or 1234,5)",
                )
            if _AMBIGUOUS_COMMA.fullmatch(text):
                grouped, decimal = text.replace(",", ""), text.replace(",", ".")
                raise _RowProblem(
                    f'"{cell.strip()}" is ambiguous (a thousands separator or a decimal '
                    f"comma?): write {grouped} or {decimal}",
                )
            text = text.replace(",", ".")
        if not _NUMBER.fullmatch(text):
            raise _RowProblem(
                f'"{cell.strip()}" is not a number: write a number such as 12.5, 12,5 or < 0.5 '
                "(the unit in its own column)",
            )
        number = float(text)
    if not math.isfinite(number):
        raise _RowProblem(f'"{_text(cell)}" is not a finite number')
    if number < 0:
        raise _RowProblem(f"{_text(cell)} is negative: a result cannot be")
    return comparator, number + 0.0  # -0.0 becomes 0.0


def _parse_date(cell: Any) -> date | None:
    if _blank(cell):
        return None
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if not isinstance(cell, str):
        raise _RowProblem(
            f"{_text(cell)} is not a date: format the cell as a date, or write 2026-03-02"
        )
    text = cell.strip()
    iso, day_first = _ISO_DATE.fullmatch(text), _DAY_FIRST.fullmatch(text)
    try:
        if iso:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if day_first:
            return date(int(day_first.group(3)), int(day_first.group(2)), int(day_first.group(1)))
    except ValueError:
        raise _RowProblem(f'"{text}" is not a date of the calendar') from None
    if _SHORT_YEAR.fullmatch(text):
        raise _RowProblem(f'"{text}": write the year with four digits (02/03/2026)')
    raise _RowProblem(f'"{text}" is not a date: write 2026-03-02 or 02/03/2026 (day first)')
