"""Units of laboratory results: spellings and conversions (biobank/assays/units.py)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biobank.assays import units
from biobank.assays.units import UnitError, convert, normalize_unit

MASS = [
    "g/L",
    "g/dL",
    "mg/mL",
    "mg/dL",
    "mg/L",
    "µg/mL",
    "µg/dL",
    "µg/L",
    "ng/mL",
    "ng/dL",
    "ng/L",
    "pg/mL",
]
MICRO = "\u00b5"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("g/l", "g/L"),
        ("G/DL", "g/dL"),
        ("mg/dl", "mg/dL"),
        ("MG/L", "mg/L"),
        ("ug/L", "µg/L"),
        ("mcg/L", "µg/L"),
        ("\u03bcg/L", "µg/L"),  # Greek small letter mu
        ("\u00b5g/l", "µg/L"),  # micro sign
        ("\u039cG/ML", "µg/mL"),  # "µg/mL".upper(): the Greek capital Mu
        ("ug/ml", "µg/mL"),
        ("pg/ml", "pg/mL"),
        ("ng/l", "ng/L"),
        ("ng/ml", "ng/mL"),
        (" mg / dL ", "mg/dL"),
        ("g/100 mL", "g/dL"),
        ("UI/mL", "IU/mL"),
        ("", ""),
        ("  ", ""),
        ("ratio", ""),
        ("Ratio", ""),
        ("%", "%"),
    ],
)
def test_normalize_unit_maps_every_spelling_to_the_canonical_one(written, canonical):
    assert normalize_unit(written) == canonical


def test_micro_is_always_the_micro_sign_never_the_greek_mu():
    for unit in units.UNITS:
        assert "\u03bc" not in unit
    assert normalize_unit("\u03bcg/L") == f"{MICRO}g/L"


def test_every_canonical_unit_is_its_own_normal_form():
    for unit in units.UNITS:
        assert normalize_unit(unit) == unit


def test_an_unknown_unit_is_named_in_the_error():
    with pytest.raises(UnitError, match='unknown unit "furlongs/L"'):
        normalize_unit("furlongs/L")


def test_the_required_mass_units_and_the_ratio_are_known():
    for unit in [*MASS, ""]:
        assert unit in units.UNITS


@pytest.mark.parametrize(("a", "b"), list(itertools.product(MASS, repeat=2)))
def test_every_pair_of_mass_units_round_trips(a, b):
    for value in (1.0, 0.3, 12.5, 1920.0, 7.123456789e-3, 3.3e5):
        back = convert(convert(value, a, b), b, a)
        assert math.isclose(back, value, rel_tol=1e-12, abs_tol=0.0)


@given(
    value=st.floats(min_value=1e-12, max_value=1e12, allow_nan=False),
    a=st.sampled_from(units.UNITS),
    b=st.sampled_from(units.UNITS),
)
def test_any_value_round_trips_between_units_of_one_dimension(value, a, b):
    if not units.is_convertible(a, b):
        with pytest.raises(UnitError, match="cannot convert"):
            convert(value, a, b)
        return
    assert math.isclose(convert(convert(value, a, b), b, a), value, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "g/dL", "g/L", 10),
        (10, "g/L", "g/dL", 1),
        (3, "g/L", "g/dL", 0.3),  # one rounding: not 0.30000000000000004
        (1, "ng/mL", "pg/mL", 1000),
        (1, "pg/mL", "ng/L", 1),
        (1, "mg/dL", "mg/L", 10),
        (1, "g/L", "mg/dL", 100),
        (1, "mg/L", "mg/dL", 0.1),
        (1, "µg/L", "ng/mL", 1),
        (1, "µg/mL", "mg/L", 1),
        (1920, "pg/mL", "ng/mL", 1.92),
        (1, "IU/mL", "mIU/mL", 1000),
        (1, "mmol/L", "µmol/L", 1000),
    ],
)
def test_known_conversions_are_exact(value, source, target, expected):
    assert convert(value, source, target) == expected


def test_the_same_unit_leaves_the_value_unchanged():
    for unit in units.UNITS:
        assert convert(0.1 + 0.2, unit, unit) == 0.1 + 0.2


def test_convert_accepts_any_spelling():
    assert convert(1.5, "G/DL", "g/l") == 15
    assert convert(2, "mcg/L", "\u03bcg/L") == 2


def test_a_ratio_converts_only_to_a_ratio():
    assert convert(1.3, "", "ratio") == 1.3
    with pytest.raises(UnitError, match="cannot convert g/L to a dimensionless ratio"):
        convert(1, "g/L", "")
    with pytest.raises(UnitError, match=r"cannot convert a dimensionless ratio .* to mg/L"):
        convert(1, "ratio", "mg/L")


def test_incompatible_units_name_both():
    with pytest.raises(UnitError, match=r"^cannot convert g/L to IU/mL$"):
        convert(1, "g/L", "IU/mL")
    with pytest.raises(UnitError, match="cannot convert mg/L to mmol/L"):
        convert(1, "mg/L", "mmol/L")


def test_an_unknown_unit_cannot_be_converted():
    with pytest.raises(UnitError, match='unknown unit "g/cup"'):
        convert(1, "g/cup", "g/L")


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)
