"""Example plates, for the demonstration, the tests and the benchmark: a reader file
(450 nm read and 540 nm correction under instrument metadata, as readers export them)
and its plate map in the documented xlsx form, generated from known 4PL parameters so
that every concentration the import finds can be checked against the truth."""

from __future__ import annotations

import io
from dataclasses import dataclass

import openpyxl

from biobank import tabular

ROWS = "ABCDEFGH"
STANDARDS = (1000.0, 500.0, 250.0, 125.0, 62.5, 31.25, 15.625, 0.0)  # pg/mL, STD1..STD8
TRUTH = {"a": 0.0, "b": 1.2, "c": 420.0, "d": 3.4}  # response after blank subtraction
BLANK_OD, REFERENCE_OD = 0.048, 0.041


def response(x: float, p: dict = TRUTH) -> float:
    return p["d"] + (p["a"] - p["d"]) / (1 + (x / p["c"]) ** p["b"]) if x > 0 else p["a"]


@dataclass(frozen=True)
class Plate:
    reader: bytes
    plate_map: bytes
    layout: dict[str, str]  # well → content
    truth: dict[str, float]  # sample barcode → concentration in the sample (dilution applied)
    dilutions: dict[str, float]
    long_list: bytes  # the same reads, corrected, as a LIS exports them (French CSV)


def layout(samples: list[str]) -> dict[str, str]:
    """Standards in columns 1–2 (duplicates side by side), blanks and controls in column
    3, samples in duplicate down columns 4–12 (A4/B4, C4/D4, …)."""
    wells = {}
    for row, _ in enumerate(STANDARDS):
        wells[f"{ROWS[row]}1"] = wells[f"{ROWS[row]}2"] = f"STD{row + 1}"
    for row, name in enumerate(("BLANK", "BLANK", "CTRL-L", "CTRL-L", "CTRL-H", "CTRL-H")):
        wells[f"{ROWS[row]}3"] = name
    places = [(col, row) for col in range(4, 13) for row in range(0, 8, 2)]
    if len(samples) > len(places):
        raise ValueError(f"at most {len(places)} samples")
    for barcode, (col, row) in zip(samples, places, strict=False):
        wells[f"{ROWS[row]}{col}"] = wells[f"{ROWS[row + 1]}{col}"] = barcode
    return wells


# Both files are read back by the import, so their texts are written verbatim, stored as
# text and never as a formula (biobank/tabular.py).


def _append(sheet, values: list) -> None:
    sheet.append(tabular.xlsx_row(sheet, values, verbatim=True))


def plate_map_xlsx(wells: dict[str, str], dilutions: dict[str, float]) -> bytes:
    book = openpyxl.Workbook()
    grid = book.active
    grid.title = "Layout"
    for col in range(1, 13):
        grid.cell(row=1, column=col + 1, value=col)
    for row, letter in enumerate(ROWS):
        grid.cell(row=row + 2, column=1, value=letter)
        for col in range(1, 13):
            tabular.put(grid, row + 2, col + 1, wells.get(f"{letter}{col}"), verbatim=True)
    standards = book.create_sheet("Standards")
    _append(standards, ["Name", "Concentration", "Unit"])
    for n, concentration in enumerate(STANDARDS, 1):
        _append(standards, [f"STD{n}", concentration, "pg/mL"])
    if dilutions:
        sheet = book.create_sheet("Dilutions")
        _append(sheet, ["Barcode", "Dilution"])
        for barcode, factor in dilutions.items():
            _append(sheet, [barcode, factor])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def reader_xlsx(od450: dict[str, float | str | None], od540: dict[str, float]) -> bytes:
    """Two blocks stacked under instrument metadata, as a reader's export."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Results"
    for line in (
        ["Software Version", "3.11.19"],
        ["Experiment File Path:", r"C:\\Users\\lab\\VEGF.xpt"],
        ["Plate Number", "Plate 1"],
        ["Date", "29/11/2026"],
        ["Reader Type:", "Synergy H1"],
    ):
        _append(sheet, line)
    for top, (label, values) in ((8, ("450", od450)), (20, ("540", od540))):
        sheet.cell(row=top, column=1, value=label)
        for col in range(1, 13):
            sheet.cell(row=top + 1, column=col + 2, value=col)
        for row, letter in enumerate(ROWS):
            sheet.cell(row=top + 2 + row, column=2, value=letter)
            for col in range(1, 13):
                value = values.get(f"{letter}{col}")
                tabular.put(sheet, top + 2 + row, col + 2, value, verbatim=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_plate(
    samples: dict[str, float], *, dilutions: dict[str, float] | None = None, noise=None
) -> Plate:
    """``samples``: barcode → concentration in the well (before dilution)."""
    dilutions = dilutions or {}
    wells = layout(list(samples))
    od450, od540 = {}, {}
    controls = {"CTRL-L": 80.0, "CTRL-H": 600.0}
    for n, (well, content) in enumerate(sorted(wells.items())):
        if content.startswith("STD"):
            x = STANDARDS[int(content[3:]) - 1]
        elif content == "BLANK":
            x = 0.0
        elif content in controls:
            x = controls[content]
        else:
            x = samples[content]
        jitter = 1 + (noise(n) if noise else 0.0)
        od450[well] = round(response(x) * jitter + BLANK_OD + REFERENCE_OD, 4)
        od540[well] = REFERENCE_OD
    truth = {b: c * dilutions.get(b, 1.0) for b, c in samples.items()}
    lines = ["Export LIS;VEGF", "Date;29/11/2026", "", "Position;Sample ID;OD corr"] + [
        f"{well};{content};{od450[well] - od540[well]:.4f}".replace(".", ",")
        for well, content in sorted(wells.items())
    ]
    return Plate(
        reader_xlsx(od450, od540),
        plate_map_xlsx(wells, dilutions),
        wells,
        truth,
        dilutions,
        ("\n".join(lines) + "\n").encode("utf-8-sig"),
    )
