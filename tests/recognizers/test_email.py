"""EMAIL_ADDRESS: addresses in Chinese and English sentences, traps and obfuscations."""

from __future__ import annotations

import pytest

from recognizers.email import EmailRecognizer
from tests.helpers import found

REC = EmailRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # plain
    ("電子郵件huang.nrqdx759@mail.police.gov.tw，反映噪音問題。", ["huang.nrqdx759@mail.police.gov.tw"]),
    ("客戶的信箱是linjazu348@yahoo.com.tw，請回覆。", ["linjazu348@yahoo.com.tw"]),
    ("Send it to first.last+tag@example.co.uk).", ["first.last+tag@example.co.uk"]),
    ("mailto:o'brien_x-1@sub.example.org", ["o'brien_x-1@sub.example.org"]),
    ("兩個信箱：a@example.com、b.c@example.org", ["a@example.com", "b.c@example.org"]),
    # traps
    ("@user 請看一下", []),
    ("x@y", []),
    ("foo@bar.c0m", []),
    ("版本 v1.2.3 與 3.14 的差異", []),
    ("請寄到我的信箱", []),
    ("把 icon@2x.png 換成 logo@3x.jpg", []),
    # evasions and obfuscations
    ("信箱ｗａｎｇ＿ｒｂ＠ｔｐｄ．ｇｏｖ．ｔｗ。", ["ｗａｎｇ＿ｒｂ＠ｔｐｄ．ｇｏｖ．ｔｗ"]),
    ("信箱 wang_rb ＠ tpd.gov.tw", ["wang_rb ＠ tpd.gov.tw"]),
    ("信箱 wang\u200b_rb@tpd.\u200bgov.tw", ["wang\u200b_rb@tpd.\u200bgov.tw"]),
    ("寫信給 a.b [at] example [dot] com 吧", ["a.b [at] example [dot] com"]),
    ("a(at)example(dot)com", ["a(at)example(dot)com"]),
    ("WANG_RB@TPD.GOV.TW", ["WANG_RB@TPD.GOV.TW"]),
])
def test_email(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
