"""Reading one cell of an inventory spreadsheet: a text, a date, a moment, a volume.

Cells come from a workbook (numbers, dates and times as Excel stored them) or from a CSV
(text). Dates are read as Excel dates, ISO text (2026-01-05) or day first as French
centres write them (05/01/2026). A moment without a time zone is returned without one:
the caller puts it in the centre's zone, which only the participant's centre tells.

Each reader returns the value or raises :class:`CellError` with a message for the user;
none guesses (a date without its time where a time is needed, "1,500" for a volume, a
number where a date is expected are refused, not reinterpreted).

Pure: nothing here reads the database or a request.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from flask_babel import lazy_gettext as _l

__all__ = ["CellError", "day", "moment", "text", "volume_ul"]


class CellError(ValueError):
    """A cell that cannot be read; ``message`` is for the user (lazy text)."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
# A moment written as text: a date (ISO or day first), a time, an optional zone.
_MOMENT = re.compile(
    r"(?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})"
    r"(?:[T\s]+(?P<hour>\d{1,2})[:hH](?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,]\d+)?)?)?"
    r"\s*(?P<zone>Z|UTC|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")
# A volume may be a fraction of a microlitre off after a conversion from mL (0.1 + 0.2).
_WHOLE_TOLERANCE = 1e-6
_DAY_EXAMPLE = "2026-01-05, 05/01/2026"
_MOMENT_EXAMPLE = "2026-01-05 08:30, 05/01/2026 08:30"


def text(value: Any) -> str | None:
    """The cell as text, surrounding spaces dropped; None when empty. A whole number
    typed where a code is expected (a box numbered 12) reads as "12", not "12.0"."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    written = str(value).strip()
    return written or None


def day(value: Any) -> date:
    """A date: an Excel date, ISO text or day-first text."""
    if isinstance(value, datetime):
        if value.time() != time(0, 0):
            raise CellError(
                _l("A date is expected here, without a time (%(examples)s).", examples=_DAY_EXAMPLE)
            )
        return value.date()
    if isinstance(value, date):
        return value
    written = text(value) or ""
    match = _ISO_DAY.fullmatch(written)
    if match:
        return _date(int(match[1]), int(match[2]), int(match[3]), written)
    match = _DAY_FIRST.fullmatch(written)
    if match:
        return _date(int(match[3]), int(match[2]), int(match[1]), written)
    raise CellError(
        _l(
            "“%(value)s” is not a date (write %(examples)s).",
            value=_shown(value),
            examples=_DAY_EXAMPLE,
        )
    )


def moment(value: Any) -> datetime:
    """A date and a time: an Excel date-time (without a zone) or text, with a zone
    (2026-01-05T08:30+01:00, …Z) or without one. The zone is kept when written."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise _time_missing()
    # A bare number (an Excel serial in a cell not formatted as a date) is not guessed at.
    match = None if isinstance(value, int | float) else _MOMENT.fullmatch(text(value) or "")
    if match is None:
        raise CellError(
            _l(
                "“%(value)s” is not a date and time (write %(examples)s).",
                value=_shown(value),
                examples=_MOMENT_EXAMPLE,
            )
        )
    written = text(value) or ""
    if match["hour"] is None:
        raise _time_missing()
    on = _day_of(match["date"], written)
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise CellError(_l("“%(value)s” is not a time of day.", value=_shown(value)))
    at = datetime.combine(on, time(hour, minute, second))
    zone = match["zone"]
    return at if zone is None else at.replace(tzinfo=_zone(zone, written))


def volume_ul(value: Any, microlitres_per_unit: int) -> int:
    """A volume in whole microlitres, from a number of µL or of mL
    (``microlitres_per_unit`` 1 or 1000). "0,5" is 0.5; "1,500" is refused as ambiguous
    (a thousands separator or a decimal comma)."""
    if isinstance(value, bool):
        raise CellError(_l("“%(value)s” is not a volume.", value=_shown(value)))
    if isinstance(value, int | float):
        amount = float(value)
    else:
        written = (text(value) or "").replace(" ", "").replace("\u00a0", "")
        if not _DECIMAL.fullmatch(written) or re.fullmatch(r"[+-]?\d{1,3},\d{3}", written):
            raise CellError(_l("“%(value)s” is not a volume.", value=_shown(value)))
        amount = float(written.replace(",", "."))
    if not math.isfinite(amount):
        raise CellError(_l("“%(value)s” is not a volume.", value=_shown(value)))
    microlitres = amount * microlitres_per_unit
    whole = round(microlitres)
    if abs(microlitres - whole) > _WHOLE_TOLERANCE:
        raise CellError(
            _l(
                "%(value)s is not a whole number of microlitres: volumes are kept in whole µL.",
                value=_shown(value),
            )
        )
    return int(whole)


def _time_missing() -> CellError:
    return CellError(
        _l(
            "The time is missing: write a date and a time (%(examples)s).",
            examples=_MOMENT_EXAMPLE,
        )
    )


def _day_of(written_date: str, written: str) -> date:
    match = _ISO_DAY.fullmatch(written_date)
    if match:
        return _date(int(match[1]), int(match[2]), int(match[3]), written)
    match = _DAY_FIRST.fullmatch(written_date)
    return _date(int(match[3]), int(match[2]), int(match[1]), written)


def _date(year: int, month: int, day_: int, written: str) -> date:
    try:
        return date(year, month, day_)
    except ValueError:
        raise CellError(_l("“%(value)s” is not a day of the calendar.", value=written)) from None


def _zone(written_zone: str, written: str) -> timezone:
    if written_zone.upper() in ("Z", "UTC"):
        return UTC
    sign = -1 if written_zone[0] == "-" else 1
    digits = written_zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59:
        raise CellError(_l("“%(value)s” has no valid time zone offset.", value=written))
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _shown(value: Any) -> str:
    """A cell as a message quotes it: a pasted paragraph is cut."""
    shown = str(value).strip()
    return shown if len(shown) <= 40 else shown[:39] + "…"
