"""TW_UBN: eight digits with a 統一編號 context word and a valid check digit."""

from __future__ import annotations

import pytest

from recognizers.tw_ubn import TwUbnRecognizer
from tests.helpers import found

REC = TwUbnRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # found: in context, evasions (full-width, spaces)
    ("本公司統一編號為22099131，請開立發票。", ["22099131"]),
    ("買受人統編：04595252", ["04595252"]),          # valid only under the 2023 rule
    ("廠商統編 10458574", ["10458574"]),             # 7th digit 7
    ("統編２２０９９１３１", ["２２０９９１３１"]),
    ("統一編號 2209 9131", ["2209 9131"]),
    # not found: no context, wrong check digit or length, part of a longer spaced-out number
    ("22099131", []),                               # no context
    ("統一編號12345678", []),                        # bad checksum
    ("統編 220991311", []),
    ("公司電話 0 9 1 2 2 0 9 9 1 3 1", []),
])
def test_ubn(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
