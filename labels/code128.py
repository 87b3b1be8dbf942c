"""Code 128 through python-barcode's encoder, checked and described for ZPL.

The module pattern comes from python-barcode (``Code128(text).build()``) with
one bug fixed in a subclass (see ``_Code128``). The symbol values behind the
pattern are recovered and decoded back to text, so a wrong encoding fails loudly
instead of printing a label that scans as another sample's code.
"""

from dataclasses import dataclass
from functools import lru_cache

from barcode.charsets import code128 as charset
from barcode.codex import Code128

from labels.symbols import check_code

_VALUE_OF_PATTERN = {pattern: value for value, pattern in enumerate(charset.CODES)}
_STOP = charset.STOP + "11"  # stop character plus its final 2-module bar
_START_B, _START_C, _CODE_C, _CODE_B, _CODE_A = 104, 105, 99, 100, 101
_UNUSED_WRITER = object()


class _Code128(Code128):
    """python-barcode 0.16's Code128 with its start-code shortcut fixed.

    It always starts in code set C and then rewrites "start C, switch to X" as
    "start X". It also takes the *data* value 99 (digit pair "99") for "switch to
    C", so a code starting "99" and then letters lost its "99": "99AES" was
    encoded as "AES". In code set C only 100 and 101 are switches.
    """

    def _try_to_optimize(self, encoded: list[int]) -> list[int]:
        if encoded[0] == _START_C and encoded[1] in (_CODE_B, _CODE_A):
            encoded[:2] = [charset.TO[encoded[1]]]
        return encoded


@dataclass(frozen=True)
class Code128Symbol:
    """A Code 128 symbol: its bar/space modules and the symbol values behind them."""

    text: str
    modules: str  # "1" = bar module, "0" = space module; start .. stop, no quiet zone
    values: tuple[int, ...]  # start character and data, without check character and stop
    zpl_data: str  # ^FD data for ZPL ^BC mode N giving exactly these values

    @property
    def width_modules(self) -> int:
        return len(self.modules)


@lru_cache(maxsize=4096)
def encode_code128(text: str) -> Code128Symbol:
    """Encode ``text`` as Code 128 with python-barcode (it picks code sets B and C)."""
    check_code(text)
    # Any truthy writer stops python-barcode from building its default SVG
    # writer, which we never use; build() only runs the encoder.
    modules = _Code128(text, writer=_UNUSED_WRITER).build()[0]
    body = modules[: -len(_STOP)]
    if not modules.endswith(_STOP) or len(body) % 11:
        raise AssertionError(f"unexpected Code 128 pattern from python-barcode for {text!r}")
    *values, check = (_VALUE_OF_PATTERN[body[i : i + 11]] for i in range(0, len(body), 11))
    weighted = values[0]
    for position, value in enumerate(values[1:], start=1):
        weighted += position * value
    decoded, zpl_data = _interpret(values)
    if weighted % 103 != check or decoded != text:
        raise AssertionError(f"python-barcode encoded {text!r} as {decoded!r}")
    return Code128Symbol(text, modules, tuple(values), zpl_data)


def _interpret(values: list[int]) -> tuple[str, str]:
    """Decode symbol values to (text, ZPL ^BC mode N data).

    ZPL invocation codes: ">:" start B, ">;" start C, ">6" code B, ">5" code C;
    code set C data is written as digit pairs, code set B data as the characters
    (codes never contain ^, ~ or >, which ZPL would need escaped here).
    """
    start, *data = values
    subset = {_START_B: "B", _START_C: "C"}.get(start)
    if subset is None:
        raise AssertionError(f"unexpected Code 128 start value {start}")
    text, zpl = [], [">:" if subset == "B" else ">;"]
    for value in data:
        if subset == "B" and value < 95:
            text.append(chr(value + 32))
            zpl.append(text[-1])
        elif subset == "C" and value < 100:
            text.append(f"{value:02d}")
            zpl.append(text[-1])
        elif subset == "B" and value == _CODE_C:
            subset = "C"
            zpl.append(">5")
        elif subset == "C" and value == _CODE_B:
            subset = "B"
            zpl.append(">6")
        else:
            raise AssertionError(f"unexpected Code 128 value {value} in code set {subset}")
    return "".join(text), "".join(zpl)
