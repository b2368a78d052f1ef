"""TW_NATIONAL_ID: real sentences, checksums, traps and evasions."""

from __future__ import annotations

import pytest

from recognizers.tw_national_id import TwNationalIdRecognizer
from tests.helpers import found, spans

REC = TwNationalIdRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # valid, in context
    ("申請人身分證字號F123456784，請協助填寫申請書。", ["F123456784"]),
    ("報案人王大明（身分證統一編號：K200001232）於昨日到所說明。", ["K200001232"]),
    ("請把名單整理成表格：\n李小華，Z188887774\n陳美玲，B142610160", ["Z188887774", "B142610160"]),
    ("The applicant's ID is W111222335, please translate.", ["W111222335"]),
    # irregular letter codes
    ("身分證號 I102030401 與 O298765430 兩筆資料需要核對。", ["I102030401", "O298765430"]),
    # valid without any context word still counts (fail closed)
    ("A223456781", ["A223456781"]),
    ("請問 R123456783 這個人的資料在哪裡？", ["R123456783"]),
    # the textbook example counts as an ID unless the text discusses the format
    ("他的身分證是A123456789", ["A123456789"]),
    ("幫我寫一個 regex，可以比對像 A123456789 這種格式嗎？", []),
    # invalid checksum: not an ID
    ("身分證字號B287654321，請幫我查詢。", []),
    ("身分證字號F123456785是錯的", []),
    # resident certificate numbers are a different entity
    ("居留證號碼A800000014", []),
    ("居留證號碼AB12345677", []),
    # traps: longer codes, serials, URLs
    ("訂單編號XF1234567840已出貨", []),
    # A letter glued in front is an evasion (xA123456789): a valid check digit behind a letter is
    # an ID, even in a code that only looks like a serial number (fail closed).
    ("序號 AF123456784 不是身分證", ["F123456784"]),
    ("序號 AF123456785 不是身分證", []),
    ("https://example.com/F123456784x", []),
    ("F1234567841", []),
    ("請問身分證字號的檢查碼是怎麼計算的？", []),
    # evasions: full-width, lower case, spaces, NBSP, hyphens, zero-width, ideographic space
    ("身分證字號Ｆ１２３４５６７８４", ["Ｆ１２３４５６７８４"]),
    ("身分證字號f123456784", ["f123456784"]),
    ("身分證 F 1 2 3 4 5 6 7 8 4 請保密", ["F 1 2 3 4 5 6 7 8 4"]),
    ("身分證F\u00a0123\u00a0456\u00a0784", ["F\u00a0123\u00a0456\u00a0784"]),
    ("身分證F-123-456-784", ["F-123-456-784"]),
    ("身分證F－１２３－４５６－７８４", ["F－１２３－４５６－７８４"]),
    ("身分證F123\u200b456\u200b784", ["F123\u200b456\u200b784"]),
    ("身分證Ｆ１２３\u3000４５６\u3000７８４", ["Ｆ１２３\u3000４５６\u3000７８４"]),
])
def test_national_id(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected


def test_valid_id_scores_full_and_reports_original_offsets() -> None:
    text = "身分證Ｆ１２３４５６７８４。"
    [(entity, value, score)] = spans(REC, text)
    assert (entity, value, score) == ("TW_NATIONAL_ID", "Ｆ１２３４５６７８４", 1.0)
