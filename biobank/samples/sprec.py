"""SPREC (Standard PREanalytical Code) for serum and plasma primary tubes.

A fluid SPREC has seven elements joined by "-": type of sample, type of primary
container, pre-centrifugation, centrifugation, second centrifugation,
post-centrifugation and long-term storage, e.g. ``SER-SST-A-B-N-B-D``.

This module only matches what the technician entered against the rows of
``sprec_codes.toml``; every code letter, range and boundary lives in that file,
with the publication each table comes from. Nothing here touches Flask or the
database.

Two rules shape the result:

* A value that fits no row of a table gets that table's *other* code (``Z``, or
  ``ZZZ`` for the three-letter tables, as SPREC defines it) and the raw value is
  kept in :attr:`SprecCode.others`, so the code never claims a row the sample
  does not belong to.
* A value that was not entered gets the table's *unknown* code (``X`` / ``XXX``
  in SPREC), or the *other* code with "(not recorded)" when the table has no
  unknown row.

A delay that comes out negative (spun before collection, frozen before the end
of centrifugation) is a data-entry error and raises :class:`ValueError`.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_TABLES_PATH",
    "ELEMENTS",
    "NOT_RECORDED",
    "FluidPreanalytics",
    "Range",
    "Row",
    "Spin",
    "SprecCode",
    "SprecTableError",
    "SprecTableOverlap",
    "SprecTables",
    "Table",
    "TemperatureClass",
    "derive_fluid_code",
    "describe",
    "load_tables",
]

DEFAULT_TABLES_PATH = Path(__file__).with_name("sprec_codes.toml")

ELEMENTS = (
    "sample_type",
    "container",
    "precentrifugation",
    "centrifugation",
    "second_centrifugation",
    "postcentrifugation",
    "storage",
)

# Raw value kept for a missing entry in a table that has no "unknown" row, so
# that every "other" element still explains itself.
NOT_RECORDED = "(not recorded)"

# What the rows of each table are matched on. Sample type and container are
# entered as SPREC codes already, so their rows are matched on the code itself.
_CRITERIA: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "sample_type": (),
        "container": (),
        "precentrifugation": ("temperature", "hours"),
        "centrifugation": ("temperature", "minutes", "force_g", "braking"),
        "second_centrifugation": ("temperature", "minutes", "force_g", "braking"),
        "postcentrifugation": ("temperature", "hours"),
        "storage": ("container", "temperature"),
    }
)
_RANGE_CRITERIA = frozenset({"hours", "minutes", "force_g"})
_ROW_KEYS = frozenset({"code", "label", "since", "note"})
_TABLE_KEYS = frozenset(
    {"title", "sprec_version", "citation", "unknown", "other", "absent", "rows"}
)
# A row's label and a table's title in another language: label_fr, title_fr.
_TRANSLATED = re.compile(r"(?P<kind>label|title)_(?P<language>[a-z]{2})")
# How describe() words what is not a row label; a language of the file may reword it.
_WORDING = MappingProxyType(
    {
        "other_value": "{label}: {value}",
        "not_a_code": "not a code of the SPREC {version} table '{title}'",
    }
)
# A missing second spin means "none was done", which the table must be able to say.
_ABSENT_REQUIRED = frozenset({"second_centrifugation"})


class SprecTableError(ValueError):
    """The code-table file is malformed."""


class SprecTableOverlap(RuntimeError):
    """Two rows of a table match the same entry: a fault of the table, not of the entry.

    Not a ValueError, so that callers who turn ValueError into a form error do
    not blame the technician for it.
    """


# ---------------------------------------------------------------------------
# Input and output
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spin:
    """One centrifugation as entered on the registration form."""

    temperature_c: float  # centrifuge temperature
    force_g: int  # relative centrifugal force
    minutes: float  # duration
    braking: bool = True


@dataclass(frozen=True)
class FluidPreanalytics:
    """What the technician entered for one serum or plasma primary tube."""

    sample_type: str  # "SER", "PL1", "PL2" (already decided by the caller)
    container: str  # "SST", "PED", ...
    collected_at: datetime | None  # timezone-aware
    first_spin_at: datetime | None  # start of the first centrifugation
    precentrifugation_temperature: str  # "RT" (room temperature) or "2-10" (refrigerated / on ice)
    first_spin: Spin | None
    second_spin: Spin | None  # None = no second centrifugation
    frozen_at: datetime | None  # placed at storage temperature
    postcentrifugation_temperature: str  # "RT" or "2-10"
    storage_temperature_c: int | None  # e.g. -80, -196 (LN2 liquid), -150 (LN2 vapour), -20
    storage_container: str = "cryotube"  # a key of [storage_containers] in the tables


@dataclass(frozen=True)
class SprecCode:
    """A derived SPREC: its seven element codes and the raw values behind "other"."""

    elements: tuple[str, ...]  # the 7 codes, in order
    # Element name -> raw value, for each element coded with its table's "other"
    # code (Z / ZZZ). Excluded from the hash so the frozen object stays hashable.
    others: dict[str, str] = field(hash=False)
    version: str  # SPREC version of the tables, read from the data file

    def __str__(self) -> str:
        return "-".join(self.elements)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A numeric interval with explicit bounds: ge (>=), gt (>), le (<=), lt (<)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        # Written so that NaN fails every test and so falls outside every range.
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def __str__(self) -> str:
        parts = [
            f"{symbol} {bound:g}"
            for symbol, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        return " and ".join(parts)


@dataclass(frozen=True)
class TemperatureClass:
    """A named temperature band, e.g. "RT" = 18-28 °C."""

    name: str
    label: str
    range: Range


@dataclass(frozen=True)
class Row:
    """One row of a code table. A row without criteria is read back, never derived."""

    code: str
    label: str
    criteria: Mapping[str, Any]
    since: str | None = None
    note: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # language -> label

    def label_in(self, language: str | None) -> str:
        """The label in ``language`` when the file gives one, else the English label."""
        return self.labels.get(language, self.label) if language else self.label


@dataclass(frozen=True)
class Table:
    """The code table of one SPREC element."""

    name: str
    title: str
    sprec_version: str
    citation: str
    rows: tuple[Row, ...]
    other: str
    unknown: str | None = None
    absent: str | None = None
    titles: Mapping[str, str] = field(default_factory=dict)  # language -> title

    def title_in(self, language: str | None) -> str:
        """The title in ``language`` when the file gives one, else the English title."""
        return self.titles.get(language, self.title) if language else self.title

    @property
    def codes(self) -> frozenset[str]:
        """Every code of the table, including its unknown and other codes."""
        return frozenset(row.code for row in self.rows)

    def row(self, code: str) -> Row | None:
        """The row with this code, or None."""
        for row in self.rows:
            if row.code == code:
                return row
        return None


@dataclass(frozen=True)
class SprecTables:
    """All seven element tables plus the temperature classes and storage containers."""

    version: str
    tables: Mapping[str, Table]
    temperature_classes: Mapping[str, TemperatureClass]
    storage_containers: Mapping[str, str]
    path: Path
    wording: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per language

    def __getitem__(self, element: str) -> Table:
        return self.tables[element]

    def words(self, language: str | None, key: str) -> str:
        """How ``key`` of the wording reads in ``language`` (English by default)."""
        return self.wording.get(language or "", {}).get(key, _WORDING[key])


def load_tables(path: str | Path | None = None) -> SprecTables:
    """Read and validate a SPREC code-table file.

    Without ``path`` the ``sprec_codes.toml`` beside this module is read once and
    cached. Raises :class:`SprecTableError` (a :class:`ValueError`) naming the
    table and row when the file is malformed: a row without a code or label, a
    code used twice in a table, an unknown criterion, a range or temperature
    class that does not parse, or a missing table.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _load_default() -> SprecTables:
    return _load(DEFAULT_TABLES_PATH)


def _load(path: Path) -> SprecTables:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SprecTableError(f"{path}: not valid TOML: {exc}") from exc
    return _build(data, path)


def _build(data: Mapping[str, Any], path: Path) -> SprecTables:
    where = str(path)
    version = data.get("sprec_version")
    if not isinstance(version, str) or not version.strip():
        raise SprecTableError(f"{where}: 'sprec_version' must be a non-empty string")

    classes = _build_temperature_classes(data.get("temperature_classes"), where)
    containers = _build_storage_containers(data.get("storage_containers"), where)

    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict):
        raise SprecTableError(f"{where}: missing [tables]")
    unexpected = sorted(set(raw_tables) - set(ELEMENTS))
    if unexpected:
        raise SprecTableError(f"{where}: unexpected table(s) {unexpected}; expected {ELEMENTS}")
    tables = {}
    for name in ELEMENTS:
        if name not in raw_tables:
            raise SprecTableError(f"{where}: missing table 'tables.{name}'")
        tables[name] = _build_table(name, raw_tables[name], classes, containers, where)

    return SprecTables(
        version=version.strip(),
        tables=MappingProxyType(tables),
        temperature_classes=MappingProxyType(classes),
        storage_containers=MappingProxyType(containers),
        path=path,
        wording=_build_wording(data.get("wording", {}), where),
    )


def _build_wording(raw: Any, where: str) -> dict[str, Mapping[str, str]]:
    if not isinstance(raw, dict):
        raise SprecTableError(f"{where}: [wording] must hold one table per language")
    wording = {}
    for language, words in raw.items():
        context = f"{where}: wording.{language}"
        if not isinstance(words, dict):
            raise SprecTableError(f"{context}: must be a table")
        extra = sorted(set(words) - set(_WORDING))
        if extra:
            raise SprecTableError(
                f"{context}: unexpected key(s) {extra}; known: {sorted(_WORDING)}"
            )
        for key, text in words.items():
            try:
                if not isinstance(text, str):
                    raise TypeError
                text.format(label="", value="", version="", title="")
            except (TypeError, KeyError, IndexError, ValueError) as exc:
                raise SprecTableError(
                    f"{context}: {key!r} must be a text with only {{label}}, {{value}}, "
                    "{version} and {title} to fill in"
                ) from exc
        wording[language] = MappingProxyType(dict(words))
    return wording


def _translations(raw: Mapping[str, Any], kind: str, context: str) -> dict[str, str]:
    """The ``<kind>_<language>`` keys of a row (label_fr) or a table (title_fr)."""
    found = {}
    for key, value in raw.items():
        match = _TRANSLATED.fullmatch(key)
        if match is None or match["kind"] != kind:
            continue
        if not isinstance(value, str) or not value.strip():
            raise SprecTableError(f"{context}: {key!r} must be a non-empty string")
        found[match["language"]] = value
    return found


def _build_temperature_classes(raw: Any, where: str) -> dict[str, TemperatureClass]:
    if not isinstance(raw, dict) or not raw:
        raise SprecTableError(f"{where}: missing [temperature_classes]")
    classes = {}
    for name, spec in raw.items():
        context = f"{where}: temperature class {name!r}"
        if not isinstance(spec, dict):
            raise SprecTableError(f"{context}: must be a table")
        label = spec.get("label")
        if not isinstance(label, str) or not label.strip():
            raise SprecTableError(f"{context}: missing 'label'")
        extra = sorted(set(spec) - {"label", "range"})
        if extra:
            raise SprecTableError(f"{context}: unexpected key(s) {extra}")
        classes[name] = TemperatureClass(name, label, _build_range(spec.get("range"), context))
    return classes


def _build_storage_containers(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise SprecTableError(f"{where}: missing [storage_containers]")
    for key, label in raw.items():
        if not isinstance(label, str) or not label.strip():
            raise SprecTableError(f"{where}: storage container {key!r} needs a label")
    return dict(raw)


def _build_range(raw: Any, context: str) -> Range:
    if not isinstance(raw, dict) or not raw:
        raise SprecTableError(f"{context}: a range needs at least one of ge, gt, le, lt")
    extra = sorted(set(raw) - {"ge", "gt", "le", "lt"})
    if extra:
        raise SprecTableError(f"{context}: unexpected range bound(s) {extra}")
    for key, bound in raw.items():
        if isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound):
            raise SprecTableError(f"{context}: range bound {key!r} must be a number")
    if "ge" in raw and "gt" in raw:
        raise SprecTableError(f"{context}: range has both 'ge' and 'gt'")
    if "le" in raw and "lt" in raw:
        raise SprecTableError(f"{context}: range has both 'le' and 'lt'")
    low = raw.get("ge", raw.get("gt"))
    high = raw.get("le", raw.get("lt"))
    if low is not None and high is not None and low > high:
        raise SprecTableError(f"{context}: range lower bound {low} is above upper bound {high}")
    return Range(**raw)


def _build_table(
    name: str,
    raw: Any,
    classes: Mapping[str, TemperatureClass],
    containers: Mapping[str, str],
    where: str,
) -> Table:
    context = f"{where}: table {name!r}"
    if not isinstance(raw, dict):
        raise SprecTableError(f"{context}: must be a table")
    titles = _translations(raw, "title", context)
    extra = sorted(set(raw) - _TABLE_KEYS - {f"title_{language}" for language in titles})
    if extra:
        raise SprecTableError(f"{context}: unexpected key(s) {extra}")
    for key in ("title", "sprec_version", "citation"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise SprecTableError(f"{context}: missing {key!r} (every table records its source)")
    raw_rows = raw.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise SprecTableError(f"{context}: no rows")

    rows: list[Row] = []
    first_row_of: dict[str, int] = {}
    for number, raw_row in enumerate(raw_rows, start=1):
        row = _build_row(raw_row, name, number, classes, containers, context)
        if row.code in first_row_of:
            raise SprecTableError(
                f"{context}, row {number} (code {row.code!r}): duplicate code "
                f"{row.code!r}, already used by row {first_row_of[row.code]}"
            )
        first_row_of[row.code] = number
        rows.append(row)

    special: dict[str, str | None] = {}
    for role in ("other", "unknown", "absent"):
        code = raw.get(role)
        if code is None:
            if role == "other" or (role == "absent" and name in _ABSENT_REQUIRED):
                raise SprecTableError(f"{context}: missing {role!r} code")
            special[role] = None
            continue
        if not isinstance(code, str) or code not in first_row_of:
            raise SprecTableError(f"{context}: {role!r} code {code!r} is not a row of the table")
        if rows[first_row_of[code] - 1].criteria:
            raise SprecTableError(
                f"{context}, row {first_row_of[code]} (code {code!r}): the {role!r} row "
                "must not carry matching criteria"
            )
        special[role] = code

    return Table(
        name=name,
        title=raw["title"],
        sprec_version=raw["sprec_version"],
        citation=raw["citation"],
        rows=tuple(rows),
        other=special["other"] or "",
        unknown=special["unknown"],
        absent=special["absent"],
        titles=MappingProxyType(titles),
    )


def _build_row(
    raw: Any,
    table: str,
    number: int,
    classes: Mapping[str, TemperatureClass],
    containers: Mapping[str, str],
    context: str,
) -> Row:
    if not isinstance(raw, dict):
        raise SprecTableError(f"{context}, row {number}: must be a table")
    code = raw.get("code")
    if not isinstance(code, str) or not code.strip():
        raise SprecTableError(f"{context}, row {number}: missing 'code'")
    context = f"{context}, row {number} (code {code!r})"
    if code != code.strip() or "-" in code:
        raise SprecTableError(f"{context}: a code may not contain '-' or surrounding spaces")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise SprecTableError(f"{context}: missing 'label'")
    for key in ("since", "note"):
        if key in raw and not isinstance(raw[key], str):
            raise SprecTableError(f"{context}: {key!r} must be a string")

    allowed = _CRITERIA[table]
    labels = _translations(raw, "label", context)
    translated = {f"label_{language}" for language in labels}
    extra = sorted(set(raw) - _ROW_KEYS - translated - set(allowed))
    if extra:
        raise SprecTableError(f"{context}: unexpected key(s) {extra}")
    present = [key for key in allowed if key in raw]
    # A row with only some criteria would match far more than the publication's row.
    if present and len(present) != len(allowed):
        missing = [key for key in allowed if key not in raw]
        raise SprecTableError(f"{context}: lacks criteria {missing}")

    criteria: dict[str, Any] = {}
    for key in present:
        value = raw[key]
        if key in _RANGE_CRITERIA:
            criteria[key] = _build_range(value, f"{context}, {key!r}")
        elif key == "temperature":
            names = (value,) if isinstance(value, str) else value
            if (
                not isinstance(names, list | tuple)
                or not names
                or not all(isinstance(n, str) and n in classes for n in names)
            ):
                raise SprecTableError(
                    f"{context}: temperature {value!r} is not a name (or list of names) "
                    f"from [temperature_classes] {sorted(classes)}"
                )
            criteria[key] = tuple(names)
        elif key == "braking":
            if not isinstance(value, bool):
                raise SprecTableError(f"{context}: 'braking' must be true or false")
            criteria[key] = value
        elif key == "container":
            if value not in containers:
                raise SprecTableError(
                    f"{context}: container {value!r} is not a key of [storage_containers]"
                )
            criteria[key] = value
    return Row(
        code=code,
        label=label,
        criteria=MappingProxyType(criteria),
        since=raw.get("since"),
        note=raw.get("note"),
        labels=MappingProxyType(labels),
    )


# ---------------------------------------------------------------------------
# Derivation
# ---------------------------------------------------------------------------


def derive_fluid_code(p: FluidPreanalytics, tables: SprecTables | None = None) -> SprecCode:
    """Derive the seven-element fluid SPREC of one primary tube.

    Delays are computed from the timestamps:

    * pre-centrifugation delay = ``first_spin_at - collected_at``;
    * post-centrifugation delay = ``frozen_at`` minus the end of the last
      centrifugation, where that end is assumed to be ``first_spin_at`` plus
      ``first_spin.minutes`` plus ``second_spin.minutes`` when there is a second
      spin. The form records no start time for the second spin and no time the
      tube spent between spins or in the rotor afterwards, so the assumption is
      that the second spin followed the first at once; any pause is therefore
      counted in the post-centrifugation delay.

    Each element is matched against its table in ``tables`` (default: the
    bundled file). A value that fits no row gets the table's "other" code and
    its raw value in ``SprecCode.others``; a value not entered gets the
    table's "unknown" code. A missing first spin is "unknown" (serum and plasma
    are always spun); a missing second spin means none was done.

    Raises ValueError, naming the fields, for a negative delay (first_spin_at
    before collected_at, frozen_at before first_spin_at or before the end of
    centrifugation), for a spin whose minutes or force is not positive, and for
    a mix of timezone-aware and naive timestamps.
    """
    t = tables if tables is not None else load_tables()
    _check_timezones(p)

    results = {
        "sample_type": _by_code(t["sample_type"], p.sample_type),
        "container": _by_code(t["container"], p.container),
        "precentrifugation": _precentrifugation(p, t),
        "centrifugation": _centrifugation(
            t["centrifugation"], p.first_spin, "first_spin", t, optional=False
        ),
        "second_centrifugation": _centrifugation(
            t["second_centrifugation"], p.second_spin, "second_spin", t, optional=True
        ),
        "postcentrifugation": _postcentrifugation(p, t),
        "storage": _storage(p, t),
    }
    elements = tuple(results[name][0] for name in ELEMENTS)
    others = {name: raw for name in ELEMENTS if (raw := results[name][1]) is not None}
    return SprecCode(elements=elements, others=others, version=t.version)


_Outcome = tuple[str, str | None]  # (code, raw value when the code is "other")


def _missing(table: Table) -> _Outcome:
    if table.unknown is not None:
        return table.unknown, None
    return table.other, NOT_RECORDED


def _resolve(table: Table, values: Mapping[str, Any], raw: str, t: SprecTables) -> _Outcome:
    hits = [row.code for row in table.rows if row.criteria and _matches(row, values, t)]
    if len(hits) > 1:
        raise SprecTableOverlap(
            f"{t.path}: table {table.name!r}: rows {hits} all match {raw}; rows must not overlap"
        )
    if hits:
        return hits[0], None
    return table.other, raw


def _matches(row: Row, values: Mapping[str, Any], t: SprecTables) -> bool:
    for key, expected in row.criteria.items():
        actual = values[key]
        if key in _RANGE_CRITERIA:
            ok = actual in expected
        elif key == "temperature":
            if isinstance(actual, str):
                ok = actual in expected
            else:
                ok = any(actual in t.temperature_classes[name].range for name in expected)
        else:
            ok = actual == expected
        if not ok:
            return False
    return True


def _by_code(table: Table, value: str | None) -> _Outcome:
    entered = (value or "").strip()
    if not entered:
        return _missing(table)
    row = table.row(entered)
    if row is None or row.code == table.other:
        return table.other, entered
    return row.code, None


def _precentrifugation(p: FluidPreanalytics, t: SprecTables) -> _Outcome:
    table = t["precentrifugation"]
    delay = _delay(p.collected_at, "collected_at", p.first_spin_at, "first_spin_at")
    temperature = (p.precentrifugation_temperature or "").strip()
    if delay is None or not temperature:
        return _missing(table)
    values = {"temperature": temperature, "hours": delay.total_seconds() / 3600}
    return _resolve(table, values, f"temperature {temperature}, delay {delay} (h:mm:ss)", t)


def _centrifugation(
    table: Table, spin: Spin | None, field_name: str, t: SprecTables, *, optional: bool
) -> _Outcome:
    if spin is None:
        # Serum and plasma are always spun once, so only an optional spin can be
        # "not done"; a first spin that was not entered is unknown.
        if optional and table.absent is not None:
            return table.absent, None
        return _missing(table)
    _check_spin(spin, field_name)
    values = {
        "temperature": spin.temperature_c,
        "minutes": spin.minutes,
        "force_g": spin.force_g,
        "braking": spin.braking,
    }
    return _resolve(table, values, _describe_spin(spin), t)


def _postcentrifugation(p: FluidPreanalytics, t: SprecTables) -> _Outcome:
    table = t["postcentrifugation"]
    # Checked even when the spin itself is missing: freezing before the tube was
    # spun is an entry error whatever the spin's duration.
    _delay(p.first_spin_at, "first_spin_at", p.frozen_at, "frozen_at")
    end = _end_of_centrifugation(p)
    delay = _delay(
        end,
        "the end of centrifugation (first_spin_at + first_spin.minutes"
        + (" + second_spin.minutes)" if p.second_spin is not None else ")"),
        p.frozen_at,
        "frozen_at",
    )
    temperature = (p.postcentrifugation_temperature or "").strip()
    if delay is None or not temperature:
        return _missing(table)
    values = {"temperature": temperature, "hours": delay.total_seconds() / 3600}
    return _resolve(table, values, f"temperature {temperature}, delay {delay} (h:mm:ss)", t)


def _storage(p: FluidPreanalytics, t: SprecTables) -> _Outcome:
    table = t["storage"]
    container = (p.storage_container or "").strip()
    temperature = p.storage_temperature_c
    if temperature is None or not container:
        return _missing(table)
    values = {"container": container, "temperature": temperature}
    raw = f"container {container!r} at {temperature:g} °C"
    return _resolve(table, values, raw, t)


def _end_of_centrifugation(p: FluidPreanalytics) -> datetime | None:
    if p.first_spin_at is None or p.first_spin is None:
        return None
    _check_spin(p.first_spin, "first_spin")
    minutes = p.first_spin.minutes
    if p.second_spin is not None:
        _check_spin(p.second_spin, "second_spin")
        minutes += p.second_spin.minutes
    return p.first_spin_at + timedelta(minutes=minutes)


def _delay(
    start: datetime | None, start_name: str, end: datetime | None, end_name: str
) -> timedelta | None:
    if start is None or end is None:
        return None
    delay = end - start
    if delay < timedelta(0):
        raise ValueError(
            f"{end_name} ({end.isoformat()}) is before {start_name} ({start.isoformat()}): "
            "a negative delay is a data-entry error"
        )
    return delay


def _check_spin(spin: Spin, field_name: str) -> None:
    # `not x > 0` also rejects NaN, which would otherwise poison the delays.
    if not (isinstance(spin.minutes, int | float) and math.isfinite(spin.minutes)) or not (
        spin.minutes > 0
    ):
        raise ValueError(f"{field_name}.minutes must be a positive duration, got {spin.minutes!r}")
    if not isinstance(spin.force_g, int | float) or not spin.force_g > 0:
        raise ValueError(f"{field_name}.force_g must be positive, got {spin.force_g!r}")


def _check_timezones(p: FluidPreanalytics) -> None:
    stamps = {
        name: value
        for name in ("collected_at", "first_spin_at", "frozen_at")
        if (value := getattr(p, name)) is not None
    }
    aware = sorted(name for name, value in stamps.items() if value.utcoffset() is not None)
    naive = sorted(name for name in stamps if name not in aware)
    # Subtracting a naive from an aware datetime has no meaning: refuse it plainly
    # instead of letting a TypeError escape from the middle of the derivation.
    if aware and naive:
        raise ValueError(f"{', '.join(naive)} must be timezone-aware like {', '.join(aware)}")


def _describe_spin(spin: Spin) -> str:
    braking = "with braking" if spin.braking else "without braking"
    return f"{spin.temperature_c:g} °C, {spin.force_g:g} g, {spin.minutes:g} min, {braking}"


# ---------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------


def describe(
    code: str | SprecCode,
    tables: SprecTables | None = None,
    *,
    others: Mapping[str, str] | None = None,
    language: str | None = None,
) -> list[tuple[str, str, str]]:
    """Spell out a fluid SPREC for the specimen page.

    Returns one ``(element name, code, meaning)`` per element, element names
    being those of :data:`ELEMENTS`. ``code`` is a SPREC string or a
    :class:`SprecCode`; the raw value recorded for an element coded "other"
    (from ``SprecCode.others`` or the ``others`` argument, e.g. the JSON stored
    with the specimen) is appended to that element's meaning, as it was
    recorded. A code that is not in its table is shown as such rather than
    refused, so an old record stays readable. Meanings are in ``language``
    (a two-letter code) where the file translates them, else in English; the
    code letters are the same in every language. Raises ValueError if the code
    does not have seven elements.
    """
    t = tables if tables is not None else load_tables()
    if isinstance(code, SprecCode):
        parts = tuple(code.elements)
        raw_values = {**code.others, **(others or {})}
    else:
        parts = tuple(str(code).strip().split("-"))
        raw_values = dict(others or {})
    if len(parts) != len(ELEMENTS):
        raise ValueError(
            f"a fluid SPREC has {len(ELEMENTS)} elements separated by '-', got {code!s}"
        )

    described = []
    for name, part in zip(ELEMENTS, parts, strict=True):
        table = t[name]
        row = table.row(part)
        if row is None:
            meaning = t.words(language, "not_a_code").format(
                version=t.version, title=table.title_in(language), label="", value=""
            )
        elif part == table.other and raw_values.get(name):
            meaning = t.words(language, "other_value").format(
                label=row.label_in(language), value=raw_values[name], version="", title=""
            )
        else:
            meaning = row.label_in(language)
        described.append((name, part, meaning))
    return described


def sample_type_name(code: str, language: str | None = None) -> str:
    """A sample type as a person reads it, its code beside the word: "Serum (SER)",
    "Plasma, single spun (PL1)". A code the table does not hold is shown alone."""
    row = _load_default()["sample_type"].row(code)
    return f"{row.label_in(language)} ({code})" if row is not None else code
