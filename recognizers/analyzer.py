"""Build a Presidio ``AnalyzerEngine`` for folded Chinese text: no NLP model, character context."""

from __future__ import annotations

from collections.abc import Iterable

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult

from recognizers import LANGUAGE
from recognizers.context import ChineseContextEnhancer
from recognizers.nlp import NoModelNlpEngine
from recognizers.text import fold


def make_tldextract_offline() -> None:
    """Point tldextract (used by Presidio's e-mail and URL recognizers) at its bundled snapshot.

    By default it downloads the public-suffix list on first use: a network call, a delay and a
    warning on a closed network. The snapshot shipped inside the package is enough here.
    """
    from tldextract import tldextract

    if tldextract.TLD_EXTRACTOR.suffix_list_urls:
        tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
            suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
        )


def build_analyzer(recognizers: Iterable[EntityRecognizer]) -> AnalyzerEngine:
    """An analyzer over exactly ``recognizers`` (no predefined ones, nothing downloaded)."""
    make_tldextract_offline()
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
