"""Recognizer for the National Health Insurance card number (健保卡號, ``TW_NHI_CARD``).

Format (reference/identifiers.md; 衛生福利部中央健康保險署): twelve digits, usually printed in
groups of four; no public check digit. Reported only next to a word such as 健保 or 健保卡.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.base import TaiwanPatternRecognizer
from recognizers.digits import digit_run


class TwNhiCardRecognizer(TaiwanPatternRecognizer):
    """Find twelve-digit health insurance card numbers next to a word naming them."""

    ENTITY = "TW_NHI_CARD"

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("TW NHI card (12 digits)", digit_run(12), 0.3)]

    CONTEXT: ClassVar[list[str]] = ["健保", "健康保險", "NHI", "health insurance"]
