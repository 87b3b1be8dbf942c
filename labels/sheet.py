"""Composing label images into pages: one label per page, or a sheet grid."""

from collections.abc import Iterable

from PIL import Image

from labels.layout import plan_label
from labels.model import LabelData, Sheet, Template
from labels.raster import WHITE, label_image
from labels.units import mm_to_dots_ceil, mm_to_dots_floor


def render_pages(
    layout: Template | Sheet, labels: Iterable[LabelData], dpi: int, skip: int = 0
) -> list[Image.Image]:
    """1-bit page images at ``dpi``: one per label for a Template, grids for a Sheet.

    ``skip`` leaves that many positions of a partly used first sheet empty.
    Raises LabelError (before drawing anything) if any code cannot be printed.
    """
    labels = list(labels)
    if not labels:
        raise ValueError("no labels to render")
    if isinstance(layout, Template):
        return [label_image(plan_label(layout, data, dpi)) for data in labels]
    if not isinstance(layout, Sheet):
        raise TypeError(f"expected a Template or Sheet, got {type(layout).__name__}")
    if not 0 <= skip < layout.labels_per_page:
        raise ValueError(f"skip must be 0..{layout.labels_per_page - 1}, got {skip}")
    plans = [plan_label(layout.label, data, dpi) for data in labels]
    size = (
        mm_to_dots_floor(layout.page_width_mm, dpi),
        mm_to_dots_floor(layout.page_height_mm, dpi),
    )
    pages: list[Image.Image] = []
    for position, plan in enumerate(plans, start=skip):
        page_index, slot = divmod(position, layout.labels_per_page)
        if page_index == len(pages):
            pages.append(Image.new("1", size, WHITE))
        pages[page_index].paste(label_image(plan), slot_origin(layout, slot, dpi))
    return pages


def slot_origin(sheet: Sheet, slot: int, dpi: int) -> tuple[int, int]:
    """Top-left dot of label position ``slot`` (row-major) on a sheet page."""
    row, column = divmod(slot, sheet.columns)
    x = sheet.offset_x_mm + column * sheet.pitch_x_mm
    y = sheet.offset_y_mm + row * sheet.pitch_y_mm
    return mm_to_dots_ceil(x, dpi), mm_to_dots_ceil(y, dpi)
