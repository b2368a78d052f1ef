"""CREDIT_CARD: issuer prefix, plausible grouping and a valid Luhn digit."""

from __future__ import annotations

import pytest

from recognizers.credit_card import CreditCardRecognizer
from tests.helpers import found

REC = CreditCardRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # found: in context, evasions (full-width, spaces)
    ("信用卡號 4111 1111 1111 1111 到期 12/27", ["4111 1111 1111 1111"]),
    ("卡號4111-1111-1111-1111", ["4111-1111-1111-1111"]),
    ("5555555555554444", ["5555555555554444"]),
    ("Amex 3782 822463 10005", ["3782 822463 10005"]),
    ("卡號４１１１１１１１１１１１１１１１", ["４１１１１１１１１１１１１１１１"]),
    # not found: no context, wrong check digit or length, part of a longer spaced-out number
    ("4111 1111 1111 1112", []),                  # Luhn fails
    ("41 11 11 11 11 11 11 11", []),              # odd grouping
    ("訂單 1234567890123", []),                    # no issuer prefix
])
def test_credit_card(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
