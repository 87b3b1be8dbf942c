"""Where a specimen's pre-analytical record breaks the protocol's SOP limits.

Pure: it takes the limits and the recorded values, and returns deviations (a code and
the values that explain it), which are stored with the specimen as JSON and put into
words, in the reader's language, when shown. A deviation is a warning for those who use
the sample, never a refusal: the tube exists and is banked all the same.

A value exactly at a limit is within it. Times are compared to the minute, as the
registration form records them: the seconds of a time given through the API are dropped,
so that "drawn at 8:30, spun at 10:30" is 2 h whatever the seconds say.

Putting deviations into words (``listed``, ``described``) uses Flask-Babel: call it in a
request or an application context; the messages are in that context's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _

from biobank.i18n import label
from biobank.study.protocol import SopLimits, SopRange

DRAW_TO_CENTRIFUGATION = "preanalytical.draw_to_centrifugation"
TEMPERATURE_BEFORE_CENTRIFUGATION = "preanalytical.temperature_before_centrifugation"
CENTRIFUGATION_FORCE = "preanalytical.centrifugation_force"
CENTRIFUGATION_DURATION = "preanalytical.centrifugation_duration"
CENTRIFUGATION_TEMPERATURE = "preanalytical.centrifugation_temperature"
DRAW_TO_FREEZING = "preanalytical.draw_to_freezing"
FREEZE_THAW_EXCEEDED = "freeze_thaw.exceeded"
VISIT_OUT_OF_WINDOW = "visit.out_of_window"
# Every code, in the order deviations are listed: the order of the handling, then the
# aliquot's thaws, then the visit.
CODES = (
    DRAW_TO_CENTRIFUGATION,
    TEMPERATURE_BEFORE_CENTRIFUGATION,
    CENTRIFUGATION_FORCE,
    CENTRIFUGATION_DURATION,
    CENTRIFUGATION_TEMPERATURE,
    DRAW_TO_FREEZING,
    FREEZE_THAW_EXCEEDED,
    VISIT_OUT_OF_WINDOW,
)
# Sample types whose blood clots before it is spun: for them the delay before
# centrifugation is the clotting time.
CLOTTED_SAMPLE_TYPES = ("SER",)


class Deviation(NamedTuple):
    code: str  # e.g. "preanalytical.draw_to_centrifugation"
    message: str  # in the reader's language, e.g. "clotting 5 h 10 min, SOP 30 min–2 h"


class PreanalyticalRecord(Protocol):
    """What was recorded of a primary tube's handling (a Specimen has these columns).
    A value not recorded (None: a tube imported from an inventory spreadsheet gives no
    centrifugation settings) is not checked: unknown is not a deviation."""

    sample_type: str
    collected_at: datetime
    precentrifugation_temperature: str | None
    spun_at: datetime
    spin_force_g: int | None
    spin_minutes: int | None
    spin_temperature_c: float | None
    second_spin_force_g: int | None
    second_spin_minutes: int | None
    second_spin_temperature_c: float | None
    frozen_at: datetime


# --- finding deviations ------------------------------------------------------------------


def found(limits: SopLimits | None, record: PreanalyticalRecord) -> list[dict[str, Any]]:
    """The deviations of a tube's handling from its SOP limits (none without limits), in
    the order of ``CODES``, each a JSON-able dict: its code and the values behind it."""
    if limits is None:
        return []
    spins = _spins(record)
    checked = [
        _delay(
            DRAW_TO_CENTRIFUGATION,
            _minutes_between(record.collected_at, record.spun_at),
            limits.draw_to_centrifugation_minutes,
            clotting=record.sample_type in CLOTTED_SAMPLE_TYPES,
        ),
        _temperature_class(
            record.precentrifugation_temperature, limits.temperature_before_centrifugation
        ),
        *(_spin_force(spin.name, spin.force_g, limits.centrifugation_g) for spin in spins),
        *(_spin_duration(spin.name, spin.minutes, limits.centrifugation_minutes) for spin in spins),
        *(
            _spin_temperature(spin.name, spin.celsius, limits.centrifugation_temperature_c)
            for spin in spins
        ),
        _delay(
            DRAW_TO_FREEZING,
            _minutes_between(record.collected_at, record.frozen_at),
            limits.draw_to_freezing_minutes,
        ),
    ]
    return [deviation for deviation in checked if deviation is not None]


class _Spin(NamedTuple):
    name: str  # "first" or "second": which centrifugation a message names
    # A spin is recorded whole (force, duration, temperature) by the form and the API;
    # a record that lacks a value is not checked on it rather than guessed.
    force_g: int | None
    minutes: int | None
    celsius: float | None


def _spins(record: PreanalyticalRecord) -> list[_Spin]:
    """The centrifugations done: the first, and the second when there was one."""
    spins = [_Spin("first", record.spin_force_g, record.spin_minutes, record.spin_temperature_c)]
    if record.second_spin_force_g is not None:
        spins.append(
            _Spin(
                "second",
                record.second_spin_force_g,
                record.second_spin_minutes,
                record.second_spin_temperature_c,
            )
        )
    return spins


def freeze_thaw(cycles: int, limits: SopLimits | None) -> dict[str, Any] | None:
    """The deviation of an aliquot thawed more often than its tube type's SOP allows
    before an assay, or None."""
    if limits is None or limits.freeze_thaw_cycles_max is None:
        return None
    if cycles <= limits.freeze_thaw_cycles_max:
        return None
    return {"code": FREEZE_THAW_EXCEEDED, "cycles": cycles, "max": limits.freeze_thaw_cycles_max}


def out_of_window(study_day: int, earliest_day: int, latest_day: int) -> dict[str, Any]:
    """The deviation of a visit collected on ``study_day``, outside its protocol window."""
    return {
        "code": VISIT_OUT_OF_WINDOW,
        "study_day": study_day,
        "earliest_day": earliest_day,
        "latest_day": latest_day,
    }


def _minutes_between(start: datetime, end: datetime) -> int:
    # To the minute, as the form records times: seconds would make "2 h" read as over.
    def minute(moment: datetime) -> datetime:
        return moment.replace(second=0, microsecond=0)

    return int((minute(end) - minute(start)).total_seconds() // 60)


def _bounds(allowed: SopRange) -> dict[str, Any]:
    return {"min": allowed.min, "max": allowed.max}


def _delay(
    code: str, minutes: int, allowed: SopRange | None, *, clotting: bool | None = None
) -> dict[str, Any] | None:
    if allowed is None or minutes in allowed:
        return None
    deviation = {"code": code, "minutes": minutes, **_bounds(allowed)}
    if clotting is not None:
        deviation["clotting"] = clotting
    return deviation


def _temperature_class(
    recorded: str | None, allowed: tuple[str, ...] | None
) -> dict[str, Any] | None:
    if allowed is None or recorded is None or recorded in allowed:
        return None
    return {
        "code": TEMPERATURE_BEFORE_CENTRIFUGATION,
        "recorded": recorded,
        "allowed": list(allowed),
    }


def _spin_force(spin: str, force_g: int | None, allowed: SopRange | None) -> dict[str, Any] | None:
    if allowed is None or force_g is None or force_g in allowed:
        return None
    return {"code": CENTRIFUGATION_FORCE, "spin": spin, "g": force_g, **_bounds(allowed)}


def _spin_duration(
    spin: str, minutes: int | None, allowed: SopRange | None
) -> dict[str, Any] | None:
    if allowed is None or minutes is None or minutes in allowed:
        return None
    return {"code": CENTRIFUGATION_DURATION, "spin": spin, "minutes": minutes, **_bounds(allowed)}


def _spin_temperature(
    spin: str, celsius: float | None, allowed: tuple[SopRange, ...] | None
) -> dict[str, Any] | None:
    if allowed is None or celsius is None or any(celsius in span for span in allowed):
        return None
    return {
        "code": CENTRIFUGATION_TEMPERATURE,
        "spin": spin,
        "celsius": celsius,
        "ranges": [_bounds(span) for span in allowed],
    }


# --- reading stored deviations -----------------------------------------------------------


def parsed(text: str | None) -> list[dict[str, Any]]:
    """The deviations stored on a specimen (``Specimen.deviations``), as dicts."""
    if not text or text == "[]":  # the common case, without a parse
        return []
    return list(json.loads(text))


def codes(deviations: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct codes of these deviations, in the order of ``CODES`` (unknown codes
    last, sorted): a stable list for an export."""
    present = {deviation["code"] for deviation in deviations}
    known = [code for code in CODES if code in present]
    return known + sorted(present - set(CODES))


def listed(stored: str) -> list[Deviation]:
    """The deviations stored on a specimen (``Specimen.deviations``), put into words."""
    return [described(deviation) for deviation in parsed(stored)]


def described(deviation: dict[str, Any]) -> Deviation:
    """One deviation put into words, in the reader's language. A code this version does
    not know is shown as the code itself."""
    words = _WORDS.get(deviation["code"])
    return Deviation(deviation["code"], words(deviation) if words else deviation["code"])


def visit_outside_window(study_day: int, earliest_day: int, latest_day: int) -> Deviation:
    """The deviation of a visit collected outside its protocol window."""
    return described(out_of_window(study_day, earliest_day, latest_day))


# --- words -------------------------------------------------------------------------------


def _number(value: float) -> str:
    return format_decimal(value)


def _duration(minutes: float) -> str:
    """45 min, 2 h, 5 h 10 min: the same symbols in English and French."""
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _span(
    low: float | None, high: float | None, shown: Callable[[float], str], *, within: bool = False
) -> str:
    """A range of allowed values: "10–15 min", "within 2 h" (``within``: a delay from the
    draw), "at most 2,500 g", "at least 30 min". ``shown`` writes one value with its unit."""
    if low is not None and high is not None:
        return f"{shown(low)}–{shown(high)}"
    if high is not None:
        if within:
            return _("within %(limit)s", limit=shown(high))
        return _("at most %(limit)s", limit=shown(high))
    return _("at least %(limit)s", limit=shown(low))


def _unit(unit: str) -> Callable[[float], str]:
    return lambda value: f"{_number(value)} {unit}"


def _span_with_unit(low: float | None, high: float | None, unit: str) -> str:
    # "1,000–2,500 g" rather than "1,000 g–2,500 g": the unit once, after the range.
    if low is not None and high is not None:
        return f"{_number(low)}–{_number(high)} {unit}"
    return _span(low, high, _unit(unit))


def _either(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return _("%(some)s or %(last)s", some=", ".join(items[:-1]), last=items[-1])


def _delay_words(deviation: dict[str, Any]) -> str:
    limits = _span(deviation["min"], deviation["max"], _duration, within=True)
    duration = _duration(deviation["minutes"])
    if deviation["code"] == DRAW_TO_FREEZING:
        return _(
            "frozen %(duration)s after the draw, SOP %(limits)s", duration=duration, limits=limits
        )
    if deviation.get("clotting"):
        return _("clotting %(duration)s, SOP %(limits)s", duration=duration, limits=limits)
    return _(
        "centrifuged %(duration)s after the draw, SOP %(limits)s", duration=duration, limits=limits
    )


def _temperature_class_words(deviation: dict[str, Any]) -> str:
    return _(
        "kept at %(recorded)s before centrifugation, SOP %(allowed)s",
        recorded=str(label(deviation["recorded"], "temperature")),
        allowed=_either([str(label(name, "temperature")) for name in deviation["allowed"]]),
    )


def _force_words(deviation: dict[str, Any]) -> str:
    force = f"{_number(deviation['g'])} g"
    limits = _span_with_unit(deviation["min"], deviation["max"], "g")
    if deviation.get("spin") == "second":
        return _("second centrifugation at %(force)s, SOP %(limits)s", force=force, limits=limits)
    return _("centrifuged at %(force)s, SOP %(limits)s", force=force, limits=limits)


def _duration_words(deviation: dict[str, Any]) -> str:
    duration = f"{_number(deviation['minutes'])} min"
    limits = _span_with_unit(deviation["min"], deviation["max"], "min")
    if deviation.get("spin") == "second":
        return _(
            "second centrifugation for %(duration)s, SOP %(limits)s",
            duration=duration,
            limits=limits,
        )
    return _("centrifuged for %(duration)s, SOP %(limits)s", duration=duration, limits=limits)


def _spin_temperature_words(deviation: dict[str, Any]) -> str:
    temperature = f"{_number(deviation['celsius'])} °C"
    limits = _either(
        [_span_with_unit(span["min"], span["max"], "°C") for span in deviation["ranges"]]
    )
    if deviation.get("spin") == "second":
        return _(
            "second centrifugation at %(temperature)s, SOP %(limits)s",
            temperature=temperature,
            limits=limits,
        )
    return _(
        "centrifuged at %(temperature)s, SOP %(limits)s", temperature=temperature, limits=limits
    )


def _freeze_thaw_words(deviation: dict[str, Any]) -> str:
    return ngettext(
        "%(num)d freeze–thaw cycle, SOP at most %(max)d",
        "%(num)d freeze–thaw cycles, SOP at most %(max)d",
        deviation["cycles"],
        max=deviation["max"],
    )


def _out_of_window_words(deviation: dict[str, Any]) -> str:
    return _(
        "collected on study day %(day)d, window study days %(first)d to %(last)d",
        day=deviation["study_day"],
        first=deviation["earliest_day"],
        last=deviation["latest_day"],
    )


_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    DRAW_TO_CENTRIFUGATION: _delay_words,
    TEMPERATURE_BEFORE_CENTRIFUGATION: _temperature_class_words,
    CENTRIFUGATION_FORCE: _force_words,
    CENTRIFUGATION_DURATION: _duration_words,
    CENTRIFUGATION_TEMPERATURE: _spin_temperature_words,
    DRAW_TO_FREEZING: _delay_words,
    FREEZE_THAW_EXCEEDED: _freeze_thaw_words,
    VISIT_OUT_OF_WINDOW: _out_of_window_words,
}
