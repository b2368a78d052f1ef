"""TW_NHI_CARD: twelve digits next to 健保."""

from __future__ import annotations

import pytest

from recognizers.tw_nhi_card import TwNhiCardRecognizer
from tests.helpers import found

REC = TwNhiCardRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # found: in context, evasions (full-width, spaces)
    ("健保卡號 0000 1234 5678，請協助補卡。", ["0000 1234 5678"]),
    ("健保卡號碼000012345678", ["000012345678"]),
    # not found: no context, wrong check digit or length, part of a longer spaced-out number
    ("流水號000012345678", []),
])
def test_nhi_card(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
