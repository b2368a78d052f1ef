"""Shared assertions for the test tables."""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer

from recognizers.analyzer import analyze, build_analyzer

_ANALYZERS: dict[int, object] = {}


def spans(recognizer: EntityRecognizer, text: str, min_score: float = 0.5) -> list[tuple[str, str, float]]:
    """Run one recognizer the way the engine runs it; return (entity, original substring, score)."""
    key = id(recognizer)
    analyzer = _ANALYZERS.get(key)
    if analyzer is None:
        analyzer = _ANALYZERS[key] = build_analyzer([recognizer])
    results = analyze(analyzer, text)  # type: ignore[arg-type]
    return sorted(
        ((r.entity_type, text[r.start:r.end], r.score) for r in results if r.score >= min_score),
        key=lambda t: text.find(t[1]),
    )


def found(recognizer: EntityRecognizer, text: str, min_score: float = 0.5) -> list[str]:
    """The original substrings the recognizer reports at or above ``min_score``."""
    return [s for _, s, _ in spans(recognizer, text, min_score)]
