"""TW_PASSPORT: nine digits next to 護照 / passport."""

from __future__ import annotations

import pytest

from recognizers.tw_passport import TwPassportRecognizer
from tests.helpers import found

REC = TwPassportRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # found: in context, evasions (full-width, spaces)
    ("護照號碼：312345678，效期至2030年。", ["312345678"]),
    ("passport no. 312 345 678", ["312 345 678"]),
    # not found: no context, wrong check digit or length, part of a longer spaced-out number
    ("訂單 312345678", []),
    ("護照 3123456789", []),
])
def test_passport(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
