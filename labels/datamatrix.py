"""Square DataMatrix ECC200 through zxing-cpp's writer."""

from dataclasses import dataclass
from functools import lru_cache

import zxingcpp

from labels.errors import LabelError
from labels.symbols import check_code

# ECC200 square symbol sizes and their data codeword capacity (ISO/IEC 16022).
SQUARE_CAPACITY = (
    (10, 3), (12, 5), (14, 8), (16, 12), (18, 18), (20, 22), (22, 30), (24, 36),
    (26, 44), (32, 62), (36, 86), (40, 114), (44, 144), (48, 174), (52, 204),
    (64, 280), (72, 368), (80, 456), (88, 576), (96, 696), (104, 816),
    (120, 1050), (132, 1304), (144, 1558),
)  # fmt: skip


@dataclass(frozen=True)
class DataMatrixSymbol:
    """A square DataMatrix ECC200 symbol from zxing-cpp.

    ``size`` is zxing's symbol; ``planned_size`` is the size we reserve and ask a
    Zebra printer for: large enough for plain ASCII encodation, so the printer's
    own encoder is sure to fit, and never smaller than zxing's.
    """

    text: str
    size: int
    matrix: bytes  # size*size bytes, row-major, 0 = dark module, 255 = light
    planned_size: int


def _ascii_codewords(text: str) -> int:
    """Codewords in DataMatrix ASCII encodation: digit pairs share one codeword."""
    count = i = 0
    while i < len(text):
        pair = text[i : i + 2]
        i += 2 if len(pair) == 2 and pair.isdigit() else 1
        count += 1
    return count


def _square_size_for(codewords: int) -> int:
    for size, capacity in SQUARE_CAPACITY:
        if capacity >= codewords:
            return size
    raise LabelError(f"{codewords} codewords exceed the largest DataMatrix (144x144)")


@lru_cache(maxsize=4096)
def encode_datamatrix(text: str) -> DataMatrixSymbol:
    """Encode ``text`` as a square DataMatrix ECC200 with zxing-cpp's writer."""
    check_code(text)
    # Square only: ZPL's ^BX cannot print rectangular DataMatrix.
    created = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix, force_square=True)
    image = memoryview(created.to_image(scale=1, add_quiet_zones=False))
    rows, columns = image.shape
    if rows != columns or created.text != text:
        raise AssertionError(f"zxing-cpp wrote {created.text!r} as {rows}x{columns} for {text!r}")
    planned = max(rows, _square_size_for(_ascii_codewords(text)))
    return DataMatrixSymbol(text=text, size=rows, matrix=bytes(image), planned_size=planned)
