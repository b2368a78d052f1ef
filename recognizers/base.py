"""The base of the pattern recognizers here: Presidio's ``PatternRecognizer`` with class defaults.

As in Presidio's country recognizers, ``PATTERNS`` and ``CONTEXT`` are class constants that the
constructor lets a caller override; ``ENTITY`` names what the subclass finds.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

from recognizers import LANGUAGE


class TaiwanPatternRecognizer(PatternRecognizer):
    ENTITY: ClassVar[str]
    PATTERNS: ClassVar[list[Pattern]]
    CONTEXT: ClassVar[list[str]] = []

    def __init__(
        self,
        patterns: list[Pattern] | None = None,
        context: list[str] | None = None,
        supported_language: str = LANGUAGE,
        supported_entity: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            supported_entity=supported_entity or self.ENTITY,
            patterns=patterns or self.PATTERNS,
            context=context or self.CONTEXT,
            supported_language=supported_language,
            name=name or type(self).__name__,
        )
