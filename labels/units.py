"""Millimetres, points and printer dots.

Physical sizes live in millimetres (labels) and points (type); printers address
whole dots. Conversions that bound an area round *inwards* so nothing drawn in
dots ever lies outside the physical box it came from.
"""

import math

MM_PER_INCH = 25.4
POINTS_PER_INCH = 72.0
SUPPORTED_DPI = (203, 300, 600)

# Absorbs float noise such as 38 * 203 / 25.4 = 303.7007... vs an exact integer.
_EPSILON = 1e-6


def mm_to_dots_floor(mm: float, dpi: int) -> int:
    """Whole dots that fit inside ``mm`` millimetres (used for far edges and sizes)."""
    return math.floor(mm * dpi / MM_PER_INCH + _EPSILON)


def mm_to_dots_ceil(mm: float, dpi: int) -> int:
    """First whole dot at or after ``mm`` millimetres (used for near edges)."""
    return math.ceil(mm * dpi / MM_PER_INCH - _EPSILON)


def dots_to_mm(dots: float, dpi: int) -> float:
    """Physical length of ``dots`` printer dots in millimetres."""
    return dots * MM_PER_INCH / dpi


def pt_to_dots(pt: float, dpi: int) -> int:
    """Font size in points to a pixel em size at ``dpi`` (at least one dot)."""
    return max(1, round(pt * dpi / POINTS_PER_INCH))


def pt_to_mm(pt: float) -> float:
    """Typographic points (1/72 inch) to millimetres."""
    return pt * MM_PER_INCH / POINTS_PER_INCH


def mm_to_pt(mm: float) -> float:
    """Millimetres to PDF user-space points (1/72 inch)."""
    return mm * POINTS_PER_INCH / MM_PER_INCH
