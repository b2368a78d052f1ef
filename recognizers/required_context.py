"""Recognizers whose matches count only with a context word close by (or under a table header).

A bare run of digits is an account, a medical record number or nothing at all: only the word
beside it (帳號, 病歷號) or the column it stands in says which. The generic context enhancer looks
20 characters back and raises any match; these recognizers look in a tighter window of their own,
drop matches without context, and mark the rest as judged so the enhancer leaves them alone.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer
from recognizers.context import CONTEXT_KEY, find_context_word
from recognizers.table import column_header


class RequiredContextRecognizer(TaiwanPatternRecognizer):
    """A pattern recognizer that reports a match only with one of ``CONTEXT`` near it."""

    # How far before and after a match a context word may stand (characters of folded text).
    CONTEXT_BEFORE: ClassVar[int] = 12
    CONTEXT_AFTER: ClassVar[int] = 0
    # Words that, in a table's header cell, make the column's values this entity.
    HEADER_WORDS: ClassVar[tuple[str, ...]] = ()
    SCORE_WITH_CONTEXT: ClassVar[float] = 0.85

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        kept = []
        for result in super().analyze(text, entities, nlp_artifacts, regex_flags):
            if result.score <= 0 or not self.keep(text, result.start, result.end):
                continue
            word = find_context_word(text, result.start, result.end, self.context,
                                     self.CONTEXT_BEFORE, self.CONTEXT_AFTER)
            if word is None and self.HEADER_WORDS:
                word = column_header(text, result.start, self.HEADER_WORDS)
            if word is None:
                continue
            result.score = self.SCORE_WITH_CONTEXT
            metadata = result.recognition_metadata or {}
            metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
            metadata[CONTEXT_KEY] = word
            result.recognition_metadata = metadata
            kept.append(result)
        return kept

    def keep(self, text: str, start: int, end: int) -> bool:
        """A subclass's veto from the surroundings (e.g. an amount followed by 元)."""
        return True
