"""Aliquot barcodes: short random codes with an ISO 7064 MOD 37-2 check character.

A barcode is ``BODY_LENGTH`` random characters from ``BODY_ALPHABET`` followed by
one check character, e.g. ``7KQ3M9XW4``. It is drawn at random so that it carries
no patient, visit or date information: a tube found on a bench reveals nothing.

The check character follows ISO/IEC 7064 MOD 37-2 (pure system, radix 2), which
detects every single-character substitution and every transposition of two
adjacent characters, the two commonest errors when a code is typed by hand.

Randomness alone does not make a code unique: the caller must store barcodes
under a unique constraint and draw again on collision (with 32**8 ≈ 1.1e12
bodies, a collision among 100 000 aliquots has a probability of about 0.5 %).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

__all__ = [
    "BODY_ALPHABET",
    "BODY_LENGTH",
    "ISO7064_ALPHABET",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "BarcodeError",
    "check_character",
    "new_aliquot_barcode",
    "normalize",
    "validate",
]

ISO7064_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_MODULUS = len(ISO7064_ALPHABET)  # 37, a prime: what makes every weight invertible
_RADIX = 2
_VALUES = {char: value for value, char in enumerate(ISO7064_ALPHABET)}

# 0/O and 1/I are confused when a label is read by eye, so random bodies never
# use them; 32 symbols remain, exactly 5 bits each.
BODY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
BODY_LENGTH = 8

MIN_LENGTH = 2  # one data character and the check character
MAX_LENGTH = 12

# Accepted on input: any uppercase alphanumeric, not only BODY_ALPHABET, so a
# check character of 0, 1, I or O (which MOD 37-2 does produce) is valid, and so
# codes of other lengths keep working if BODY_LENGTH ever changes.
_ACCEPTED = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Only ASCII letters are uppercased: str.upper() would turn the dotless "ı" into
# "I" or the long "ſ" into "S" and let a foreign character pass as a valid code.
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# A random source that keeps yielding bodies whose check is '*' is broken (the
# chance per draw is 1/37); failing beats looping forever.
_MAX_DRAWS = 1000


class BarcodeError(ValueError):
    """A scanned or typed barcode is unusable; ``str(err)`` is the message for the user."""


def _checksum(code: str) -> int:
    """Return the MOD 37-2 residue of ``code``; a code with a valid check character gives 1."""
    residue = 0
    for char in code:
        residue = (residue * _RADIX + _VALUES[char]) % _MODULUS
    return residue


def check_character(body: str) -> str:
    """Return the ISO 7064 MOD 37-2 check character to append to ``body``.

    ``body`` must consist of characters of ``ISO7064_ALPHABET``; the result is
    one of them too, and may be ``'*'``.
    """
    unknown = set(body) - _VALUES.keys()
    if unknown:
        raise ValueError(f"not in the ISO 7064 MOD 37-2 character set: {sorted(unknown)}")
    return ISO7064_ALPHABET[(1 - _RADIX * _checksum(body)) % _MODULUS]


def normalize(raw: str) -> str:
    """Strip surrounding whitespace (scanners append CR, LF or TAB) and uppercase ASCII letters."""
    return raw.strip().translate(_ASCII_UPPER)


def validate(raw: str) -> str:
    """Return the normalized barcode, or raise ``BarcodeError`` with a message for the user.

    The check character is verified before any lookup, so a mistyped code is
    reported as invalid rather than as "not found".
    """
    code = normalize(raw)
    if not code:
        raise BarcodeError("empty barcode")
    if not MIN_LENGTH <= len(code) <= MAX_LENGTH or not set(code) <= _ACCEPTED:
        raise BarcodeError("not a valid barcode (characters)")
    if _checksum(code) != 1:
        raise BarcodeError("not a valid barcode (check character)")
    return code


def new_aliquot_barcode(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """Draw a new random aliquot barcode: ``BODY_LENGTH`` characters plus the check character.

    ``randbelow(n)`` must return an integer in ``[0, n)``; the default is the
    cryptographic ``secrets.randbelow`` so codes cannot be predicted from each other.
    """
    for _ in range(_MAX_DRAWS):
        body = "".join(BODY_ALPHABET[randbelow(len(BODY_ALPHABET))] for _ in range(BODY_LENGTH))
        check = check_character(body)
        # MOD 37-2 yields '*' for about 1 body in 37. It is redrawn, not replaced,
        # because '*' is the start/stop delimiter of Code 39 (it cannot be encoded
        # as data there), a wildcard in search boxes and spreadsheets, and breaks
        # the promise that barcodes are plain alphanumerics. Redrawing the whole
        # body keeps the draw uniform over the remaining codes.
        if check != "*":
            return body + check
    raise RuntimeError(f"randbelow gave {_MAX_DRAWS} bodies in a row with a '*' check character")
