"""Previews of many labels on one picture: a contact sheet, or a sheet's own pages.

A preview is for looking at, not for printing, yet every label keeps its true size at
the chosen resolution (one pixel per printer dot, ``dpi`` in the PNG metadata), so a
viewer showing it at 100 % shows the labels as they will come out. Labels lie on a grey
"liner" with a thin gap around each, the way they sit on the roll.
"""

import math
from collections.abc import Iterable
from functools import lru_cache
from io import BytesIO

from PIL import Image, ImageDraw

from labels.layout import geometry, plan_label
from labels.model import LabelData, Sheet, Template
from labels.raster import label_image
from labels.sheet import render_pages
from labels.units import mm_to_dots_floor

GAP_MM = 1.0
# About a page wide: the grid reads like a sheet of labels, and a round 10 mm cap label
# still gets many to a row.
ROW_WIDTH_MM = 200.0
# A preview is held whole in memory (one byte per dot): an A4 page at 600 dpi is 35
# million dots, so one such page fits and a runaway request does not.
MAX_PIXELS = 40_000_000
LINER = 200  # grey of the backing paper between labels


def contact_sheet_size(layout: Template | Sheet, count: int, dpi: int) -> tuple[int, int]:
    """Width and height in dots of the preview of ``count`` labels, without drawing it.

    ValueError if ``dpi`` is not one the template is made for.
    """
    if count < 1:
        raise ValueError("no labels to preview")
    gap = mm_to_dots_floor(GAP_MM, dpi)
    if isinstance(layout, Sheet):
        geometry(layout.label, dpi)  # the same dpi check as a label's
        pages = math.ceil(count / layout.labels_per_page)
        width = mm_to_dots_floor(layout.page_width_mm, dpi)
        height = mm_to_dots_floor(layout.page_height_mm, dpi)
        return width + 2 * gap, pages * height + (pages + 1) * gap
    if not isinstance(layout, Template):
        raise TypeError(f"expected a Template or Sheet, got {type(layout).__name__}")
    geo = geometry(layout, dpi)
    columns, rows = _grid(layout, count)
    return (
        columns * geo.width + (columns + 1) * gap,
        rows * geo.height + (rows + 1) * gap,
    )


def _grid(template: Template, count: int) -> tuple[int, int]:
    fit = int((ROW_WIDTH_MM - GAP_MM) // (template.width_mm + GAP_MM))
    columns = max(1, min(count, fit))
    return columns, math.ceil(count / columns)


def render_contact_sheet(
    layout: Template | Sheet, labels: Iterable[LabelData], dpi: int, max_pixels: int = MAX_PIXELS
) -> bytes:
    """Every label of ``labels`` on one greyscale PNG, each at its true size for ``dpi``.

    A Template gives a grid, row by row in the order given, about a page wide, with a
    thin gap around each label; a Sheet gives its pages, one below the other, labels in
    their places on the sheet. ``dpi`` is written in the PNG. Raises ValueError (before
    drawing anything) when the picture would exceed ``max_pixels`` dots, and LabelError
    if a code cannot be printed at a scannable size.
    """
    labels = list(labels)
    width, height = contact_sheet_size(layout, len(labels), dpi)
    if width * height > max_pixels:
        raise ValueError(
            f"a preview of {len(labels)} labels of {layout.name} at {dpi} dpi would be "
            f"{width} x {height} dots, more than {max_pixels}: preview fewer labels or "
            f"a lower resolution"
        )
    gap = mm_to_dots_floor(GAP_MM, dpi)
    canvas = Image.new("L", (width, height), LINER)
    if isinstance(layout, Sheet):
        for index, page in enumerate(render_pages(layout, labels, dpi)):
            canvas.paste(page.convert("L"), (gap, gap + index * (page.height + gap)))
    else:
        plans = [plan_label(layout, data, dpi) for data in labels]  # LabelError before drawing
        columns, _rows = _grid(layout, len(labels))
        mask = _shape_mask(layout.shape, plans[0].width, plans[0].height)
        for index, plan in enumerate(plans):
            row, column = divmod(index, columns)
            origin = (gap + column * (plan.width + gap), gap + row * (plan.height + gap))
            canvas.paste(label_image(plan).convert("L"), origin, mask)
    buffer = BytesIO()
    canvas.save(buffer, "PNG", dpi=(dpi, dpi), compress_level=1)
    return buffer.getvalue()


@lru_cache(maxsize=16)
def _shape_mask(shape: str, width: int, height: int) -> Image.Image | None:
    """The label's outline, so a round cap label shows round on the liner."""
    if shape != "round":
        return None
    mask = Image.new("1", (width, height), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width - 1, height - 1), fill=1)
    return mask
