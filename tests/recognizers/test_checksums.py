"""Check-digit functions, with the examples of reference/identifiers.md."""

from __future__ import annotations

import pytest

from recognizers.checksums import (
    VALIDATORS,
    luhn_valid,
    national_id_valid,
    tw_national_id_valid,
    tw_resident_id_valid,
    ubn_valid,
)


@pytest.mark.parametrize(("value", "national", "resident"), [
    # national IDs from identifiers.md
    ("A123456789", True, False),
    ("A223456781", True, False),
    ("R123456783", True, False),
    ("B142610160", True, False),
    # letters with irregular codes: I=34, O=35, W=32, X=30, Y=31, Z=33
    ("I102030401", True, False),
    ("O298765430", True, False),
    ("W111222335", True, False),
    ("Z188887774", True, False),
    # new resident form [A-Z][89]
    ("A800000014", False, True),
    ("A900000007", False, True),
    ("R836362614", False, True),
    # old resident form [A-Z][A-D]: second letter counts as its code mod 10
    ("AA00000009", False, True),
    ("AB12345677", False, True),
    ("FC12345674", False, True),
    ("TD60037613", False, True),
    # published "valid" examples that fail the checksum
    ("B287654321", False, False),
    ("AC12345678", False, False),
    # one digit off
    ("A123456788", False, False),
    ("A800000015", False, False),
    # wrong shapes
    ("A323456789", False, False),
    ("AE12345678", False, False),
    ("1123456789", False, False),
    ("A12345678", False, False),
    ("", False, False),
])
def test_id_checksums(value: str, national: bool, resident: bool) -> None:
    assert national_id_valid(value) is (national or resident)
    assert tw_national_id_valid(value) is national
    assert tw_resident_id_valid(value) is resident


@pytest.mark.parametrize("value", ["a123456789", "A 123 456 789", "A-123-456-789", "A123\u200b456789"])
def test_id_checksum_ignores_case_and_gaps(value: str) -> None:
    assert national_id_valid(value)


@pytest.mark.parametrize(("value", "valid"), [
    ("22099131", True),   # divisible by 10: valid under the old and the new rule
    ("04595257", True),
    ("04595252", True),   # divisible by 5 only: valid since 2023-04-01
    ("10458575", True),   # 7th digit 7: 28 counts as 10 ...
    ("10458574", True),   # ... or as 1 (sum + 1)
    ("12345678", False),
    ("22099132", False),
    ("2209913", False),
    ("2209913a", False),
])
def test_ubn(value: str, valid: bool) -> None:
    assert ubn_valid(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("4111111111111111", True),
    ("4111 1111 1111 1111", True),
    ("378282246310005", True),
    ("5555555555554444", True),
    ("4111111111111112", False),
    ("1", False),
    ("41x1", False),
])
def test_luhn(value: str, valid: bool) -> None:
    assert luhn_valid(value) is valid


def test_validator_registry() -> None:
    assert set(VALIDATORS) == {"tw_national_id", "tw_resident_id", "tw_ubn", "luhn"}
    assert VALIDATORS["tw_national_id"]("A123456789")
    assert not VALIDATORS["tw_national_id"]("A800000014")
    assert VALIDATORS["tw_resident_id"]("A800000014")
    assert VALIDATORS["tw_ubn"]("22099131")
    assert VALIDATORS["luhn"]("4111111111111111")
