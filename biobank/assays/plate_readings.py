"""What a plate's reader file said of its blanks and kit controls, for the run page: each
well's reading as written, its correction read, the corrected value and the response the
curve was given; the blank mean subtracted; each control against the kit's range. Pure:
derived from the preview the run keeps."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

# A number as a reader writes it: decimal comma or point, exponent, "−" (U+2212).
_NUMBER = r"[+\-\u2212]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+\-]?\d+)?"
# A well read at two wavelengths is kept as "read-reference" (0.089-0.041).
_READ_AND_REFERENCE = re.compile(rf"({_NUMBER})-({_NUMBER})")
_WAVELENGTH = re.compile(r"\d{3}")


@dataclass(frozen=True)
class WellReading:
    """One well as the reader file wrote it, and what the curve made of it."""

    well: str
    read: str  # the reading as written ("0.089", "0,089", "OVER")
    reference: str  # the correction read as written; "" without one
    corrected: float | None  # read − reference, before the blank is subtracted
    response: float | None  # corrected, blank subtracted: what the curve was given


@dataclass(frozen=True)
class ControlReadings:
    """A kit control's wells and its measured value against the kit's range."""

    name: str
    wells: list[WellReading]
    value: float | None
    low: float | None
    high: float | None
    passed: bool | None  # None: the plate map gives no range for it


@dataclass(frozen=True)
class PlateReadings:
    read: str
    reference: str | None
    blanks: list[WellReading]
    blank_mean: float | None  # None: no blank well read, nothing was subtracted
    controls: list[ControlReadings]


def _position(well: str) -> tuple[str, int]:
    """A1, A2 … A12, B1: the plate's order, not the text's (A1, A10, A11, A2)."""
    return well[:1], int(well[1:]) if well[1:].isdigit() else 0


def _decimal(text: str) -> float | None:
    try:
        return float(text.replace(",", ".").replace("\u2212", "-"))
    except ValueError:
        return None


def _well_reading(well: str, info: dict, with_reference: bool) -> WellReading:
    raw = info.get("raw") or ""
    read, reference = raw, ""
    if with_reference and (pair := _READ_AND_REFERENCE.fullmatch(raw)):
        read, reference = pair.groups()
    corrected = None
    if info.get("response") is not None:  # the well gave a number the curve used
        read_value = _decimal(read)
        reference_value = _decimal(reference) if reference else 0.0
        if read_value is not None and reference_value is not None:
            corrected = read_value - reference_value
    return WellReading(well, read, reference, corrected, info.get("response"))


def _read_name(label: str | None) -> str:
    """A read as the file labels it; a bare wavelength gets its unit: "450 nm"."""
    label = (label or "").strip()
    return f"{label} nm" if _WAVELENGTH.fullmatch(label) else label


def of(preview: dict) -> PlateReadings:
    """The blanks (each well's reading and the mean subtracted from every well) and the
    kit controls (each well's reading and response, the value against the kit range), from
    the wells the preview kept. The mean is computed as the import computed it: over the
    blank wells that gave a number, each read less its reference."""
    reads = preview.get("reads") or {}
    with_reference = bool(reads.get("reference"))
    wells = sorted((preview.get("wells") or {}).items(), key=lambda item: _position(item[0]))
    readings = {well: _well_reading(well, info, with_reference) for well, info in wells}
    blanks = [readings[well] for well, info in wells if info.get("kind") == "blank"]
    read_blanks = [b.corrected for b in blanks if b.corrected is not None]
    # Controls in the order their first well comes on the plate; then any declared in the
    # plate map that no well holds.
    controls: dict[str, list[WellReading]] = {}
    for well, info in wells:
        if info.get("kind") == "control":
            controls.setdefault(info["content"], []).append(readings[well])
    declared = {c["name"]: c for c in preview.get("controls") or ()}
    for name in declared:
        controls.setdefault(name, [])
    return PlateReadings(
        read=_read_name(reads.get("read")),
        reference=_read_name(reads.get("reference")) if with_reference else None,
        blanks=blanks,
        blank_mean=statistics.fmean(read_blanks) if read_blanks else None,
        controls=[
            ControlReadings(
                name,
                controls[name],
                declared.get(name, {}).get("value"),
                declared.get(name, {}).get("low"),
                declared.get(name, {}).get("high"),
                declared[name]["pass"] if name in declared else None,
            )
            for name in controls
        ],
    )
