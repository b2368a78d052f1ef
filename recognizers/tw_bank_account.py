"""Recognizer for bank and postal account numbers (帳號, ``TW_BANK_ACCOUNT``).

Format (金融機構 帳號; 中華郵政 存簿儲金): Taiwanese bank accounts are 10 to 16 digits, often written
in groups with hyphens, and usually given with the three-digit bank code (財金資訊 金融機構代號:
822 中國信託, 700 中華郵政, 012 台北富邦 ...) as ``822-123456789012`` or ``(822)123456789012``; the
code is inside the span. A postal savings account is 局號 7 digits + 帳號 7 digits. Digits alone
could be an amount, an order or a phone number, so a match needs an account word close before it
(帳號, 帳戶, 匯款, 轉帳, 存摺, account) or a column headed 帳號; a number followed by a currency
unit is an amount, not an account.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.digits import ALONE_AFTER, ALONE_BEFORE
from recognizers.required_context import RequiredContextRecognizer

BANK_CODE = r"(?:\(\d{3}\)[ \t]?|\d{3}[ \t]?[-/][ \t]?)"
ACCOUNT_DIGITS = r"\d(?:[ \-]?\d){9,15}"
_CURRENCY_AFTER = re.compile(r"[ \t]*(?:元|塊|萬|億|圓|dollars?|NTD|TWD|USD)", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:\$|NT\$?|NTD|TWD|新臺幣|新台幣|台幣|臺幣|金額)[ \t:：]*$", re.IGNORECASE)
_MOBILE_OR_TOLL_FREE = re.compile(r"09\d{8}|080[09]\d{6}")
# A phone number written as one: toll-free 0800/0809, or an area code and groups (02-2349-3456).
_PHONE_LIKE = re.compile(r"\(?0\d{1,3}\)?[ \-]\d{3,4}[ \-]?\d{4}")


class TwBankAccountRecognizer(RequiredContextRecognizer):
    """Find account numbers, with their bank code, next to a word naming an account."""

    ENTITY = "TW_BANK_ACCOUNT"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("TW bank account (10-16 digits, optional bank code)",
                ALONE_BEFORE + BANK_CODE + "?" + ACCOUNT_DIGITS + ALONE_AFTER, 0.3),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "帳號", "帳戶", "账号", "匯款", "匯入", "轉帳", "轉入", "存摺", "戶頭", "銀行", "郵局", "局號",
        "account", "acct", "a/c",
    ]
    CONTEXT_BEFORE = 16
    HEADER_WORDS = ("帳號", "帳戶", "account")

    def validate_result(self, pattern_text: str) -> bool | None:
        """A mobile or toll-free number, or digits written as a phone number, are not an account."""
        digits = re.sub(r"\D", "", pattern_text)
        phone = _MOBILE_OR_TOLL_FREE.fullmatch(digits) or _PHONE_LIKE.fullmatch(pattern_text.strip())
        return False if phone else None

    def keep(self, text: str, start: int, end: int) -> bool:
        """A number right after NT$ / 金額 or right before 元 is an amount."""
        amount = _CURRENCY_AFTER.match(text, end) or _CURRENCY_BEFORE.search(text[max(0, start - 8):start])
        return not amount
