"""Code 128 encoding through python-barcode, checked value by value."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labels.code128 import encode_code128
from labels.symbols import CODE_CHARACTERS


@pytest.mark.parametrize(
    ("code", "values", "zpl"),
    [
        ("7KQ2M9XWPR3A", (104, 23, 43, 49, 18, 45, 25, 56, 55, 48, 50, 19, 33), ">:7KQ2M9XWPR3A"),
        ("BX-0012", (104, 34, 56, 13, 99, 0, 12), ">:BX->50012"),
        ("123456", (105, 12, 34, 56), ">;123456"),
        ("1234A", (105, 12, 34, 100, 33), ">;1234>6A"),
        # python-barcode 0.16 alone encodes these as "AES" and "12AB".
        ("99AES", (105, 99, 100, 33, 37, 51), ">;99>6AES"),
        ("9912AB", (105, 99, 12, 100, 33, 34), ">;9912>6AB"),
    ],
)
def test_symbol_values_and_zpl_invocations(code, values, zpl):
    symbol = encode_code128(code)
    assert symbol.values == values
    assert symbol.zpl_data == zpl
    # start + data + check (11 modules each) + stop (13 modules)
    assert symbol.width_modules == 11 * (len(values) + 1) + 13


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(sorted(CODE_CHARACTERS) + list("0123456789") * 5), min_size=1))
def test_every_code_round_trips_through_the_symbol_values(code):
    # encode_code128 decodes its own values and raises if they differ from the code.
    symbol = encode_code128(code)
    assert symbol.text == code
