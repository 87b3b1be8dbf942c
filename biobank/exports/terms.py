"""The CDISC terms of the SDTM export, read from ``sdtm_terms.toml`` and checked.

The terms are data: a test code that changes in a new terminology release is changed in
the file, never in the code. Reading is pure; every problem raises ``TermsError`` naming
the entry (``analytes.VEGF.testcd: at most 8 characters``), so a mistake in the file is
found by the test that reads the shipped file, not by a statistician.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biobank.assays import units
from biobank.custody.services import EventKind

TERMS_FILE = Path(__file__).resolve().parent / "sdtm_terms.toml"

# SDTM: a test code has at most 8 characters, letters, digits and underscores, and does
# not start with a digit (it becomes a variable name once the data are transposed).
_TESTCD = re.compile(r"[A-Z_][A-Z0-9_]{0,7}")
MAX_TEST = 40
MAX_TEXT = 200
SPECIMEN_TIMES = ("collected_at", "received_at", "spun_at", "frozen_at")
BIOSPECIMEN_SOURCES = ("aliquot_volume", "freeze_thaw_count", "sprec_code")


class TermsError(ValueError):
    """The terms file is not valid: ``path`` names the entry."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class TestTerm:
    """How one analyte's results are written in LB."""

    analyte: str
    testcd: str
    test: str
    category: str
    method: str
    unit: str
    ct: bool
    results: Mapping[str, str]

    def standard_result(self, text: str) -> str:
        """A qualitative result as LBSTRESC writes it."""
        return self.results.get(text, text.upper())


@dataclass(frozen=True)
class EventTerm:
    """A biospecimen event: a step of the primary tube (``source`` its time column) or a
    custody event kind (``source`` the kind)."""

    source: str
    decod: str
    term: str
    category: str


@dataclass(frozen=True)
class BiospecimenTest:
    testcd: str
    test: str
    source: str
    unit: str
    ct: bool


@dataclass(frozen=True)
class Terms:
    standard: str
    ct_version: str
    primary_specimen: str
    specimen_types: Mapping[str, str]  # SPREC type of sample → SDTM specimen type
    analytes: Mapping[str, TestTerm]
    specimen_events: tuple[EventTerm, ...]
    custody_events: Mapping[str, EventTerm]  # custody kind → its term
    biospecimen_tests: tuple[BiospecimenTest, ...]

    def specimen_type(self, sample_type: str) -> str:
        """The SDTM specimen type of a SPREC type of sample; the code itself when the file
        names none (a sample type added to the SPREC table later)."""
        return self.specimen_types.get(sample_type, sample_type)


@functools.cache
def shipped_terms() -> Terms:
    """The terms of the file shipped with the application, read once."""
    return parse_terms(TERMS_FILE.read_text(encoding="utf-8"))


def parse_terms(text: str) -> Terms:
    """Read and check the terms file's text; ``TermsError`` names any problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise TermsError("", f"TOML syntax error: {err}") from None
    _only(
        document,
        "",
        {
            "terminology",
            "specimen_types",
            "analytes",
            "specimen_events",
            "custody_events",
            "biospecimen_tests",
        },
    )
    about = _table(document, "terminology", "")
    _only(about, "terminology", {"standard", "ct_version"})
    types = _table(document, "specimen_types", "")
    kinds = {key: _text(types, key, "specimen_types") for key in types}
    if "primary" not in kinds:
        raise TermsError("specimen_types.primary", "missing")
    primary = kinds.pop("primary")
    analytes = _table(document, "analytes", "")
    terms = {code: _analyte(code, _table(analytes, code, "analytes")) for code in analytes}
    _distinct(terms.values())
    return Terms(
        standard=_text(about, "standard", "terminology"),
        ct_version=_text(about, "ct_version", "terminology"),
        primary_specimen=primary,
        specimen_types=kinds,
        analytes=terms,
        specimen_events=tuple(
            _specimen_event(entry, f"specimen_events[{n}]")
            for n, entry in enumerate(_list(document, "specimen_events"))
        ),
        custody_events=_custody_events(_list(document, "custody_events")),
        biospecimen_tests=_biospecimen_tests(_list(document, "biospecimen_tests")),
    )


# --- entries -------------------------------------------------------------------------------


def _analyte(code: str, entry: Mapping[str, Any]) -> TestTerm:
    path = f"analytes.{code}"
    _only(entry, path, {"testcd", "test", "category", "method", "unit", "ct", "results"})
    unit = _text(entry, "unit", path, empty=True)
    if unit:
        try:
            units.normalize_unit(unit)
        except units.UnitError as err:
            raise TermsError(f"{path}.unit", str(err)) from None
    results = entry.get("results", {})
    if not isinstance(results, dict):
        raise TermsError(f"{path}.results", "must be a table")
    return TestTerm(
        analyte=code,
        testcd=_testcd(entry, path),
        test=_text(entry, "test", path, limit=MAX_TEST),
        category=_text(entry, "category", path),
        method=_text(entry, "method", path),
        unit=unit,
        ct=_flag(entry, "ct", path),
        results={key: _text(results, key, f"{path}.results") for key in results},
    )


def _distinct(analytes) -> None:
    """Two analytes with one test code and one method would give one visit two records
    that nothing tells apart."""
    seen: dict[tuple[str, str], str] = {}
    for term in analytes:
        key = (term.testcd, term.method)
        if key in seen:
            raise TermsError(
                f"analytes.{term.analyte}",
                f"test code {term.testcd} with method {term.method} is already "
                f"analytes.{seen[key]}'s",
            )
        seen[key] = term.analyte


def _specimen_event(entry: Any, path: str) -> EventTerm:
    entry = _as_table(entry, path)
    _only(entry, path, {"decod", "term", "category", "time"})
    time = _text(entry, "time", path)
    if time not in SPECIMEN_TIMES:
        raise TermsError(f"{path}.time", f"must be one of {', '.join(SPECIMEN_TIMES)}")
    return EventTerm(time, *_event_words(entry, path))


def _custody_events(entries: list) -> dict[str, EventTerm]:
    found: dict[str, EventTerm] = {}
    for n, entry in enumerate(entries):
        path = f"custody_events[{n}]"
        entry = _as_table(entry, path)
        _only(entry, path, {"kind", "decod", "term", "category"})
        kind = _text(entry, "kind", path)
        if kind not in EventKind.__members__:
            raise TermsError(f"{path}.kind", f"{kind!r} is not a custody event kind")
        if kind in found:
            raise TermsError(f"{path}.kind", f"{kind} is listed twice")
        found[kind] = EventTerm(kind, *_event_words(entry, path))
    return found


def _event_words(entry: Mapping[str, Any], path: str) -> tuple[str, str, str]:
    return (
        _text(entry, "decod", path),
        _text(entry, "term", path),
        _text(entry, "category", path),
    )


def _biospecimen_tests(entries: list) -> tuple[BiospecimenTest, ...]:
    tests = []
    for n, entry in enumerate(entries):
        path = f"biospecimen_tests[{n}]"
        entry = _as_table(entry, path)
        _only(entry, path, {"testcd", "test", "source", "unit", "ct"})
        source = _text(entry, "source", path)
        if source not in BIOSPECIMEN_SOURCES:
            raise TermsError(f"{path}.source", f"must be one of {', '.join(BIOSPECIMEN_SOURCES)}")
        test = BiospecimenTest(
            testcd=_testcd(entry, path),
            test=_text(entry, "test", path, limit=MAX_TEST),
            source=source,
            unit=_text(entry, "unit", path, empty=True),
            ct=_flag(entry, "ct", path),
        )
        if test.testcd in {t.testcd for t in tests}:
            raise TermsError(f"{path}.testcd", f"{test.testcd} is listed twice")
        tests.append(test)
    return tuple(tests)


# --- values --------------------------------------------------------------------------------


def _only(entry: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise TermsError(where, f"unknown key (known: {', '.join(sorted(allowed))})")


def _as_table(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TermsError(path, "must be a table")
    return value


def _table(entry: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    where = f"{path}.{key}" if path else key
    if key not in entry:
        raise TermsError(where, "missing")
    return _as_table(entry[key], where)


def _list(entry: Mapping[str, Any], key: str) -> list:
    value = entry.get(key)
    if not isinstance(value, list) or not value:
        raise TermsError(key, "must be a non-empty array of tables")
    return value


def _text(
    entry: Mapping[str, Any], key: str, path: str, *, limit: int = MAX_TEXT, empty: bool = False
) -> str:
    where = f"{path}.{key}"
    if key not in entry:
        raise TermsError(where, "missing")
    value = entry[key]
    if not isinstance(value, str):
        raise TermsError(where, "must be a string")
    if not value.strip() and not empty:
        raise TermsError(where, "must not be empty")
    # The transport format holds ASCII text only: a term is written as it stands here.
    if not value.isascii() or not value.isprintable():
        raise TermsError(where, "must be printable ASCII")
    if len(value) > limit:
        raise TermsError(where, f"at most {limit} characters")
    return value


def _testcd(entry: Mapping[str, Any], path: str) -> str:
    value = _text(entry, "testcd", path)
    if not _TESTCD.fullmatch(value):
        raise TermsError(
            f"{path}.testcd",
            "at most 8 characters, A-Z, 0-9 and '_', not starting with a digit",
        )
    return value


def _flag(entry: Mapping[str, Any], key: str, path: str) -> bool:
    value = entry.get(key)
    if not isinstance(value, bool):
        raise TermsError(f"{path}.{key}", "must be true or false")
    return value
