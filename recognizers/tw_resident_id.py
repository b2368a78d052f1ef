"""Recognizer for the resident certificate number (居留證統一證號, ``TW_RESIDENT_ID``).

Formats (reference/identifiers.md, 內政部移民署):

- new form, issued since 2021-01-02: ``[A-Z][89]\\d{8}`` (8 male, 9 female);
- old form, issued until 2021 and valid until 2031: ``[A-Z][A-D]\\d{8}``, the second letter
  counting as its letter code mod 10.

Both use the national ID checksum (``recognizers.checksums.tw_resident_id_valid``); a wrong
check digit means it is not a number. National IDs (second character 1 or 2) are not matched.
統一發票 numbers have the old form's shape (two letters, eight digits), so an old-form match next
to a word about invoices is dropped.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer
from recognizers.checksums import tw_resident_id_valid
from recognizers.context import find_context_word
from recognizers.text import NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM, compact, spaced


class TwResidentIdRecognizer(TaiwanPatternRecognizer):
    """Find resident certificate numbers of both forms, also when spaced out or full-width."""

    ENTITY = "TW_RESIDENT_ID"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "TW resident certificate (new and old form)",
            NOT_AFTER_ALNUM + spaced("[A-Za-z]", "[89A-Da-d]", *[r"\d"] * 8) + NOT_BEFORE_ALNUM,
            0.4,
        ),
        # A letter glued in front hides the number; only the new form (8/9) is looked for there,
        # the old form's two letters would read any product code as one. The check digit decides.
        Pattern(
            "TW resident certificate (new form) after a letter",
            r"(?<=[A-Za-z])" + spaced("[A-Za-z]", "[89]", *[r"\d"] * 8) + NOT_BEFORE_ALNUM,
            0.3,
        ),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "居留證", "居留", "統一證號", "外僑", "移工", "外籍", "resident", "ARC", "UI number",
    ]
    INVOICE_CONTEXT: ClassVar[list[str]] = ["發票", "收據", "載具", "invoice", "receipt"]

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return [
            r for r in super().analyze(text, entities, nlp_artifacts, regex_flags)
            if not (compact(text[r.start:r.end])[1].isalpha()
                    and find_context_word(text, r.start, r.end, self.INVOICE_CONTEXT))
        ]

    def validate_result(self, pattern_text: str) -> bool:
        """True (score 1.0) for a correct check digit; False drops the match."""
        return tw_resident_id_valid(pattern_text)
