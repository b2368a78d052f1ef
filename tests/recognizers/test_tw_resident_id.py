"""TW_RESIDENT_ID: new and old forms, checksums, traps and evasions."""

from __future__ import annotations

import pytest

from recognizers.tw_resident_id import TwResidentIdRecognizer
from tests.helpers import found

REC = TwResidentIdRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # new form [A-Z][89]\d{8}
    ("外籍移工阮氏梅的居留證號碼是A800000014，請翻譯在職證明。", ["A800000014"]),
    ("居留證統一證號：A900000007", ["A900000007"]),
    ("Your resident certificate R836362614 will expire next month.", ["R836362614"]),
    ("M987654329", ["M987654329"]),
    # old form [A-Z][A-D]\d{8}
    ("外僑居留證AA00000009已過期", ["AA00000009"]),
    ("居留證號碼AB12345677，國籍越南。", ["AB12345677"]),
    ("ARC number FC12345674, issued 2019.", ["FC12345674"]),
    ("名單：\nTD60037613\nGC90132950", ["TD60037613", "GC90132950"]),
    # invalid checksum
    ("居留證號碼A800000015", []),
    ("居留證號碼AB12345678", []),
    ("居留證號碼AC12345678", []),
    # national IDs are a different entity
    ("身分證字號A123456789", []),
    # traps: 統一發票 numbers share the old form's shape
    ("這張統一發票號碼AB12345677有中獎嗎？", []),
    ("invoice no. AB12345677", []),
    ("版本代號XAB12345677", []),
    ("AE12345678", []),
    # evasions
    ("居留證ＡＢ１２３４５６７７", ["ＡＢ１２３４５６７７"]),
    ("居留證ab12345677", ["ab12345677"]),
    ("居留證 A 8 0 0 0 0 0 0 1 4", ["A 8 0 0 0 0 0 0 1 4"]),
    ("居留證FC-1234-5674", ["FC-1234-5674"]),
    ("居留證FC1234\u200b5674", ["FC1234\u200b5674"]),
    ("居留證A\u00a0800\u00a0000\u00a0014", ["A\u00a0800\u00a0000\u00a0014"]),
])
def test_resident_id(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
