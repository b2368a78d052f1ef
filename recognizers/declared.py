"""Recognizers declared as data (policy YAML), in the shape of Presidio's recognizer registry.

Two things differ from Presidio's own ``PatternRecognizer``: a deny-list matches as a plain
substring (Presidio wraps it in ``\\W`` boundaries, which never occur between Chinese characters),
and ``validator`` picks one of the built-in checksums by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import regex
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers import LANGUAGE
from recognizers.base import analyze_patterns
from recognizers.text import NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM, compact


class DeclaredRecognizer(PatternRecognizer):
    """A regex / deny-list recognizer built from a policy's ``recognizers:`` entry."""

    def __init__(
        self,
        name: str,
        supported_entity: str,
        patterns: Sequence[tuple[str, str, float]] = (),
        context: Sequence[str] = (),
        deny_list: Sequence[str] = (),
        deny_list_score: float = 1.0,
        validator: Callable[[str], bool] | None = None,
        supported_language: str = LANGUAGE,
    ) -> None:
        pattern_objects = [Pattern(name=n, regex=r, score=s) for n, r, s in patterns]
        if deny_list:
            pattern_objects.append(Pattern(
                name="deny_list", regex=_deny_list_regex(deny_list), score=deny_list_score))
        super().__init__(
            supported_entity=supported_entity,
            name=name,
            supported_language=supported_language,
            patterns=pattern_objects,
            context=list(context),
        )
        self._validator = validator
        self._patterns: list[Pattern] = pattern_objects

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return analyze_patterns(self, text, regex_flags)

    def validate_result(self, pattern_text: str) -> bool | None:
        if self._validator is None:
            return None
        return self._validator(compact(pattern_text))

    def rejected_matches(self, folded_text: str) -> list[tuple[int, int, str, float]]:
        """(start, end, pattern name, pattern score) of each match the validator rejects.

        Presidio drops a rejected match inside the recognizer; ``guard explain`` shows it, so an
        author can tell "the regex missed" from "the checksum said no".
        """
        if self._validator is None:
            return []
        return [
            (match.start(), match.end(), pattern.name, pattern.score)
            for pattern in self._patterns
            # The same engine and flags as Presidio's own matching, so the matches are the same.
            for match in regex.finditer(pattern.regex, folded_text, flags=self.global_regex_flags or 0)
            if match.group() and self.validate_result(match.group()) is False
        ]


def _deny_list_regex(words: Sequence[str]) -> str:
    """Longest words first; ASCII words keep alphanumeric boundaries, CJK words match anywhere."""
    escaped = [re.escape(w) for w in sorted(set(words), key=len, reverse=True) if w]
    return NOT_AFTER_ALNUM + "(?:" + "|".join(escaped) + ")" + NOT_BEFORE_ALNUM
