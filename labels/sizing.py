"""How many printer dots one barcode module gets, and refusing codes that won't scan.

Rule: a module is a whole number of dots (so no bar is rounded away or widened
unevenly), at least ``min_module_mm`` rounded up to whole dots, and as large as
the symbol box allows (bigger modules scan more easily) up to an optional
``max_module_mm`` and ZPL's ^BY limit of 10 dots. If even the minimum does not fit,
printing would give an unreadable label, so LabelError is raised instead.
"""

import math

from labels.code128 import encode_code128
from labels.datamatrix import encode_datamatrix
from labels.errors import LabelError
from labels.symbols import QUIET_ZONE_MODULES
from labels.units import MM_PER_INCH, dots_to_mm

MAX_MODULE_DOTS = 10  # ^BY accepts 1..10 dots


def min_module_dots(min_module_mm: float, dpi: int) -> int:
    """The minimum X-dimension in whole dots: rounded up, tolerating 1 % of a dot.

    The tolerance lets 0.125 mm count as one dot at 203 dpi (0.1251 mm/dot).
    """
    return max(1, math.ceil(min_module_mm * dpi / MM_PER_INCH - 0.01))


def max_module_dots(max_module_mm: float | None, dpi: int, minimum: int) -> int:
    """The largest module to use: the template's cap (if any) and ZPL's, not below minimum."""
    cap = MAX_MODULE_DOTS
    if max_module_mm is not None:
        cap = min(cap, math.floor(max_module_mm * dpi / MM_PER_INCH + 1e-6))
    return max(cap, minimum)


def symbol_span_modules(symbology: str, code: str) -> int:
    """Modules the symbol needs across its narrow side, quiet zones included."""
    quiet = 2 * QUIET_ZONE_MODULES[symbology]
    if symbology == "code128":
        return encode_code128(code).width_modules + quiet
    return encode_datamatrix(code).planned_size + quiet


def choose_module(
    *,
    template_name: str,
    symbology: str,
    code: str,
    available_dots: int,
    dpi: int,
    min_module_mm: float,
    max_module_mm: float | None,
) -> int:
    """Dots per module for ``code`` in a box ``available_dots`` wide (LabelError if none)."""
    minimum = min_module_dots(min_module_mm, dpi)
    span = symbol_span_modules(symbology, code)
    fitting = available_dots // span
    if fitting >= minimum:
        return min(fitting, max_module_dots(max_module_mm, dpi, minimum))
    raise LabelError(
        _too_long_message(template_name, symbology, code, available_dots, dpi, minimum, span)
    )


def _too_long_message(
    template_name: str,
    symbology: str,
    code: str,
    available_dots: int,
    dpi: int,
    minimum: int,
    span: int,
) -> str:
    holds = available_dots // minimum
    fits = _longest_fitting_prefix(symbology, code, holds)
    name = "Code 128" if symbology == "code128" else "DataMatrix"
    return (
        f"template {template_name!r} at {dpi} dpi cannot print code {code!r} "
        f"({len(code)} characters) at a scannable size: the {name} needs {span} modules "
        f"across including quiet zones, but the {dots_to_mm(available_dots, dpi):.1f} mm "
        f"symbol box holds only {holds} modules of the minimum {minimum} dot(s) "
        f"({dots_to_mm(minimum, dpi):.3f} mm); at most {fits} characters like these fit"
    )


def _longest_fitting_prefix(symbology: str, code: str, holds: int) -> int:
    """Length of the longest start of ``code`` whose symbol spans at most ``holds`` modules."""
    for length in range(len(code) - 1, 0, -1):
        if symbol_span_modules(symbology, code[:length]) <= holds:
            return length
    return 0
