"""The trial's sampling protocol, read from a TOML file into frozen dataclasses.

The protocol (arms, visits, visit windows, which tubes are drawn and how they are
aliquoted) is configuration, not code: a protocol amendment is a new file, and
the SHA-256 of the file's bytes (``ProtocolSpec.content_hash``) identifies the
version that samples were registered against. The layout of the file is
documented at the top of the shipped ``protocols/poems-lendex.toml``. The optional
``[sop.<TUBE_TYPE>]`` tables set the SOP limits of each tube type's handling
(``ProtocolSpec.sop``), against which biobank/samples/deviations.py checks a tube.

Parsing is a pure function. Every problem raises ``ProtocolError`` whose message
starts with the path of the offending key, e.g.
``visits[2].samples[0].volume_ul: must be a positive whole number of microlitres``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "ArmSpec",
    "ProtocolError",
    "ProtocolSpec",
    "SamplePlanSpec",
    "SopLimits",
    "SopRange",
    "TubeTypeSpec",
    "VisitSpec",
    "default_protocol_path",
    "load_protocol_file",
    "parse_protocol",
]

MAX_ALIQUOTS = 50
MAX_VOLUME_UL = 10_000
# A century of follow-up: far beyond any trial, but small enough that date
# arithmetic on nominal_day + window can never overflow datetime.date.
MAX_DAYS = 36_500

_CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}")
_CODE_RULE = (
    "must be a short uppercase code (A-Z, 0-9, '-', '_'; "
    "at most 16 characters, starting with a letter or digit)"
)
# SOP limits (the optional [sop.<TUBE_TYPE>] tables). The bounds are those the
# registration accepts for a recorded value (biobank/samples/services.py), so that a
# limit can always be met; a delay of a week is already far beyond any blood sample.
MAX_SOP_DELAY_MINUTES = 7 * 24 * 60
MAX_CENTRIFUGATION_G = 100_000
MAX_CENTRIFUGATION_MINUTES = 240
MIN_CENTRIFUGATION_C, MAX_CENTRIFUGATION_C = -20, 45
MAX_FREEZE_THAW_CYCLES = 50
# The classes of temperature a tube is kept at before centrifugation, as the
# registration form offers them (biobank/samples/models.py TEMPERATURE_CLASSES).
TEMPERATURE_CLASSES = ("RT", "2-10")

# SPREC codes (type of sample, type of primary container) are three characters.
_SPREC_RE = re.compile(r"[A-Z0-9]{3}")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")

T = TypeVar("T")


class ProtocolError(ValueError):
    """The protocol file is unusable; the message names the offending key by its path.

    ``key`` is that path (``""`` for problems with the file as a whole, such as
    TOML syntax) and ``problem`` the rest of the message.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[str, str]]:
        # args holds only the joined message; rebuild from the parts instead.
        return (type(self), (self.key, self.problem))


@dataclass(frozen=True)
class TubeTypeSpec:
    """A kind of primary tube drawn from the patient."""

    code: str
    label: str
    container: str  # SPREC type of primary container
    sample_type: str  # SPREC type of sample of the aliquots made from it


@dataclass(frozen=True)
class ArmSpec:
    """A treatment arm (group) of the trial."""

    code: str
    name: str
    description: str


@dataclass(frozen=True)
class SamplePlanSpec:
    """One primary tube drawn at a visit and how it is aliquoted."""

    tube_type: str
    aliquots: int
    volume_ul: int


@dataclass(frozen=True)
class VisitSpec:
    """A sampling visit; it may take place from ``earliest_day`` to ``latest_day``."""

    code: str
    name: str
    arms: tuple[str, ...]
    nominal_day: int
    window_before_days: int
    window_after_days: int
    samples: tuple[SamplePlanSpec, ...]
    order: int  # position in the file, from 0: the schedule order

    @property
    def earliest_day(self) -> int:
        """First day (relative to day 0) on which the visit is within its window."""
        return self.nominal_day - self.window_before_days

    @property
    def latest_day(self) -> int:
        """Last day (relative to day 0) on which the visit is within its window."""
        return self.nominal_day + self.window_after_days


@dataclass(frozen=True)
class SopRange:
    """Allowed values from ``min`` to ``max``, both included; None: no bound on that side."""

    min: int | float | None = None
    max: int | float | None = None

    def __contains__(self, value: int | float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class SopLimits:
    """The SOP limits of one tube type's pre-analytical handling; None: no limit.

    Delays are counted in minutes from the blood draw; temperature classes are those of
    ``TEMPERATURE_CLASSES``; a centrifuge temperature must fall in one of the ranges of
    ``centrifugation_temperature_c`` (plasma may be spun cold, serum may not).
    """

    tube_type: str
    draw_to_centrifugation_minutes: SopRange | None = None
    temperature_before_centrifugation: tuple[str, ...] | None = None
    centrifugation_g: SopRange | None = None
    centrifugation_minutes: SopRange | None = None
    centrifugation_temperature_c: tuple[SopRange, ...] | None = None
    draw_to_freezing_minutes: SopRange | None = None
    freeze_thaw_cycles_max: int | None = None


@dataclass(frozen=True)
class ProtocolSpec:
    """A whole sampling protocol, as parsed from one file."""

    study_code: str
    title: str
    sponsor: str
    version: str
    tube_types: tuple[TubeTypeSpec, ...]
    arms: tuple[ArmSpec, ...]
    visits: tuple[VisitSpec, ...]
    content_hash: str  # SHA-256 hex of the file's bytes
    # Tube type code -> its SOP limits; a tube type without a [sop] table has none.
    # Read-only, and left out of the hash (a mapping has none; equal specs still hash
    # alike, as their other fields are equal).
    sop: Mapping[str, SopLimits] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def tube_type(self, code: str) -> TubeTypeSpec:
        """Return the tube type with this code; ``KeyError`` if there is none."""
        for tube_type in self.tube_types:
            if tube_type.code == code:
                return tube_type
        raise KeyError(code)

    def arm(self, code: str) -> ArmSpec:
        """Return the arm with this code; ``KeyError`` if there is none."""
        for arm in self.arms:
            if arm.code == code:
                return arm
        raise KeyError(code)

    def visit(self, code: str) -> VisitSpec:
        """Return the visit with this code; ``KeyError`` if there is none."""
        for visit in self.visits:
            if visit.code == code:
                return visit
        raise KeyError(code)

    def visits_for_arm(self, arm_code: str) -> tuple[VisitSpec, ...]:
        """Return the visits of one arm, in schedule order."""
        return tuple(visit for visit in self.visits if arm_code in visit.arms)


def default_protocol_path() -> Path:
    """Return the path of the protocol file shipped with the application."""
    return Path(__file__).resolve().parent / "protocols" / "poems-lendex.toml"


def load_protocol_file(path: str | os.PathLike[str]) -> ProtocolSpec:
    """Read and parse a protocol file; see ``parse_protocol``.

    ``OSError`` (missing or unreadable file) is not wrapped: it is a deployment
    problem, not a problem with the protocol's content.
    """
    return parse_protocol(Path(path).read_bytes())


def parse_protocol(data: bytes | str) -> ProtocolSpec:
    """Parse and validate a protocol from the TOML text (bytes as read from disk, or str).

    Raises ``ProtocolError`` for any problem, syntax or content, and never any
    other exception for bad input. ``content_hash`` is the SHA-256 of ``data``
    (of its UTF-8 encoding when given a str).
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ProtocolError("", f"text is not valid Unicode ({err.reason})") from None
    else:
        raw = bytes(data)
    try:
        # utf-8-sig: a byte-order mark added by a Windows editor is harmless.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProtocolError("", f"file is not valid UTF-8 (byte {err.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProtocolError("", f"TOML syntax error: {err}") from None
    except (ValueError, RecursionError) as err:
        # tomllib lets through Python's own limits: integers past the
        # int-to-str digit limit, and arrays nested past the recursion limit.
        raise ProtocolError("", f"TOML value not supported: {err}") from None
    return _build(document, hashlib.sha256(raw).hexdigest())


# -- validation helpers --------------------------------------------------------


def _join(path: str, key: str) -> str:
    shown = key if _BARE_KEY_RE.fullmatch(key) else _quote(key)
    return f"{path}.{shown}" if path else shown


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    # Keep error messages on one printable line whatever the file contains.
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def _table(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(path, "must be a table")
    return value


def _fields(
    table: Mapping[str, Any], path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    for key in table:
        if key not in required and key not in optional:
            raise ProtocolError(_join(path, key), "unknown key")
    for key in required:
        if key not in table:
            raise ProtocolError(_join(path, key), "missing")


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(path, "must be a string (in quotes)")
    if not value.strip():
        raise ProtocolError(path, "must not be empty")
    return value


def _code(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _CODE_RE.fullmatch(value):
        raise ProtocolError(path, _CODE_RULE)
    return value


def _whole(value: Any, path: str, low: int, high: int, rule: str) -> int:
    # bool is a subclass of int: without this check TOML `true` would read as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(path, rule)
    return value


def _array(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(path, f"must be an array of {what}")
    if not value:
        raise ProtocolError(path, f"must list at least one {what.rstrip('s')}")
    return value


def _unique(items: list[T], code_of: Callable[[T], str], path: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        code = code_of(item)
        if code in seen:
            raise ProtocolError(
                f"{path}[{index}].code",
                f'duplicate {what} code "{code}" (also {path}[{seen[code]}])',
            )
        seen[code] = index


# -- sections ------------------------------------------------------------------


def _build(document: Mapping[str, Any], content_hash: str) -> ProtocolSpec:
    _fields(document, "", ("study", "tube_types", "arms", "visits"), ("sop",))

    study = _table(document["study"], "study")
    _fields(study, "study", ("code", "title", "sponsor", "version"))
    study_code = _code(study["code"], "study.code")
    title = _text(study["title"], "study.title")
    sponsor = _text(study["sponsor"], "study.sponsor")
    if not isinstance(study["version"], str):
        raise ProtocolError("study.version", 'must be a string (in quotes, e.g. "1.0")')
    version = _text(study["version"], "study.version")

    tube_types = _tube_types(document["tube_types"])
    arms = _arms(document["arms"])
    visits = _visits(
        document["visits"],
        arm_codes=[arm.code for arm in arms],
        tube_codes=[tube.code for tube in tube_types],
    )
    return ProtocolSpec(
        study_code=study_code,
        title=title,
        sponsor=sponsor,
        version=version,
        tube_types=tube_types,
        arms=arms,
        visits=visits,
        content_hash=content_hash,
        sop=_sop(document.get("sop", {}), [tube.code for tube in tube_types]),
    )


def _tube_types(value: Any) -> tuple[TubeTypeSpec, ...]:
    tables = _table(value, "tube_types")
    if not tables:
        raise ProtocolError("tube_types", "must declare at least one tube type")
    result = []
    for code, entry in tables.items():
        path = _join("tube_types", code)
        _code(code, path)
        table = _table(entry, path)
        _fields(table, path, ("label", "container", "sample_type"))
        container = table["container"]
        if not isinstance(container, str) or not _SPREC_RE.fullmatch(container):
            raise ProtocolError(
                f"{path}.container", "must be a three-character SPREC container code, e.g. SST"
            )
        sample_type = table["sample_type"]
        if not isinstance(sample_type, str) or not _SPREC_RE.fullmatch(sample_type):
            raise ProtocolError(
                f"{path}.sample_type", "must be a three-character SPREC sample type code, e.g. SER"
            )
        result.append(
            TubeTypeSpec(
                code=code,
                label=_text(table["label"], f"{path}.label"),
                container=container,
                sample_type=sample_type,
            )
        )
    return tuple(result)


def _arms(value: Any) -> tuple[ArmSpec, ...]:
    entries = _array(value, "arms", "arms")
    result = []
    for index, entry in enumerate(entries):
        path = f"arms[{index}]"
        table = _table(entry, path)
        _fields(table, path, ("code", "name"), ("description",))
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ProtocolError(f"{path}.description", "must be a string (in quotes)")
        result.append(
            ArmSpec(
                code=_code(table["code"], f"{path}.code"),
                name=_text(table["name"], f"{path}.name"),
                description=description,
            )
        )
    _unique(result, lambda arm: arm.code, "arms", "arm")
    return tuple(result)


_VISIT_KEYS = (
    "code",
    "name",
    "arms",
    "nominal_day",
    "window_before_days",
    "window_after_days",
    "samples",
)


def _visits(value: Any, arm_codes: list[str], tube_codes: list[str]) -> tuple[VisitSpec, ...]:
    entries = _array(value, "visits", "visits")
    result: list[VisitSpec] = []
    for index, entry in enumerate(entries):
        path = f"visits[{index}]"
        table = _table(entry, path)
        _fields(table, path, _VISIT_KEYS)
        code = _code(table["code"], f"{path}.code")
        name = _text(table["name"], f"{path}.name")
        arms = _visit_arms(table["arms"], f"{path}.arms", arm_codes)
        nominal_day = _whole(
            table["nominal_day"],
            f"{path}.nominal_day",
            0,
            MAX_DAYS,
            f"must be a whole number of days from 0 to {MAX_DAYS}",
        )
        if result and nominal_day < result[-1].nominal_day:
            previous = result[-1]
            raise ProtocolError(
                f"{path}.nominal_day",
                f'day {nominal_day} comes before the previous visit "{previous.code}" '
                f"(day {previous.nominal_day}); list visits in schedule order",
            )
        windows = {}
        for key in ("window_before_days", "window_after_days"):
            windows[key] = _whole(
                table[key],
                f"{path}.{key}",
                0,
                MAX_DAYS,
                f"must be a whole number of days from 0 to {MAX_DAYS}",
            )
        samples = _samples(table["samples"], f"{path}.samples", tube_codes)
        result.append(
            VisitSpec(
                code=code,
                name=name,
                arms=arms,
                nominal_day=nominal_day,
                window_before_days=windows["window_before_days"],
                window_after_days=windows["window_after_days"],
                samples=samples,
                order=index,
            )
        )
    _unique(result, lambda visit: visit.code, "visits", "visit")
    return tuple(result)


def _visit_arms(value: Any, path: str, arm_codes: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ProtocolError(path, 'must be an array of arm codes, e.g. ["G1", "G2"]')
    if not value:
        raise ProtocolError(path, "must list at least one arm")
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ProtocolError(path, 'must be an array of arm codes, e.g. ["G1", "G2"]')
        if item not in arm_codes:
            declared = ", ".join(arm_codes)
            raise ProtocolError(path, f"unknown arm {_quote(item)} (declared arms: {declared})")
        if item in seen:
            raise ProtocolError(path, f'arm "{item}" is listed twice')
        seen.append(item)
    return tuple(seen)


def _samples(value: Any, path: str, tube_codes: list[str]) -> tuple[SamplePlanSpec, ...]:
    if not isinstance(value, list):
        raise ProtocolError(path, "must be an array of tubes, e.g. [{ tube_type = ... }]")
    if not value:
        raise ProtocolError(path, "must list at least one tube")
    result: list[SamplePlanSpec] = []
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        table = _table(entry, entry_path)
        _fields(table, entry_path, ("tube_type", "aliquots", "volume_ul"))
        tube_type = table["tube_type"]
        declared = ", ".join(tube_codes)
        if not isinstance(tube_type, str):
            raise ProtocolError(
                f"{entry_path}.tube_type",
                f"must be a tube type code in quotes (declared tube types: {declared})",
            )
        if tube_type not in tube_codes:
            raise ProtocolError(
                f"{entry_path}.tube_type",
                f"unknown tube type {_quote(tube_type)} (declared tube types: {declared})",
            )
        if any(plan.tube_type == tube_type for plan in result):
            raise ProtocolError(
                f"{entry_path}.tube_type",
                f'tube type "{tube_type}" is already listed for this visit',
            )
        aliquots = _whole(
            table["aliquots"],
            f"{entry_path}.aliquots",
            1,
            MAX_ALIQUOTS,
            f"must be a whole number of aliquots from 1 to {MAX_ALIQUOTS}",
        )
        volume_ul = _whole(
            table["volume_ul"],
            f"{entry_path}.volume_ul",
            1,
            MAX_VOLUME_UL,
            f"must be a positive whole number of microlitres (at most {MAX_VOLUME_UL})",
        )
        result.append(SamplePlanSpec(tube_type=tube_type, aliquots=aliquots, volume_ul=volume_ul))
    return tuple(result)


# -- SOP limits ----------------------------------------------------------------


def _sop(value: Any, tube_codes: list[str]) -> Mapping[str, SopLimits]:
    tables = _table(value, "sop")
    limits = {}
    for code, entry in tables.items():
        path = _join("sop", code)
        if code not in tube_codes:
            declared = ", ".join(tube_codes)
            raise ProtocolError(
                path, f"unknown tube type {_quote(code)} (declared tube types: {declared})"
            )
        limits[code] = _sop_limits(code, _table(entry, path), path)
    return MappingProxyType(limits)


def _sop_limits(code: str, table: Mapping[str, Any], path: str) -> SopLimits:
    _fields(table, path, (), _SOP_KEYS)

    def read(key: str, reader: Callable[[Any, str], T]) -> T | None:
        return reader(table[key], f"{path}.{key}") if key in table else None

    return SopLimits(
        tube_type=code,
        draw_to_centrifugation_minutes=read("draw_to_centrifugation_minutes", _delay_range),
        temperature_before_centrifugation=read(
            "temperature_before_centrifugation", _temperature_classes
        ),
        centrifugation_g=read("centrifugation_g", _force_range),
        centrifugation_minutes=read("centrifugation_minutes", _spin_minutes_range),
        centrifugation_temperature_c=read("centrifugation_temperature_c", _temperature_ranges),
        draw_to_freezing_minutes=read("draw_to_freezing_minutes", _delay_range),
        freeze_thaw_cycles_max=read(
            "freeze_thaw_cycles_max",
            lambda value, key: _whole(
                value,
                key,
                0,
                MAX_FREEZE_THAW_CYCLES,
                f"must be a whole number of cycles from 0 to {MAX_FREEZE_THAW_CYCLES}",
            ),
        ),
    )


_SOP_KEYS = (
    "draw_to_centrifugation_minutes",
    "temperature_before_centrifugation",
    "centrifugation_g",
    "centrifugation_minutes",
    "centrifugation_temperature_c",
    "draw_to_freezing_minutes",
    "freeze_thaw_cycles_max",
)
_RANGE_SHAPE = "must be a table of bounds, e.g. { min = 10, max = 15 }"


def _range(value: Any, path: str, bound: Callable[[Any, str], int | float]) -> SopRange:
    if not isinstance(value, dict):
        raise ProtocolError(path, _RANGE_SHAPE)
    table: Mapping[str, Any] = value
    _fields(table, path, (), ("min", "max"))
    if not table:
        raise ProtocolError(path, "must give min, max or both")
    low = bound(table["min"], f"{path}.min") if "min" in table else None
    high = bound(table["max"], f"{path}.max") if "max" in table else None
    if low is not None and high is not None and low > high:
        raise ProtocolError(f"{path}.min", f"must not be above max ({low} > {high})")
    return SopRange(low, high)


def _whole_range(value: Any, path: str, low: int, high: int, unit: str) -> SopRange:
    rule = f"must be a whole number of {unit} from {low} to {high}"
    return _range(value, path, lambda bound, key: _whole(bound, key, low, high, rule))


def _delay_range(value: Any, path: str) -> SopRange:
    return _whole_range(value, path, 0, MAX_SOP_DELAY_MINUTES, "minutes")


def _force_range(value: Any, path: str) -> SopRange:
    return _whole_range(value, path, 1, MAX_CENTRIFUGATION_G, "g")


def _spin_minutes_range(value: Any, path: str) -> SopRange:
    return _whole_range(value, path, 1, MAX_CENTRIFUGATION_MINUTES, "minutes")


def _celsius(value: Any, path: str) -> int | float:
    # bool is a subclass of int; nan and inf are TOML floats but no temperature.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or not MIN_CENTRIFUGATION_C <= value <= MAX_CENTRIFUGATION_C
    ):
        raise ProtocolError(
            path,
            f"must be a temperature in °C from {MIN_CENTRIFUGATION_C} to {MAX_CENTRIFUGATION_C}",
        )
    return value


def _temperature_ranges(value: Any, path: str) -> tuple[SopRange, ...]:
    if not isinstance(value, list):
        raise ProtocolError(
            path, "must be an array of ranges, e.g. [{ min = 15, max = 25 }, { min = 2, max = 8 }]"
        )
    if not value:
        raise ProtocolError(path, "must list at least one range")
    return tuple(_range(entry, f"{path}[{index}]", _celsius) for index, entry in enumerate(value))


def _temperature_classes(value: Any, path: str) -> tuple[str, ...]:
    allowed = ", ".join(f'"{name}"' for name in TEMPERATURE_CLASSES)
    shape = f'must be an array of temperature classes among {allowed}, e.g. ["RT"]'
    if not isinstance(value, list) or not value:
        raise ProtocolError(path, shape)
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ProtocolError(path, shape)
        if item not in TEMPERATURE_CLASSES:
            raise ProtocolError(
                path, f"unknown temperature class {_quote(item)} (classes: {allowed})"
            )
        if item in seen:
            raise ProtocolError(path, f'temperature class "{item}" is listed twice')
        seen.append(item)
    return tuple(seen)
