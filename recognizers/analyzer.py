"""Build a Presidio ``AnalyzerEngine`` for folded Chinese text: no NLP model, character context."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult

from recognizers import LANGUAGE
from recognizers.context import ChineseContextEnhancer
from recognizers.nlp import NoModelNlpEngine
from recognizers.normalise import normalise
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


# A character inside a finding that the normalised view may have closed up (a space, a dot, a dash).
_GAP_RE = re.compile(r"[^0-9A-Za-z\u3400-\u9fff]")


def analyze(analyzer: AnalyzerEngine, text: str, explain: bool = False) -> list[RecognizerResult]:
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
    for low, high in view.windows():
        window = view.text[low:high]
        for result in analyzer.analyze(text=window, language=LANGUAGE, return_decision_process=explain):
            start, end = view.original_span(low + result.start, low + result.end)
            if folded[start:end] == window[result.start:result.end]:
                continue  # untouched by normalisation: the folded text's own results have it
            near = ordered[bisect.bisect_left(starts, start - longest):bisect.bisect_left(starts, end)]
            seen = [r for r in near
                    if r.entity_type == result.entity_type and r.start < end and start < r.end]
            if seen:  # the folded text found it already (perhaps a little shorter)
                for r in seen:
                    if _GAP_RE.search(folded, r.start, r.end):  # a piece of a spaced-out value (陳 志 of
                        r.start, r.end = min(r.start, start), max(r.end, end)  # 陳 志 明): take it whole
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
