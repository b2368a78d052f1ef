"""Check digits of Taiwanese identifiers and payment cards, as pure functions.

Sources: ``reference/identifiers.md`` (內政部 national ID and 內政部移民署 resident certificate
letter table and weights; 財政部 統一編號 rule of 2023-04-01) and ISO/IEC 7812 (Luhn).

``VALIDATORS`` maps a name to a validator so that recognizers declared as data (YAML) can pick one.
Every validator takes the value as written (gaps allowed, any case) and never raises.
"""

from __future__ import annotations

from collections.abc import Callable

from recognizers.text import compact

# Area letter -> two-digit code. Note the irregular tail: I, O, W..Z were added after the others.
LETTER_CODES: dict[str, int] = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}
_ID_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
_UBN_WEIGHTS = (1, 2, 1, 2, 1, 2, 4, 1)

NATIONAL_SEX_DIGITS = "12"
NEW_RESIDENT_SEX_DIGITS = "89"
OLD_RESIDENT_LETTERS = "ABCD"


def _id_form(value: str) -> str | None:
    """The compacted 10-character ID if it has a known shape, else None."""
    v = compact(value)
    if len(v) != 10 or v[0] not in LETTER_CODES or not v[2:].isdigit():
        return None
    if v[1] not in NATIONAL_SEX_DIGITS + NEW_RESIDENT_SEX_DIGITS + OLD_RESIDENT_LETTERS:
        return None
    return v


def national_id_valid(value: str) -> bool:
    """True when ``value`` has a correct check digit as a national ID or a resident certificate number.

    Accepts ``[A-Z][12]\\d{8}`` (national ID), ``[A-Z][89]\\d{8}`` (new resident certificate) and
    ``[A-Z][A-D]\\d{8}`` (old resident certificate, second letter counted as its code mod 10).
    """
    v = _id_form(value)
    if v is None:
        return False
    code = LETTER_CODES[v[0]]
    second = LETTER_CODES[v[1]] % 10 if v[1].isalpha() else int(v[1])
    digits = (code // 10, code % 10, second, *(int(c) for c in v[2:]))
    return sum(w * d for w, d in zip(_ID_WEIGHTS, digits, strict=True)) % 10 == 0


def tw_national_id_valid(value: str) -> bool:
    """A national ID (sex digit 1 or 2) with a correct check digit."""
    v = _id_form(value)
    return v is not None and v[1] in NATIONAL_SEX_DIGITS and national_id_valid(v)


def tw_resident_id_valid(value: str) -> bool:
    """A resident certificate number, new (8/9) or old (A-D) form, with a correct check digit."""
    v = _id_form(value)
    return (v is not None and v[1] in NEW_RESIDENT_SEX_DIGITS + OLD_RESIDENT_LETTERS
            and national_id_valid(v))


def ubn_valid(value: str) -> bool:
    """統一編號: weights 1,2,1,2,1,2,4,1; digit sums of the products; total divisible by 5.

    Since 2023-04-01 the total must be divisible by 5 (which includes every number issued under
    the old divisible-by-10 rule). When the 7th digit is 7 its product 28 counts as 10 or as 1,
    so total + 1 is accepted as well.
    """
    v = compact(value)
    if len(v) != 8 or not v.isdigit():
        return False
    total = 0
    for weight, ch in zip(_UBN_WEIGHTS, v, strict=True):
        product = weight * int(ch)
        total += product // 10 + product % 10
    return total % 5 == 0 or (v[6] == "7" and (total + 1) % 5 == 0)


def luhn_valid(value: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    v = compact(value)
    if len(v) < 2 or not v.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(v)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "tw_national_id": tw_national_id_valid,
    "tw_resident_id": tw_resident_id_valid,
    "tw_ubn": ubn_valid,
    "luhn": luhn_valid,
}
