"""TW_BANK_ACCOUNT: 10-16 digits with an account word; a joined bank code is inside the span."""

from __future__ import annotations

import pytest

from recognizers.tw_bank_account import TwBankAccountRecognizer
from tests.helpers import found

REC = TwBankAccountRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    ("退款請匯入帳號822-123456789012，戶名請留空。", ["822-123456789012"]),
    ("轉帳到(700)0001234-0012345即可。", ["(700)0001234-0012345"]),
    ("銀行代碼812，帳號：068-101-209-00000", ["068-101-209-00000"]),
    ("存摺帳號 ０１２３４５６７８９０１", ["０１２３４５６７８９０１"]),
    ("Please wire to account no. 1234 5678 9012", ["1234 5678 9012"]),
    ("戶名\t帳號\n王小明\t12345678901234", ["12345678901234"]),
    # traps: amounts, phone numbers, numbers without an account word, too short or too long
    ("本月匯款金額新臺幣1234567890元，請核對。", []),
    ("匯款 3000000000 元已入帳", []),
    ("帳號 0912345678 是他的手機", []),
    ("銀行客服專線0800-200959", []),
    ("銀行電話 02-2349-3456", []),
    ("訂單編號1234567890123請查詢", []),
    ("帳號123456789", []),
    ("帳號12345678901234567", []),
])
def test_bank_account(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
