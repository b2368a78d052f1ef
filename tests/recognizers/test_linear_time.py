"""Every recognizer, behind fold and the normalised view, takes time linear in the text's length.

A prompt is attacker-controlled: one regex that backtracks over a long run (quadratic) lets a
single paste hold a worker for minutes. Each recognizer is fed 1 MB texts of the worst shapes
(long runs of Chinese characters, digits, dots, letters, separators, spaced-out characters) and
the same shape at a quarter of the size: four times the text must cost well under sixteen times
the time (what quadratic work costs). A 1 MB run under two seconds passes without the ratio (quadratic
work on 1 MB takes minutes), so a busy machine's noise on tiny timings cannot fail the test.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
from presidio_analyzer import AnalyzerEngine

from recognizers import builtin_recognizers
from recognizers.analyzer import analyze, build_analyzer

LARGE = 1 << 20        # 1 MB of characters
SMALL = LARGE // 4
MAX_GROWTH = 10.0      # linear is 4, quadratic 16
FAST_ENOUGH = 2.0      # seconds for the 1 MB text: no ratio to check below this

_CJK = "陳志明王小林美華機密身分證號碼報案人電話車牌臺北市中正區的了是在有"
_random = random.Random(13)


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


SHAPES: dict[str, Callable[[int], str]] = {
    "chinese": lambda n: "".join(_random.choice(_CJK) for _ in range(n)),
    "digits": _repeat("0912345678"),
    "dots": _repeat("."),
    "letters": _repeat("AbCdEfGhIj"),
    "id_like": _repeat("A1"),
    "separators": _repeat(" -\u200b._\n    "),
    "spaced_chinese": _repeat("陳 志.明_"),
    "spaced_letters": _repeat("A 1.2_"),
    "base64_like": _repeat("QTEyMzQ1Njc4OQ"),
}

RECOGNIZERS = {type(r).__name__: r for r in builtin_recognizers()}


@pytest.fixture(scope="module")
def analyzers() -> dict[str, AnalyzerEngine]:
    built = {name: build_analyzer([r]) for name, r in RECOGNIZERS.items()}
    for analyzer in built.values():
        analyze(analyzer, "報案人王小明 A123456789")  # load dictionaries before timing
    return built


def _seconds(analyzer: AnalyzerEngine, text: str) -> float:
    started = time.perf_counter()
    analyze(analyzer, text)
    return time.perf_counter() - started


@pytest.mark.timeout(900)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("recognizer", RECOGNIZERS)
def test_time_grows_linearly_with_the_text(analyzers: dict[str, AnalyzerEngine], recognizer: str,
                                           shape: str) -> None:
    analyzer = analyzers[recognizer]
    large = _seconds(analyzer, SHAPES[shape](LARGE))
    if large < FAST_ENOUGH:
        return  # quadratic work on 1 MB takes minutes, not seconds
    small = _seconds(analyzer, SHAPES[shape](SMALL))
    growth = large / max(small, 1e-3)
    if growth >= MAX_GROWTH:  # once more: a busy machine's pause can spoil one pair, not two in a row
        large = _seconds(analyzer, SHAPES[shape](LARGE))
        small = _seconds(analyzer, SHAPES[shape](SMALL))
        growth = min(growth, large / max(small, 1e-3))
    print(f"{recognizer} {shape}: {SMALL} chars {small:.3f} s, {LARGE} chars {large:.3f} s")
    assert growth < MAX_GROWTH, (
        f"{recognizer} on {shape}: {small:.2f} s for {SMALL} characters, {large:.2f} s for {LARGE}")
