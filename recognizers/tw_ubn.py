"""Recognizer for the Unified Business Number (統一編號, ``TW_UBN``).

Format (reference/identifiers.md; 財政部 統一編號檢查碼邏輯, revised 2023-04-01): eight digits whose
weighted digit sum (weights 1,2,1,2,1,2,4,1) is divisible by 5, with the 7th-digit-is-7 special
case (``recognizers.checksums.ubn_valid``). Eight digits are common in other numbers (dates, phone
numbers without area code), so a match needs a context word such as 統一編號 or 統編 to be
reported; a wrong check digit drops it.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.base import TaiwanPatternRecognizer
from recognizers.checksums import ubn_valid
from recognizers.digits import digit_run


class TwUbnRecognizer(TaiwanPatternRecognizer):
    """Find 統一編號 next to a word naming them, with a valid check digit."""

    ENTITY = "TW_UBN"

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("TW UBN (8 digits)", digit_run(8), 0.3)]

    CONTEXT: ClassVar[list[str]] = [
        "統一編號", "統編", "營利事業", "扣繳單位", "稅籍", "買受人", "公司", "商號", "廠商",
        "UBN", "VAT", "tax id",
    ]

    def validate_result(self, pattern_text: str) -> bool | None:
        """False for a wrong check digit; None keeps the low score, so context decides."""
        return None if ubn_valid(pattern_text) else False
