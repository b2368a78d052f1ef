"""Recognizer for payment card numbers (``CREDIT_CARD``).

Format (ISO/IEC 7812; issuer ranges as published by the card schemes): 13 to 19 digits, written in
one run or in groups separated by spaces or hyphens (4-4-4-4, Amex 4-6-5, ...), starting with a
known issuer prefix (Visa 4, Mastercard 51-55 / 2221-2720, Amex 34/37, JCB 35, Diners 30/36/38,
Discover and UnionPay 6), with a valid Luhn check digit (``recognizers.checksums.luhn_valid``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.base import TaiwanPatternRecognizer
from recognizers.checksums import luhn_valid
from recognizers.digits import digit_run_between
from recognizers.text import compact

_ISSUER_RE = re.compile(r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|35|3[068]|6")
_GROUP_SPLIT_RE = re.compile(r"[^0-9]+")


def plausible_grouping(value: str) -> bool:
    """One run, every digit apart (an evasion), or groups of four (Amex 4-6-5, Diners 4-6-4)."""
    groups = [g for g in _GROUP_SPLIT_RE.split(value) if g]
    if len(groups) == 1 or all(len(g) == 1 for g in groups):
        return True
    sizes = [len(g) for g in groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


class CreditCardRecognizer(TaiwanPatternRecognizer):
    """Find payment card numbers with a valid issuer prefix and Luhn check digit."""

    ENTITY = "CREDIT_CARD"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("Payment card (13-19 digits)", digit_run_between(13, 19), 0.3),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "信用卡", "卡號", "簽帳卡", "金融卡", "card", "visa", "mastercard", "amex", "jcb",
    ]

    def validate_result(self, pattern_text: str) -> bool:
        """True (score 1.0) for a known issuer, a plausible grouping and a valid Luhn digit."""
        digits = compact(pattern_text)
        return bool(
            digits.isdigit()
            and _ISSUER_RE.match(digits)
            and plausible_grouping(pattern_text)
            and luhn_valid(digits)
        )
