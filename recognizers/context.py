"""Context-word score enhancement that works on Chinese text written without spaces.

Presidio's ``LemmaContextAwareEnhancer`` compares whole tokens from a spaCy model, so "車號ABC-1234"
never sees its context word. This enhancer looks for each of a recognizer's context words as a
substring of a character window before (and a shorter one after) the match, in the folded text.
"""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts

# Chinese carries a lot per character: 20 characters is a clause, roughly 5 English words.
PREFIX_CHARS = 20
SUFFIX_CHARS = 8
CONTEXT_KEY = "context_word"


def find_context_word(
    text: str, start: int, end: int, words: list[str],
    prefix_chars: int = PREFIX_CHARS, suffix_chars: int = SUFFIX_CHARS,
) -> str | None:
    """Return the first context word found near ``text[start:end]`` (case-insensitive), if any."""
    before = text[max(0, start - prefix_chars):start].lower()
    after = text[end:end + suffix_chars].lower()
    for word in words:
        w = word.lower()
        if w and (w in before or w in after):
            return word
    return None


class ChineseContextEnhancer(ContextAwareEnhancer):
    """Raise a result's score when one of its recognizer's context words stands nearby."""

    def __init__(
        self,
        context_similarity_factor: float = 0.35,
        min_score_with_context_similarity: float = 0.4,
        prefix_chars: int = PREFIX_CHARS,
        suffix_chars: int = SUFFIX_CHARS,
    ) -> None:
        super().__init__(
            context_similarity_factor=context_similarity_factor,
            min_score_with_context_similarity=min_score_with_context_similarity,
            context_prefix_count=prefix_chars,
            context_suffix_count=suffix_chars,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        by_id = {r.id: r for r in recognizers}
        for result in raw_results:
            metadata = result.recognition_metadata or {}
            if metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue  # the recognizer already judged its own context
            recognizer = by_id.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, ""))
            words = list(getattr(recognizer, "context", None) or []) + list(context or [])
            if not words:
                continue
            word = find_context_word(
                text, result.start, result.end, words,
                self.context_prefix_count, self.context_suffix_count,
            )
            if word is None:
                continue
            result.score = min(
                self.MAX_SCORE,
                max(result.score + self.context_similarity_factor, self.min_score_with_context_similarity),
            )
            metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
            metadata[CONTEXT_KEY] = word
            result.recognition_metadata = metadata
            if result.analysis_explanation is not None:
                result.analysis_explanation.set_supportive_context_word(word)
                result.analysis_explanation.set_improved_score(result.score)
        return raw_results
