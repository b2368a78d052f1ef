"""Build a Presidio ``AnalyzerEngine`` for folded Chinese text: no NLP model, character context.

``DirectAnalyzer`` runs that engine's recognizers the way ``AnalyzerEngine.analyze`` does, with
what the engine does per call and never needs here done once at construction (registry lookups,
empty NLP artifacts, thresholds by recognizer, its tracing); ``guard explain``'s decision process
still goes through Presidio's own ``analyze``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Protocol

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult

from recognizers import LANGUAGE
from recognizers.context import ChineseContextEnhancer
from recognizers.nlp import NoModelNlpEngine
from recognizers.normalise import normalise
from recognizers.text import ZERO_WIDTH, fold


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


class Analyzer(Protocol):
    """What ``analyze`` needs: Presidio's ``AnalyzerEngine.analyze`` signature (the part used here)."""

    def analyze(self, text: str, language: str,
                return_decision_process: bool | None = False) -> list[RecognizerResult]: ...


class DirectAnalyzer:
    """``AnalyzerEngine.analyze`` for a fixed set of recognizers and language, without per-call overhead.

    Same steps, same order, same results: every recognizer of the language (loaded once), recognizer
    ids in the metadata, results grouped by recognizer, the context enhancer, score thresholds,
    Presidio's ``remove_duplicates``, no decision process. A recognizer with its own context
    enhancement, a traced engine or a request for the decision process takes Presidio's own path.
    """

    def __init__(self, engine: AnalyzerEngine, language: str = LANGUAGE) -> None:
        self.engine = engine
        self.language = language
        self._recognizers = engine.registry.get_recognizers(language=language, all_fields=True)
        self._entities = engine.get_supported_entities(language=language)
        self._artifacts = engine.nlp_engine.process_text("", language)  # empty: no model
        self._thresholds = {r.id: r.score_thresholds for r in self._recognizers}
        self._default_threshold = engine.default_score_threshold
        own_context = any(type(r).enhance_using_context is not EntityRecognizer.enhance_using_context
                          for r in self._recognizers)
        self._presidio_only = own_context or engine.log_decision_process

    def analyze(self, text: str, language: str,
                return_decision_process: bool | None = False) -> list[RecognizerResult]:
        if return_decision_process or language != self.language or self._presidio_only:
            return self.engine.analyze(text=text, language=language,
                                       return_decision_process=return_decision_process)
        by_recognizer: dict[str, list[RecognizerResult]] = {}
        for recognizer in self._recognizers:
            if not recognizer.is_loaded:
                recognizer.load()
                recognizer.is_loaded = True
            found = recognizer.analyze(text=text, entities=self._entities, nlp_artifacts=self._artifacts)
            for result in found or ():
                if not result.recognition_metadata:
                    result.recognition_metadata = {}
                metadata = result.recognition_metadata
                metadata.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
                name = str(getattr(recognizer, "name", ""))
                metadata.setdefault(RecognizerResult.RECOGNIZER_NAME_KEY, name)
                owner = metadata[RecognizerResult.RECOGNIZER_IDENTIFIER_KEY]
                by_recognizer.setdefault(owner, []).append(result)
        if not by_recognizer:
            return []
        # Presidio regroups results by recognizer (dropping any whose id names none of them).
        results = [r for recognizer in self._recognizers for r in by_recognizer.get(recognizer.id, ())]
        results = self.engine.context_aware_enhancer.enhance_using_context(
            text=text, raw_results=results, nlp_artifacts=self._artifacts, recognizers=self._recognizers,
            context=None)
        results = [r for r in results if r.score >= self._threshold(r)]
        results = EntityRecognizer.remove_duplicates(results)
        for result in results:
            result.analysis_explanation = None  # type: ignore[assignment]
        return results

    def _threshold(self, result: RecognizerResult) -> float:
        """``AnalyzerEngine``'s threshold for a result: its recognizer's for the entity, its default,
        else the engine's."""
        thresholds = self._thresholds.get(
            (result.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, ""))
        if thresholds is None:
            return float(self._default_threshold)
        if result.entity_type in thresholds:
            return thresholds[result.entity_type]
        return thresholds.get("default", self._default_threshold)


# A character inside a finding that the normalised view may have closed up (a space, a dot, a dash).
_GAP_RE = re.compile(r"[^0-9A-Za-z\u3400-\u9fff]")
_INVISIBLE_RE = re.compile(f"[{ZERO_WIDTH}]")
_CJK_GAP_RE = re.compile(r"[\u3400-\u9fff][^0-9A-Za-z\u3400-\u9fff\r\n]+[\u3400-\u9fff]")


def analyze(analyzer: Analyzer, text: str, explain: bool = False) -> list[RecognizerResult]:
    """Fold ``text`` and analyze it, then the stretches its normalised view changed.

    Offsets in the results are offsets into ``text`` itself: a finding in the normalised view is
    mapped back to the original characters it came from (``recognizers.normalise``).
    """
    folded = fold(text)
    results = analyzer.analyze(text=folded, language=LANGUAGE, return_decision_process=explain)
    view = normalise(folded)
    if view is None:
        return results
    # By start, so each normalised finding looks only at the folded ones that can touch it (linear time).
    ordered = sorted(results, key=lambda r: r.start)
    starts = [r.start for r in ordered]
    longest = max((r.end - r.start for r in ordered), default=0)
    # The closed-up view's stretches, then those of its delimited reading (``Normalised.delimited``).
    stretches = ((reading, low, high) for reading in view.readings() for low, high in reading.windows())
    for reading, low, high in stretches:
        window = reading.text[low:high]
        for result in analyzer.analyze(text=window, language=LANGUAGE, return_decision_process=explain):
            start, end = reading.original_span(low + result.start, low + result.end)
            if folded[start:end] == window[result.start:result.end]:
                continue  # untouched by normalisation: the folded text's own results have it
            near = ordered[bisect.bisect_left(starts, start - longest):bisect.bisect_left(starts, end)]
            seen = [r for r in near
                    if r.entity_type == result.entity_type and r.start < end and start < r.end]
            if seen:  # the folded text found it already (perhaps a little shorter)
                # A piece of a spaced-out value (陳 志 of 陳 志 明): the piece holds a gap the normalised
                # view closed up; take the value whole. So too when the value holds an invisible
                # character (王 of 王<ZWSP>小<ZWSP>明) or a gap within a line between Chinese characters
                # (王 of 王 小 明, 王😀小😀明): neither separates two values, as a line break may
                # (病歷號 0034567, then the next line's bed number 13).
                pieced = (_INVISIBLE_RE.search(folded, start, end) is not None
                          or _CJK_GAP_RE.search(folded, start, end) is not None)
                for r in seen:
                    if pieced or _GAP_RE.search(folded, r.start, r.end):
                        r.start, r.end = min(r.start, start), max(r.end, end)
                continue
            result.start, result.end = start, end
            results.append(result)
    return _without_duplicates(results)


def _without_duplicates(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """One result per (entity, span): the highest-scoring one."""
    best: dict[tuple[str, int, int], RecognizerResult] = {}
    for result in results:
        key = (result.entity_type, result.start, result.end)
        if key not in best or result.score > best[key].score:
            best[key] = result
    return list(best.values())
