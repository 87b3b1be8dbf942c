"""Shared test data and helpers for the labels tests (imported by module name).

Kept out of conftest.py because tests/labels is not a package and sibling test
directories may have their own conftest.py.
"""

import io
import re

import zxingcpp
from PIL import Image

import labels

DPIS = (203, 300, 600)
LABEL_TEMPLATES = ("cryo-38x13", "cryo-cap", "box-50x25")

LONGEST_ALIQUOT_CODE = "7KQ2M9XWPR3A"  # aliquot codes: up to 12 uppercase alphanumerics
# Code set C runs, switches and "99AES" (python-barcode 0.16 dropped a leading "99").
ALIQUOT_CODES = (
    LONGEST_ALIQUOT_CODE,
    "A",
    "000000000000",
    "12AB34CD56EF",
    "ZZZZ9999",
    "99AES",
    "9912AB",
)
BOX_CODES = ("BX-0012", "BX-9999", LONGEST_ALIQUOT_CODE)

LONG_TEXT = "Participant with an extraordinarily long study code that cannot fit"


def aliquot(code: str = LONGEST_ALIQUOT_CODE, **overrides: str) -> labels.LabelData:
    fields = {
        "participant": "P-000123",
        "visit": "V02 Week 4",
        "sample_type": "Plasma EDTA",
        "series": "3/5",
        "date": "2025-11-29",
    }
    fields.update(overrides)
    return labels.LabelData(code, fields)


def box(code: str = "BX-0012", **overrides: str) -> labels.LabelData:
    fields = {"name": "Freezer 3 / Rack B / Box 12", "contents": "Plasma EDTA, visits V01-V04"}
    fields.update(overrides)
    return labels.LabelData(code, fields)


def codes_for(template_name: str) -> tuple[str, ...]:
    return BOX_CODES if template_name == "box-50x25" else ALIQUOT_CODES


def data_for(template_name: str, code: str) -> labels.LabelData:
    return box(code) if template_name == "box-50x25" else aliquot(code)


def expected_format(template: labels.Template) -> zxingcpp.BarcodeFormat:
    if template.symbol.symbology == "code128":
        return zxingcpp.BarcodeFormat.Code128
    return zxingcpp.BarcodeFormat.DataMatrix


def decode(image: Image.Image) -> list[tuple[zxingcpp.BarcodeFormat, str]]:
    """Every symbol zxing-cpp's reader finds in ``image`` (format, text).

    try_downscale=False: zxing's extra pass on an area-averaged, downscaled copy
    occasionally returned a second, wrong Code 128 read of perfect 600 dpi
    bitmaps (e.g. "IANDQ5ADB" also read as ":ANDQ5ADB"); the printer's own
    resolution is what we must prove decodes.
    """
    found = zxingcpp.read_barcodes(image.convert("L"), try_downscale=False)
    return [(r.format, r.text) for r in found]


def open_png(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """MediaBox width/height in points of every page object in a PDF."""
    boxes = re.findall(rb"/Type /Page\b.*?/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]
