"""Recognizer for the National Health Insurance card number (健保卡號, ``TW_NHI_CARD``).

Format (reference/identifiers.md; 衛生福利部中央健康保險署): twelve digits, usually printed in
groups of four; no public check digit. Reported only next to a word such as 健保 or 健保卡.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

from recognizers import LANGUAGE
from recognizers.digits import digit_run


class TwNhiCardRecognizer(PatternRecognizer):
    """Find twelve-digit health insurance card numbers next to a word naming them."""

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("TW NHI card (12 digits)", digit_run(12), 0.3)]

    CONTEXT: ClassVar[list[str]] = ["健保", "健康保險", "NHI", "health insurance"]

    def __init__(
        self,
        patterns: list[Pattern] | None = None,
        context: list[str] | None = None,
        supported_language: str = LANGUAGE,
        supported_entity: str = "TW_NHI_CARD",
        name: str | None = None,
    ) -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=patterns or self.PATTERNS,
            context=context or self.CONTEXT,
            supported_language=supported_language,
            name=name or type(self).__name__,
        )
