"""PDF output: each page is one 1-bit bitmap at printer resolution.

A tiny writer instead of Pillow's PDF plugin, for two reasons: the MediaBox is
the exact physical page (A4 is 595.276 x 841.89 pt, a 38 mm label 107.717 pt)
rather than a whole number of pixels, and the bytes are reproducible (no
creation date). Print at 100 % / "actual size" for labels to land on the sheet.
"""

import zlib
from collections.abc import Iterable

from PIL import Image

from labels.model import LabelData, Sheet, Template
from labels.sheet import render_pages
from labels.units import POINTS_PER_INCH, mm_to_pt


def render_pdf(
    layout: Template | Sheet, labels: Iterable[LabelData], dpi: int, skip: int = 0
) -> bytes:
    """A PDF of ``labels``: sheet pages for a Sheet, one label-sized page each for a Template.

    ``skip`` leaves that many positions of a partly used first sheet empty.
    Raises LabelError if any code cannot be printed at a scannable size.
    """
    pages = render_pages(layout, labels, dpi, skip)
    if isinstance(layout, Sheet):
        size_mm = (layout.page_width_mm, layout.page_height_mm)
    else:
        size_mm = (layout.width_mm, layout.height_mm)
    size_pt = (mm_to_pt(size_mm[0]), mm_to_pt(size_mm[1]))
    return write_pdf([(page, *size_pt) for page in pages], dpi)


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _stream(header: str, data: bytes) -> bytes:
    return f"<< {header} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def write_pdf(pages: list[tuple[Image.Image, float, float]], dpi: int) -> bytes:
    """Write (image, width_pt, height_pt) pages; each image is placed top-left at ``dpi``."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree, filled in at the end
    kids = []
    for image, width_pt, height_pt in pages:
        bitmap = image if image.mode == "1" else image.convert("1")
        # Mode "1" raw bytes are rows of packed bits, 1 = white: exactly a
        # DeviceGray 1-bit PDF image.
        objects.append(
            _stream(
                f"/Type /XObject /Subtype /Image /Width {bitmap.width} "
                f"/Height {bitmap.height} /ColorSpace /DeviceGray /BitsPerComponent 1 "
                "/Interpolate false /Filter /FlateDecode",
                zlib.compress(bitmap.tobytes(), 6),
            )
        )
        image_id = len(objects)
        shown_w = bitmap.width * POINTS_PER_INCH / dpi
        shown_h = bitmap.height * POINTS_PER_INCH / dpi
        placement = (
            f"q {_num(shown_w)} 0 0 {_num(shown_h)} 0 {_num(height_pt - shown_h)} cm /Im0 Do Q"
        )
        objects.append(_stream("", placement.encode()))
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_num(width_pt)} {_num(height_pt)}] "
            f"/Resources << /XObject << /Im0 {image_id} 0 R >> >> "
            f"/Contents {image_id + 1} 0 R >>".encode()
        )
        kids.append(f"{len(objects)} 0 R")
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    return _serialise(objects)


def _serialise(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
