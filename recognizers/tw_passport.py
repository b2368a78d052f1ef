"""Recognizer for Taiwanese passport numbers (護照號碼, ``TW_PASSPORT``).

Format (reference/identifiers.md; 外交部領事事務局): nine digits, no public check digit. A bare
nine-digit run could be anything, so it is reported only next to a word such as 護照 or passport.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

from recognizers import LANGUAGE
from recognizers.digits import digit_run


class TwPassportRecognizer(PatternRecognizer):
    """Find nine-digit passport numbers next to a word naming them."""

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("TW passport (9 digits)", digit_run(9), 0.3)]

    CONTEXT: ClassVar[list[str]] = ["護照", "passport"]

    def __init__(
        self,
        patterns: list[Pattern] | None = None,
        context: list[str] | None = None,
        supported_language: str = LANGUAGE,
        supported_entity: str = "TW_PASSPORT",
        name: str | None = None,
    ) -> None:
        super().__init__(
            supported_entity=supported_entity,
            patterns=patterns or self.PATTERNS,
            context=context or self.CONTEXT,
            supported_language=supported_language,
            name=name or type(self).__name__,
        )
