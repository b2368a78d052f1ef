"""Build a Presidio ``AnalyzerEngine`` for folded Chinese text: no NLP model, character context."""

from __future__ import annotations

from collections.abc import Iterable

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult

from recognizers import LANGUAGE
from recognizers.context import ChineseContextEnhancer
from recognizers.nlp import NoModelNlpEngine
from recognizers.text import fold


def build_analyzer(recognizers: Iterable[EntityRecognizer]) -> AnalyzerEngine:
    """An analyzer over exactly ``recognizers`` (no predefined ones, nothing downloaded)."""
    registry = RecognizerRegistry(recognizers=list(recognizers), supported_languages=[LANGUAGE])
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=NoModelNlpEngine(),
        supported_languages=[LANGUAGE],
        context_aware_enhancer=ChineseContextEnhancer(),
    )


def analyze(analyzer: AnalyzerEngine, text: str, explain: bool = False) -> list[RecognizerResult]:
    """Fold ``text`` and analyze it; offsets in the results are offsets into ``text`` itself."""
    return analyzer.analyze(
        text=fold(text), language=LANGUAGE, return_decision_process=explain
    )
