import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biobank.samples import barcodes
from biobank.samples.barcodes import (
    BODY_ALPHABET,
    BODY_LENGTH,
    ISO7064_ALPHABET,
    BarcodeError,
    check_character,
    new_aliquot_barcode,
    normalize,
    validate,
)


def reference_is_valid(code: str) -> bool:
    """ISO 7064 MOD 37-2 written as the standard's weighted sum, independent of the module.

    Character i (from the left) of an n-character code has weight 2**(n-1-i); a code
    with its check character is valid when the weighted sum is congruent to 1 mod 37.
    """
    n = len(code)
    total = sum(ISO7064_ALPHABET.index(c) * pow(2, n - 1 - i, 37) for i, c in enumerate(code))
    return total % 37 == 1


def sample_codes(count: int = 300) -> list[str]:
    rng = random.Random(20240611)  # fixed, so a failure is reproducible
    return [new_aliquot_barcode(rng.randrange) for _ in range(count)]


# -- alphabets ---------------------------------------------------------------


def test_alphabets():
    assert len(ISO7064_ALPHABET) == 37
    assert len(set(ISO7064_ALPHABET)) == 37
    assert len(BODY_ALPHABET) == 32
    assert len(set(BODY_ALPHABET)) == 32
    assert set(BODY_ALPHABET) <= set(ISO7064_ALPHABET)
    assert not set("01IO*") & set(BODY_ALPHABET)
    assert BODY_LENGTH + 1 <= 12


# -- the check character -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "check"),
    [
        # published examples: the stdnum.iso7064.mod_37_2 docstring and doctests
        ("G123489654321", "Y"),
        ("G123498654321", "H"),
    ],
)
def test_reference_vectors(body, check):
    assert check_character(body) == check
    assert reference_is_valid(body + check)
    # 14 characters: valid MOD 37-2, but longer than a barcode may be
    with pytest.raises(BarcodeError, match=r"characters"):
        validate(body + check)


def test_check_character_agrees_with_weighted_sum():
    rng = random.Random(7)
    for _ in range(2000):
        body = "".join(rng.choice(ISO7064_ALPHABET) for _ in range(rng.randint(1, 11)))
        check = check_character(body)
        assert check in ISO7064_ALPHABET
        assert reference_is_valid(body + check)
        # exactly one check character makes the code valid
        assert [c for c in ISO7064_ALPHABET if reference_is_valid(body + c)] == [check]


def test_check_character_can_be_star_and_digits_or_letters():
    produced = {check_character(body) for body in map("".join, itertools.product("AB2Z", repeat=4))}
    assert produced == set(ISO7064_ALPHABET)


def test_check_character_rejects_foreign_characters():
    with pytest.raises(ValueError):
        check_character("abc")


def test_every_single_substitution_is_detected():
    for code in sample_codes():
        for position, original in enumerate(code):
            for replacement in ISO7064_ALPHABET:
                if replacement == original:
                    continue
                typo = code[:position] + replacement + code[position + 1 :]
                assert not reference_is_valid(typo), (code, typo)
                assert barcodes._checksum(typo) != 1, (code, typo)
                with pytest.raises(BarcodeError):
                    validate(typo)


def test_every_adjacent_transposition_is_detected():
    checked = 0
    for code in sample_codes():
        for position in range(len(code) - 1):
            a, b = code[position], code[position + 1]
            if a == b:
                continue
            typo = code[:position] + b + a + code[position + 2 :]
            assert not reference_is_valid(typo), (code, typo)
            with pytest.raises(BarcodeError, match=r"check character"):
                validate(typo)
            checked += 1
    assert checked > 2000  # the sample really exercised transpositions


# -- normalize and validate --------------------------------------------------


def test_normalize_strips_scanner_suffixes_and_uppercases():
    assert normalize(" abc\r\n") == "ABC"
    assert normalize("\tabc\n") == "ABC"
    assert normalize("aBc\r") == "ABC"
    assert normalize("") == ""


def test_normalize_uppercases_ascii_only():
    # str.upper() would map these onto "I" and "S"
    assert normalize("ı") == "ı"
    assert normalize("ſ") == "ſ"


def test_validate_accepts_scanned_and_typed_forms():
    code = sample_codes(1)[0]
    for raw in (
        code,
        code.lower(),
        f"  {code}  ",
        f"{code}\r\n",
        f"{code}\n",
        f"\t{code.lower()}\r",
    ):
        assert validate(raw) == code


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", "\t"])
def test_validate_empty(raw):
    with pytest.raises(BarcodeError) as info:
        validate(raw)
    assert str(info.value) == "empty barcode"


def test_validate_characters():
    code = sample_codes(1)[0]
    bad = [
        code[:4] + " " + code[4:],  # inner space
        code[:4] + "-" + code[4:],
        code[:-1] + "*",  # '*' is never issued
        "A",  # too short to hold a check character
        "A" * 11 + check_character("A" * 11) + "B",  # 13 characters
        "ı" + code[1:],  # non-ASCII letter that str.upper() would turn into I
        "Ａ" + code[1:],  # full-width A
    ]
    for raw in bad:
        with pytest.raises(BarcodeError) as info:
            validate(raw)
        assert str(info.value) == "not a valid barcode (characters)", raw


def test_validate_bad_check_character():
    code = sample_codes(1)[0]
    wrong = next(c for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != code[-1])
    with pytest.raises(BarcodeError) as info:
        validate(code[:-1] + wrong)
    assert str(info.value) == "not a valid barcode (check character)"
    assert isinstance(info.value, ValueError)


def test_validate_length_bounds():
    two = "7" + check_character("7")
    assert validate(two) == two
    twelve = "ABCDEFGHJKL" + check_character("ABCDEFGHJKL")
    assert len(twelve) == 12
    assert validate(twelve) == twelve


# -- generation --------------------------------------------------------------


def test_generated_codes():
    codes = sample_codes()
    for code in codes:
        assert len(code) == BODY_LENGTH + 1 == 9
        assert code.isascii() and code.isalnum() and code.isupper()
        assert set(code[:-1]) <= set(BODY_ALPHABET)
        assert validate(code) == code
    assert len(set(codes)) == len(codes)


def test_default_source_is_secrets():
    codes = {new_aliquot_barcode() for _ in range(200)}
    assert len(codes) == 200
    assert all(validate(code) == code for code in codes)


def test_star_check_character_is_redrawn():
    star_body = next(
        body
        for body in map("".join, itertools.product(BODY_ALPHABET, repeat=BODY_LENGTH))
        if check_character(body) == "*"
    )
    good_body = "23456789"
    assert check_character(good_body) != "*"
    draws = iter([BODY_ALPHABET.index(c) for c in star_body + good_body])
    calls = []

    def randbelow(n):
        calls.append(n)
        return next(draws)

    assert new_aliquot_barcode(randbelow) == good_body + check_character(good_body)
    assert calls == [len(BODY_ALPHABET)] * (2 * BODY_LENGTH)


def test_stuck_random_source_fails_instead_of_looping():
    star_body = next(
        body
        for body in map("".join, itertools.product(BODY_ALPHABET, repeat=BODY_LENGTH))
        if check_character(body) == "*"
    )
    cycle = itertools.cycle([BODY_ALPHABET.index(c) for c in star_body])
    with pytest.raises(RuntimeError):
        new_aliquot_barcode(lambda n: next(cycle))


# -- properties --------------------------------------------------------------

bodies = st.text(alphabet=ISO7064_ALPHABET, min_size=1, max_size=11)


@given(bodies)
def test_any_body_with_its_check_character_is_valid(body):
    code = body + check_character(body)
    assert reference_is_valid(code)
    assert barcodes._checksum(code) == 1
    if "*" not in code:
        assert validate(code) == code
        assert validate(f" {code.lower()}\r\n") == code


@given(
    st.text(alphabet=BODY_ALPHABET, min_size=BODY_LENGTH, max_size=BODY_LENGTH),
    st.integers(min_value=0, max_value=BODY_LENGTH),
    st.sampled_from(ISO7064_ALPHABET),
)
def test_random_bodies_detect_substitution(body, position, replacement):
    code = body + check_character(body)
    if code[position] != replacement:
        typo = code[:position] + replacement + code[position + 1 :]
        assert barcodes._checksum(typo) != 1


@given(st.text(max_size=20))
def test_validate_never_raises_anything_else(raw):
    try:
        code = validate(raw)
    except BarcodeError:
        return
    assert code == normalize(raw)
    assert reference_is_valid(code)
