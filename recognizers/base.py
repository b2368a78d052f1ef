"""The base of the pattern recognizers here: Presidio's ``PatternRecognizer`` with class defaults.

As in Presidio's country recognizers, ``PATTERNS`` and ``CONTEXT`` are class constants that the
constructor lets a caller override; ``ENTITY`` names what the subclass finds.

``analyze_patterns`` is Presidio's pattern loop (``PatternRecognizer.analyze``: same regex module,
flags, validation, explanation and de-duplication, so the same results) without what it costs per
call and adds nothing here (two clock reads and a debug log per pattern, de-duplicating zero or one
result), and skips a text that lacks a character every pattern needs (``recognizers.prefilter``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.pattern_recognizer import REGEX_TIMEOUT_SECONDS

from recognizers import LANGUAGE
from recognizers.prefilter import prefilter

_LOG = logging.getLogger("presidio-analyzer")
_NOT_BUILT = object()  # the prefilter is derived on first use (a subclass may replace its patterns)


def analyze_patterns(recognizer: PatternRecognizer, text: str,
                     regex_flags: int | None = None) -> list[RecognizerResult]:
    """``PatternRecognizer.analyze``'s results for ``text``, computed with less overhead."""
    flags: int = regex_flags or recognizer.global_regex_flags or 0
    patterns: list[Pattern] = getattr(recognizer, "patterns", [])
    name = str(getattr(recognizer, "name", ""))
    if flags == recognizer.global_regex_flags:
        needed: Any = getattr(recognizer, "_guard_prefilter", _NOT_BUILT)
        if needed is _NOT_BUILT:
            needed = prefilter([p.regex for p in patterns], flags) if patterns else None
            recognizer._guard_prefilter = needed  # type: ignore[attr-defined]
        if needed is not None and needed.search(text) is None:
            return []
    results: list[RecognizerResult] = []
    entity = recognizer.supported_entities[0]
    for pattern in patterns:
        if not pattern.compiled_regex or pattern.compiled_with_flags != flags:
            pattern.compiled_with_flags = flags  # type: ignore[assignment]
            pattern.compiled_regex = regex.compile(pattern.regex, flags=flags)
        try:
            compiled: Any = pattern.compiled_regex
            for match in compiled.finditer(text, timeout=REGEX_TIMEOUT_SECONDS):
                start, end = match.span()
                if start == end:
                    continue
                current = text[start:end]
                validation = recognizer.validate_result(current)
                explanation = PatternRecognizer.build_regex_explanation(
                    name, pattern.name, pattern.regex, pattern.score, validation, flags)  # type: ignore[arg-type]
                result = RecognizerResult(
                    entity_type=entity, start=start, end=end, score=pattern.score,
                    analysis_explanation=explanation,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: name,
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id},
                )
                if validation is not None:
                    result.score = EntityRecognizer.MAX_SCORE if validation else EntityRecognizer.MIN_SCORE
                if recognizer.invalidate_result(current):
                    result.score = EntityRecognizer.MIN_SCORE
                if result.score > EntityRecognizer.MIN_SCORE:
                    results.append(result)
                explanation.score = result.score
        except TimeoutError:  # as Presidio: log (the pattern's name, never the text) and skip it
            _LOG.warning("Regex pattern '%s' timed out after %s seconds, skipping.",
                         pattern.name, REGEX_TIMEOUT_SECONDS)
    return EntityRecognizer.remove_duplicates(results) if len(results) > 1 else results


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

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return analyze_patterns(self, text, regex_flags)
