"""ZPL II for Zebra thermal printers, from the same plan as the PNG.

Per label: ^XA, ^CI28 (UTF-8), ^PW/^LL (label size in dots), one ^FO field per
element, ^XZ. Output is a pure function of its input: same labels, same bytes.

* Code 128: ^BY sets the module in dots and ^BC mode N gets explicit code-set
  invocations (">:" start B, ">5" code C, ...) copied from python-barcode's
  encoding, so the printed symbol has exactly the width we checked.
* DataMatrix: ^BX with the module in dots, quality 200 (ECC200) and the square
  size we reserved (see datamatrix.DataMatrixSymbol). Its escape character is set
  to ">", which codes may not contain, so no data is ever read as an escape.
* Text: ^A0 (scalable font) sized in dots inside a one-line ^FB block the width
  of the field box. Text is pre-truncated with our DejaVu metrics; Zebra's font 0
  is a condensed face, narrower at the same height, so it fits too. Data goes
  through ^FH so ^, ~ and _ in text are sent as hex escapes.
"""

from collections.abc import Iterable
from functools import lru_cache

from labels.layout import LabelPlan, PlacedSymbol, PlacedText, plan_label
from labels.model import LabelData, Template

_ALIGN = {"left": "L", "center": "C", "right": "R"}
_HEX_ESCAPES = str.maketrans({"_": "_5F", "^": "_5E", "~": "_7E"})


def render_zpl(template: Template, labels: Iterable[LabelData], dpi: int) -> bytes:
    """ZPL II (UTF-8 bytes) for ``labels`` on ``template`` for a printer of ``dpi``.

    Raises LabelError (before producing anything) if any code cannot be printed.
    """
    if not isinstance(template, Template):
        raise TypeError(f"render_zpl needs a label Template, got {type(template).__name__}")
    plans = [plan_label(template, data, dpi) for data in labels]
    return "".join(label_zpl(plan) for plan in plans).encode("utf-8")


def label_zpl(plan: LabelPlan) -> str:
    """One ^XA ... ^XZ label format for a resolved label."""
    fields = [_symbol_zpl(plan.symbol), *(_text_zpl(text) for text in plan.texts)]
    return (
        f"^XA\n^CI28\n^PW{plan.width}\n^LL{plan.height}\n^LH0,0\n" + "\n".join(fields) + "\n^XZ\n"
    )


def _symbol_zpl(symbol: PlacedSymbol) -> str:
    origin = f"^FO{symbol.left},{symbol.top}"
    if symbol.code128 is not None:
        data = symbol.code128.zpl_data
        return f"{origin}^BY{symbol.module}^BCN,{symbol.height},N,N,N,N^FD{data}^FS"
    matrix = symbol.datamatrix
    size = matrix.planned_size
    return f"{origin}^BXN,{symbol.module},200,{size},{size},6,>^FD{matrix.text}^FS"


@lru_cache(maxsize=8192)  # participant, visit, date... repeat across a visit's labels
def _text_zpl(text: PlacedText) -> str:
    box = text.box
    height = min(text.slot.size_px, box.height)
    top = box.top + (box.height - height) // 2
    align = _ALIGN[text.slot.field.align]
    data = text.text.translate(_HEX_ESCAPES)
    return f"^FO{box.left},{top}^A0N,{height}^FB{box.width},1,0,{align},0^FH_^FD{data}^FS"
