"""Recognizer for the Taiwanese national ID number (國民身分證統一編號, ``TW_NATIONAL_ID``).

Format (reference/identifiers.md, 內政部戶政司): an area letter, a sex digit (1 male, 2 female),
seven serial digits and a check digit: ``[A-Z][12]\\d{8}``. The check digit is validated with
``recognizers.checksums.tw_national_id_valid``: a wrong check digit means it is not an ID.
Resident certificate numbers (second character 8, 9 or A-D) belong to ``TW_RESIDENT_ID``.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer
from recognizers.checksums import tw_national_id_valid
from recognizers.context import find_context_word
from recognizers.text import NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM, compact, spaced

# The value printed in textbooks, forms and programming tutorials as *the* example of an ID. It
# is still treated as an ID (fail closed), except where the text plainly discusses a format.
SAMPLE_VALUES = frozenset({"A123456789"})


class TwNationalIdRecognizer(TaiwanPatternRecognizer):
    """Find national ID numbers, written plainly or with spaces, hyphens or invisible characters."""

    ENTITY = "TW_NATIONAL_ID"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "TW national ID",
            NOT_AFTER_ALNUM + spaced("[A-Za-z]", "[12]", *[r"\d"] * 8) + NOT_BEFORE_ALNUM,
            0.4,
        ),
        # A letter glued in front ("xA123456789") hides the ID from the pattern above; here only
        # the check digit decides (a valid one scores 1.0, any other match is dropped).
        Pattern(
            "TW national ID after a letter",
            r"(?<=[A-Za-z])" + spaced("[A-Za-z]", "[12]", *[r"\d"] * 8) + NOT_BEFORE_ALNUM,
            0.3,
        ),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "身分證", "身份證", "統一編號", "證號", "字號", "國民身分證", "ID", "national id",
    ]
    # Words of a question about the ID *format*: "比對像 A123456789 這種格式".
    FORMAT_CONTEXT: ClassVar[list[str]] = [
        "格式", "範例", "示例", "舉例", "例如", "比對", "regex", "正規", "format", "example", "e.g.",
    ]

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return [
            r for r in super().analyze(text, entities, nlp_artifacts, regex_flags)
            if not (compact(text[r.start:r.end]) in SAMPLE_VALUES
                    and find_context_word(text, r.start, r.end, self.FORMAT_CONTEXT))
        ]

    def validate_result(self, pattern_text: str) -> bool:
        """True (score 1.0) for a correct check digit; False drops the match."""
        return tw_national_id_valid(pattern_text)
