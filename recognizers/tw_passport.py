"""Recognizer for Taiwanese passport numbers (護照號碼, ``TW_PASSPORT``).

Format (reference/identifiers.md; 外交部領事事務局): nine digits, no public check digit. A bare
nine-digit run could be anything, so it is reported only next to a word such as 護照 or passport.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.base import TaiwanPatternRecognizer
from recognizers.digits import digit_run


class TwPassportRecognizer(TaiwanPatternRecognizer):
    """Find nine-digit passport numbers next to a word naming them."""

    ENTITY = "TW_PASSPORT"

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("TW passport (9 digits)", digit_run(9), 0.3)]

    CONTEXT: ClassVar[list[str]] = ["護照", "passport"]
