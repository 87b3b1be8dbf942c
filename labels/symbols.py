"""Encoding codes into module patterns (no drawing, no sizes in dots).

Code 128 comes from python-barcode's encoder, DataMatrix ECC200 from zxing-cpp's
writer. Both give one entry per *module*; ``sizing`` decides how many printer
dots a module gets and ``raster``/``zpl`` draw or describe it.
"""

from dataclasses import dataclass
from functools import lru_cache

import barcode
import zxingcpp
from barcode.charsets import code128 as code128_charset

from labels.errors import LabelError

# Smallest module (X-dimension) we accept, per symbology, in millimetres. Code 128
# at 0.125 mm (5 mil) is the usual high-density limit of tube scanners and one
# dot of a 203 dpi head; DataMatrix at 0.25 mm is what 2D rack/tube readers read
# reliably on thermal-transfer cryo labels.
MIN_MODULE_MM = {"code128": 0.125, "datamatrix": 0.25}
# Quiet zone in modules on each side, per the symbology specifications.
QUIET_ZONE_MODULES = {"code128": 10, "datamatrix": 1}

# Codes are identifiers: printable ASCII without space. ^ and ~ are ZPL command
# prefixes and > is ZPL's Code 128 escape, so they are refused rather than risk a
# printer encoding something other than what the PNG/PDF shows.
_FORBIDDEN = set("^~>")
CODE_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F)) - _FORBIDDEN

_VALUE_OF_PATTERN = {pattern: value for value, pattern in enumerate(code128_charset.CODES)}
_STOP = code128_charset.STOP + "11"  # stop character plus its final 2-module bar
_START_B, _START_C, _CODE_C, _CODE_B = 104, 105, 99, 100
_UNUSED_WRITER = object()


def check_code(code: str) -> None:
    """Raise LabelError unless ``code`` only uses characters every output can encode."""
    if not code:
        raise LabelError("the code to encode is empty")
    bad = sorted(set(code) - CODE_CHARACTERS)
    if bad:
        raise LabelError(
            f"code {code!r} contains {''.join(bad)!r}; codes may use printable ASCII "
            "except space, ^, ~ and >"
        )


@dataclass(frozen=True)
class Code128Symbol:
    """A Code 128 symbol: its bar/space modules and the symbol values behind them."""

    text: str
    modules: str  # "1" = bar module, "0" = space module; start .. stop, no quiet zone
    values: tuple[int, ...]  # start character and data, without check character and stop

    @property
    def width_modules(self) -> int:
        return len(self.modules)


@lru_cache(maxsize=4096)
def encode_code128(text: str) -> Code128Symbol:
    """Encode ``text`` as Code 128 with python-barcode (it picks code sets B/C).

    The symbol values are recovered from the module pattern so the ZPL output can
    ask the printer for exactly the same code sets, hence the same width.
    """
    check_code(text)
    # Any truthy writer stops python-barcode from building its default SVG
    # writer, which we never use; build() only runs the encoder.
    modules = barcode.get_barcode_class("code128")(text, writer=_UNUSED_WRITER).build()[0]
    body = modules[: -len(_STOP)]
    if not modules.endswith(_STOP) or len(body) % 11:
        raise AssertionError(f"unexpected Code 128 pattern from python-barcode for {text!r}")
    values = tuple(_VALUE_OF_PATTERN[body[i : i + 11]] for i in range(0, len(body), 11))
    return Code128Symbol(text=text, modules=modules, values=values[:-1])


def code128_zpl_data(symbol: Code128Symbol) -> str:
    """^FD data for a ZPL ^BC in mode N that reproduces ``symbol`` value by value.

    Uses ZPL invocation codes: ">:" start B, ">;" start C, ">5" code C, ">6" code
    B; subset C data is written as digit pairs, subset B data as the characters.
    """
    start, *data = symbol.values
    if start == _START_B and _CODE_C not in data:
        return ">:" + symbol.text  # all subset B: the characters are the data
    subset = "C" if start == _START_C else "B"
    out = [">;" if subset == "C" else ">:"]
    for value in data:
        if subset == "C" and value == _CODE_B:
            out.append(">6")
            subset = "B"
        elif subset == "C" and value < 100:
            out.append(f"{value:02d}")
        elif subset == "B" and value == _CODE_C:
            out.append(">5")
            subset = "C"
        elif subset == "B" and chr(value + 32) in CODE_CHARACTERS:
            out.append(chr(value + 32))
        else:
            raise AssertionError(f"Code 128 value {value} in subset {subset} not expected")
    return "".join(out)


# ECC200 square symbol sizes and their data codeword capacity (ISO/IEC 16022).
DATAMATRIX_SQUARE_CAPACITY = (
    (10, 3),
    (12, 5),
    (14, 8),
    (16, 12),
    (18, 18),
    (20, 22),
    (22, 30),
    (24, 36),
    (26, 44),
    (32, 62),
    (36, 86),
    (40, 114),
    (44, 144),
    (48, 174),
    (52, 204),
    (64, 280),
    (72, 368),
    (80, 456),
    (88, 576),
    (96, 696),
    (104, 816),
    (120, 1050),
    (132, 1304),
    (144, 1558),
)


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
    for size, capacity in DATAMATRIX_SQUARE_CAPACITY:
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
    if rows != columns:
        raise AssertionError(f"zxing-cpp returned a {rows}x{columns} DataMatrix for {text!r}")
    planned = max(rows, _square_size_for(_ascii_codewords(text)))
    return DataMatrixSymbol(text=text, size=rows, matrix=bytes(image), planned_size=planned)
