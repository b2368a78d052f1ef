"""MEDICAL_RECORD_NUMBER: chart numbers right after 病歷號 / MRN."""

from __future__ import annotations

import pytest

from recognizers.medical_record import MedicalRecordRecognizer
from tests.helpers import found

REC = MedicalRecordRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    ("病歷號A01234567的病人轉診資料請整理成摘要。", ["A01234567"]),
    ("病歷號碼：00123456，住院三天。", ["00123456"]),
    ("MRN 7654321 discharge summary", ["7654321"]),
    ("床號\t病歷號\n12\t0034567\n13\t0034568", ["0034567", "0034568"]),
    # traps: far from the word, no word at all, a phone number
    ("病歷調閱申請書請改寫得更正式，承辦人分機電話為0223456789。", []),
    ("訂單1234567已出貨", []),
])
def test_medical_record(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
