"""From template + data + dpi to positions in whole printer dots.

The PNG/PDF rasteriser and the ZPL writer both draw from the same ``LabelPlan``,
so a label has the same module size, positions and truncated texts whatever
the output format.
"""

from dataclasses import dataclass
from functools import lru_cache

from labels.code128 import Code128Symbol, encode_code128
from labels.datamatrix import DataMatrixSymbol, encode_datamatrix
from labels.model import Box, LabelData, SymbolField, Template, TextField
from labels.sizing import choose_module
from labels.text import fit_and_measure, load_font
from labels.units import mm_to_dots_ceil, mm_to_dots_floor, pt_to_dots


@dataclass(frozen=True)
class DotBox:
    """A rectangle in printer dots; ``right``/``bottom`` are exclusive."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


def to_dots(box: Box, dpi: int) -> DotBox:
    """The whole dots inside a millimetre box (edges rounded inwards)."""
    left, top = mm_to_dots_ceil(box.x, dpi), mm_to_dots_ceil(box.y, dpi)
    right, bottom = mm_to_dots_floor(box.right, dpi), mm_to_dots_floor(box.bottom, dpi)
    return DotBox(left, top, max(0, right - left), max(0, bottom - top))


@dataclass(frozen=True, eq=False)
class TextSlot:
    """A text field resolved for one dpi: its box, pixel font size and line metrics.

    Compared by identity: slots live in the cached Geometry and key the cache of
    placed texts, where hashing by value would cost more than placing the text.
    """

    field: TextField
    box: DotBox
    size_px: int
    ascent: int
    descent: int


@dataclass(frozen=True)
class Geometry:
    """Everything about a template at one dpi that does not depend on the data."""

    width: int
    height: int
    symbol_box: DotBox
    texts: tuple[TextSlot, ...]


@lru_cache(maxsize=64)
def geometry(template: Template, dpi: int) -> Geometry:
    """Dot geometry of ``template`` at ``dpi`` (ValueError if the dpi is not supported)."""
    if dpi not in template.dpis:
        supported = ", ".join(map(str, template.dpis))
        raise ValueError(f"template {template.name!r} supports {supported} dpi, not {dpi}")
    slots = []
    for text in template.texts:
        size_px = pt_to_dots(text.size_pt, dpi)
        ascent, descent = load_font(text.font, size_px).getmetrics()
        slots.append(TextSlot(text, to_dots(text.box, dpi), size_px, ascent, descent))
    return Geometry(
        width=mm_to_dots_floor(template.width_mm, dpi),
        height=mm_to_dots_floor(template.height_mm, dpi),
        symbol_box=to_dots(template.symbol.box, dpi),
        texts=tuple(slots),
    )


@dataclass(frozen=True)
class PlacedSymbol:
    """The barcode in dots. ``left``/``top`` is the first module, quiet zone excluded.

    ``width``/``height`` cover the bars (Code 128) or the reserved square
    (DataMatrix, ``planned_size`` modules a side).
    """

    symbology: str
    module: int
    left: int
    top: int
    width: int
    height: int
    box: DotBox
    code128: Code128Symbol | None = None
    datamatrix: DataMatrixSymbol | None = None


@dataclass(frozen=True, eq=False)
class PlacedText:
    """One line of text: the (possibly truncated) string and its pen origin.

    Compared by identity, like TextSlot: placed texts are cached and reused.
    """

    slot: TextSlot
    text: str
    x: int  # pen origin; glyphs are drawn from here with anchor "ls"
    baseline: int

    @property
    def box(self) -> DotBox:
        return self.slot.box


@dataclass(frozen=True)
class LabelPlan:
    """One label, fully resolved to dots, ready to rasterise or write as ZPL."""

    template: Template
    dpi: int
    width: int
    height: int
    symbol: PlacedSymbol
    texts: tuple[PlacedText, ...]


def plan_label(template: Template, data: LabelData, dpi: int) -> LabelPlan:
    """Resolve ``data`` on ``template`` at ``dpi``; LabelError if the code cannot fit."""
    if not isinstance(data, LabelData):
        raise TypeError(f"expected LabelData, got {type(data).__name__}")
    geo = geometry(template, dpi)
    symbol = _place_symbol(template, template.symbol, geo.symbol_box, data.code, dpi)
    texts = tuple(
        placed for slot in geo.texts if (placed := _place_text(slot, data.text(slot.field.name)))
    )
    return LabelPlan(template, dpi, geo.width, geo.height, symbol, texts)


def _place_symbol(
    template: Template, spec: SymbolField, box: DotBox, code: str, dpi: int
) -> PlacedSymbol:
    narrow_side = box.width if spec.symbology == "code128" else min(box.width, box.height)
    module = choose_module(
        template_name=template.name,
        symbology=spec.symbology,
        code=code,
        available_dots=narrow_side,
        dpi=dpi,
        min_module_mm=spec.min_module_mm,
        max_module_mm=spec.max_module_mm,
    )
    if spec.symbology == "code128":
        symbol = encode_code128(code)
        width = symbol.width_modules * module
        left = box.left + (box.width - width) // 2
        return PlacedSymbol(
            "code128", module, left, box.top, width, box.height, box, code128=symbol
        )
    matrix = encode_datamatrix(code)
    side = matrix.planned_size * module
    left = box.left + (box.width - side) // 2
    top = box.top + (box.height - side) // 2
    return PlacedSymbol("datamatrix", module, left, top, side, side, box, datamatrix=matrix)


@lru_cache(maxsize=8192)
def _place_text(slot: TextSlot, raw: str) -> PlacedText | None:
    spec, box = slot.field, slot.box
    text, ink_left, ink_right = fit_and_measure(
        raw, spec.font, slot.size_px, box.width, spec.ellipsis
    )
    if not text:
        return None
    free = box.width - (ink_right - ink_left)
    shift = {"left": 0, "center": free // 2, "right": free}[spec.align]
    # Centre the line (ascent + descent) vertically. If rounding made it a dot
    # taller than the box, floor division moves it up: the ascent has headroom
    # above capitals, the descent hardly any below descenders.
    baseline = box.top + (box.height - slot.ascent - slot.descent) // 2 + slot.ascent
    return PlacedText(slot, text, box.left + shift - ink_left, baseline)
