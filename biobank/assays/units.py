"""Units of laboratory results: their one spelling, and conversion between them.

Laboratories write the same unit many ways ("g/l", "G/DL", "ug/L", "mcg/L", "μg/L" with a
Greek mu). :func:`normalize_unit` maps every accepted spelling to one canonical form, and
:func:`convert` converts a value between two units of the same dimension with factors
taken from a table, so that no conversion factor is ever typed by hand elsewhere.

Units are grouped by dimension; only units of one dimension convert into each other:

* mass concentration (g/L, g/dL, mg/dL, mg/L, µg/mL, ng/mL, pg/mL, ...),
* amount-of-substance concentration (mmol/L, µmol/L, ...),
* international units (IU/mL, mIU/mL, ...) and enzyme units (U/L, ...), kept apart
  because an international unit is defined per substance, not as an amount,
* percent, and the dimensionless ratio, spelled ``""``.

Micro is always the micro sign U+00B5 ("µ"), never the Greek small letter mu U+03BC,
so that two spellings of one unit never compare unequal.

Pure: nothing here touches Flask or the database.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from fractions import Fraction

__all__ = [
    "DIMENSIONLESS",
    "UNITS",
    "UnitError",
    "convert",
    "dimension",
    "is_convertible",
    "normalize_unit",
]

DIMENSIONLESS = ""
MICRO = "\u00b5"  # the micro sign; NFKC would turn it into the Greek mu U+03BC

_MASS = "mass concentration"
_AMOUNT = "amount-of-substance concentration"
_IU = "international units"
_ENZYME = "enzyme units"
_PERCENT = "percent"
_RATIO = "dimensionless"

# Canonical unit -> (dimension, factor to the dimension's base unit: g/L, mol/L, IU/L,
# U/L, %, 1). Factors are exact decimal fractions, so that the factor between two units is
# exact and a conversion rounds once, not once per unit.
_TABLE: dict[str, tuple[str, Fraction]] = {
    "g/L": (_MASS, Fraction(1)),
    "g/dL": (_MASS, Fraction(10)),
    "mg/mL": (_MASS, Fraction(1)),
    "mg/dL": (_MASS, Fraction(1, 100)),
    "mg/L": (_MASS, Fraction(1, 10**3)),
    "µg/mL": (_MASS, Fraction(1, 10**3)),
    "µg/dL": (_MASS, Fraction(1, 10**5)),
    "µg/L": (_MASS, Fraction(1, 10**6)),
    "ng/mL": (_MASS, Fraction(1, 10**6)),
    "ng/dL": (_MASS, Fraction(1, 10**8)),
    "ng/L": (_MASS, Fraction(1, 10**9)),
    "pg/mL": (_MASS, Fraction(1, 10**9)),
    "mol/L": (_AMOUNT, Fraction(1)),
    "mmol/L": (_AMOUNT, Fraction(1, 10**3)),
    "µmol/L": (_AMOUNT, Fraction(1, 10**6)),
    "nmol/L": (_AMOUNT, Fraction(1, 10**9)),
    "pmol/L": (_AMOUNT, Fraction(1, 10**12)),
    "IU/L": (_IU, Fraction(1)),
    "IU/mL": (_IU, Fraction(10**3)),
    "kIU/L": (_IU, Fraction(10**3)),
    "mIU/mL": (_IU, Fraction(1)),
    "mIU/L": (_IU, Fraction(1, 10**3)),
    "U/L": (_ENZYME, Fraction(1)),
    "U/mL": (_ENZYME, Fraction(10**3)),
    "kU/L": (_ENZYME, Fraction(10**3)),
    "%": (_PERCENT, Fraction(1)),
    DIMENSIONLESS: (_RATIO, Fraction(1)),
}

UNITS: tuple[str, ...] = tuple(_TABLE)

# Spellings beyond "the canonical form in any case": French "UI" for IU, "100 mL" for dL,
# "mcg"/"u" for micro. A dimensionless result is written "ratio" or left empty.
_EXTRA_SPELLINGS = {
    "ratio": DIMENSIONLESS,
    "g/100ml": "g/dL",
    "mg/100ml": "mg/dL",
    "ui/l": "IU/L",
    "ui/ml": "IU/mL",
    "kui/l": "kIU/L",
    "mui/ml": "mIU/mL",
    "mui/l": "mIU/L",
}

_SPACE = re.compile(r"\s+")


def _key(text: str) -> str:
    # NFKC folds full-width letters and the script "ℓ" into plain ones and turns the micro
    # sign into the Greek small mu; lowering turns the capital Mu that upper-casing "µg/mL"
    # gives ("ΜG/ML") into it too; then all three are the micro sign. Case and spacing stop
    # mattering ("mg / dl" is "mg/dL").
    text = unicodedata.normalize("NFKC", text).lower().replace("\u03bc", MICRO)
    return _SPACE.sub("", text)


def _spellings() -> dict[str, str]:
    spellings: dict[str, str] = {}
    for unit in _TABLE:
        key = _key(unit)
        spellings[key] = unit
        if MICRO in key:
            for prefix in ("u", "mc"):
                spellings[key.replace(MICRO, prefix)] = unit
    for spelling, unit in _EXTRA_SPELLINGS.items():
        spellings[_key(spelling)] = unit
    return spellings


_SPELLINGS = _spellings()


class UnitError(ValueError):
    """A unit that is not known, or two units that cannot be converted into each other."""


@functools.lru_cache(maxsize=256)
def normalize_unit(text: str) -> str:
    """Return the canonical spelling of ``text`` ("g/l" -> "g/L", "ug/L" -> "µg/L").

    ``""`` and ``"ratio"`` are the dimensionless unit ``""``. Raises :class:`UnitError`
    naming the unit when it is not one of :data:`UNITS` in any accepted spelling.
    """
    try:
        return _SPELLINGS[_key(text)]
    except KeyError:
        known = ", ".join(unit or '"" (ratio)' for unit in UNITS)
        raise UnitError(f'unknown unit "{text.strip()}" (known units: {known})') from None


def dimension(unit: str) -> str:
    """Return the dimension of ``unit`` ("mass concentration", "dimensionless", ...)."""
    return _TABLE[normalize_unit(unit)][0]


def is_convertible(from_unit: str, to_unit: str) -> bool:
    """Whether values in ``from_unit`` convert into ``to_unit`` (same dimension)."""
    return dimension(from_unit) == dimension(to_unit)


def _label(unit: str) -> str:
    return unit or "a dimensionless ratio (no unit)"


@functools.lru_cache(maxsize=256)
def _factor(from_unit: str, to_unit: str) -> Fraction:
    source, target = normalize_unit(from_unit), normalize_unit(to_unit)
    (from_dimension, from_factor), (to_dimension, to_factor) = _TABLE[source], _TABLE[target]
    if from_dimension != to_dimension:
        raise UnitError(f"cannot convert {_label(source)} to {_label(target)}")
    return from_factor / to_factor


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from ``from_unit`` into ``to_unit`` (any accepted spellings).

    The same unit returns the value unchanged. Raises :class:`UnitError` for an unknown
    unit or for units of different dimensions ("cannot convert g/L to IU/mL").
    """
    factor = _factor(from_unit, to_unit)
    value = float(value)
    # Every factor is a power of ten: dividing by 10 rounds once, where multiplying by the
    # inexact float 0.1 would give 3 g/L = 0.30000000000000004 g/dL.
    if factor.denominator == 1:
        return value * factor.numerator
    if factor.numerator == 1:
        return value / factor.denominator
    return value * float(factor)
