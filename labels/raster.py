"""Drawing a label plan into a 1-bit image, and PNG output.

Bars and DataMatrix modules are drawn from the module pattern by scaling one
pixel per module by a whole number of dots (nearest neighbour), so every module
is exactly ``module`` dots: nothing is anti-aliased, rounded away or widened.
"""

from functools import lru_cache
from io import BytesIO

from PIL import Image, ImageDraw

from labels.layout import LabelPlan, PlacedSymbol, PlacedText, plan_label
from labels.model import LabelData, Template
from labels.text import load_font

WHITE, BLACK = 1, 0
# Module pattern characters to greyscale bytes: bar "1" -> black, space "0" -> white.
_PATTERN_TO_GREY = bytes.maketrans(b"01", b"\xff\x00")


def label_image(plan: LabelPlan) -> Image.Image:
    """The label as a 1-bit image, one pixel per printer dot."""
    image = Image.new("1", (plan.width, plan.height), WHITE)
    _draw_symbol(image, plan.symbol)
    for text in plan.texts:
        _draw_text(image, text)
    return image


def _scaled(grey: Image.Image, width: int, height: int) -> Image.Image:
    scaled = grey.resize((width, height), Image.Resampling.NEAREST)
    return scaled.convert("1", dither=Image.Dither.NONE)


def _draw_symbol(image: Image.Image, symbol: PlacedSymbol) -> None:
    if symbol.code128 is not None:
        row = symbol.code128.modules.encode("ascii").translate(_PATTERN_TO_GREY)
        grey = Image.frombytes("L", (len(row), 1), row)
        image.paste(_scaled(grey, symbol.width, symbol.height), (symbol.left, symbol.top))
        return
    matrix = symbol.datamatrix
    side = matrix.size * symbol.module
    # zxing's symbol may be smaller than the square reserved for the printer's.
    offset = (matrix.planned_size - matrix.size) // 2 * symbol.module
    grey = Image.frombytes("L", (matrix.size, matrix.size), matrix.matrix)
    image.paste(_scaled(grey, side, side), (symbol.left + offset, symbol.top + offset))


def _draw_text(image: Image.Image, text: PlacedText) -> None:
    image.paste(_text_tile(text), (text.box.left, text.box.top))


# Participant, visit, date... repeat on every label of a visit, and placed texts
# are cached objects, so their tiles are drawn once.
@lru_cache(maxsize=2048)
def _text_tile(text: PlacedText) -> Image.Image:
    # Drawing into a box-sized tile and pasting it clips any stray ink to the box.
    box = text.box
    tile = Image.new("1", (box.width, box.height), WHITE)
    draw = ImageDraw.Draw(tile)
    draw.fontmode = "1"  # crisp glyphs: a thermal head has no grey
    font = load_font(text.slot.field.font, text.slot.size_px)
    origin = (text.x - box.left, text.baseline - box.top)
    draw.text(origin, text.text, fill=BLACK, font=font, anchor="ls")
    return tile


def render_png(template: Template, data: LabelData, dpi: int) -> bytes:
    """One label as a 1-bit PNG at printer resolution, with ``dpi`` in its metadata.

    Raises LabelError if the code cannot be printed at a scannable size.
    """
    if not isinstance(template, Template):
        raise TypeError(f"render_png needs a label Template, got {type(template).__name__}")
    image = label_image(plan_label(template, data, dpi))
    buffer = BytesIO()
    # Level 1: these bitmaps are tiny either way, and level 6 takes longer than drawing.
    image.save(buffer, "PNG", dpi=(dpi, dpi), compress_level=1)
    return buffer.getvalue()
