"""The engine's shortcuts give exactly what the long way gives: same results, scores and metadata.

Each shortcut keeps its long way callable, and these tests run both over the project's sample corpus
and tables of real strings: ``DirectAnalyzer`` against Presidio's ``AnalyzerEngine.analyze``, the
pattern loop (with its prefilter) against ``PatternRecognizer.analyze``, and the split-value check
that skips boundaries no value can cross against inspecting every boundary joined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
import regex
from presidio_analyzer import PatternRecognizer, RecognizerResult

from guard.engine import Engine
from guard.policy import load_policy
from guard.sample_corpus import SAMPLE_CORPUS
from recognizers import builtin_recognizers
from recognizers.analyzer import DirectAnalyzer, analyze
from recognizers.base import analyze_patterns
from recognizers.declared import DeclaredRecognizer
from recognizers.prefilter import first_class, prefilter, required_class, with_first_class
from recognizers.text import fold

# Real strings beside the corpus: evasions the normalised view undoes, values at odd places.
TABLE = [
    "請幫我把以下筆錄改寫成正式公文：報案人林國宏（身分證字號L102255227）於昨日駕駛車號MM-9136之自小客車。",
    "身分證字號：Ｌ１０２２５５２２７，電話０９１２－３４５－６７８",
    "聯絡人 陳 志 明，手機 0912.345.678，信箱 chen.zhiming (at) example.gov.tw",
    "申請人A1\u200b2345\u200b6789 住在臺北市中正區重慶南路一段122號3樓",
    "Base64: 6Zmz5b+X5piO77yMQTEyMzQ1Njc4OQ== 請解碼",
    "%E9%99%B3%E5%BF%97%E6%98%8E 的居留證號碼是 A800000014",
    "密等：機密（保密期限至中華民國120年12月31日）\n主旨：加強臨檢勤務。",
    "Mr. John Smith lives at No. 5, Ln. 3, Sec. 2, Zhongshan N. Rd., Zhongshan Dist., Taipei City 104",
    "病歷號 00123456，帳號 012-345678901234，出生日期 1980/01/02，信用卡 4111 1111 1111 1111",
    "The weather is fine today; nothing personal here.",
    "",
    "請問？",
]


def _corpus() -> list[str]:
    with SAMPLE_CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()] + TABLE


def _key(results: Sequence[RecognizerResult]) -> list[tuple[Any, ...]]:
    def one(r: RecognizerResult) -> tuple[Any, ...]:
        meta = r.recognition_metadata or {}
        explanation = r.analysis_explanation
        return (r.entity_type, r.start, r.end, r.score, meta.get(RecognizerResult.RECOGNIZER_NAME_KEY),
                meta.get("context_word"), meta.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY),
                None if explanation is None else (explanation.pattern_name, explanation.original_score,
                                                  explanation.validation_result, explanation.score))
    return sorted(map(one, results), key=repr)


@pytest.fixture(scope="module")
def direct() -> DirectAnalyzer:
    engine = Engine(load_policy())
    engine.warm_up()
    return engine._analyzer


def test_direct_analyzer_gives_presidios_results(direct: DirectAnalyzer) -> None:
    for text in _corpus():
        assert _key(analyze(direct, text)) == _key(analyze(direct.engine, text)), text


def test_pattern_loop_gives_presidios_results() -> None:
    recognizers = [r for r in builtin_recognizers() if isinstance(r, PatternRecognizer)]
    recognizers.append(DeclaredRecognizer("case number", "CASE_NUMBER", [("case", r"案號[0-9]{6}", 0.8)],
                                          deny_list=["專案甲"]))
    for text in map(fold, _corpus()):
        for recognizer in recognizers:
            ours = analyze_patterns(recognizer, text)
            presidios = PatternRecognizer.analyze(recognizer, text, recognizer.supported_entities)
            assert _key(ours) == _key(presidios), (recognizer.name, text)


# (regex, the characters every match needs: a string the prefilter accepts, one it rejects)
REQUIRED = [
    (r"[0-9]{8}", "編號12345678", "沒有數字"),
    (r"(?<![A-Za-z0-9])[A-Z][12]\d{8}", "A123456789", "ABCDEFGHIJ"),
    (r"ab?c|d", "d", "b"),
    (r"[a-z]+(?:@|\(at\))[a-z]+", "(at)", "xy"),
    (r"[^a]b", "b", "aaa"),
    (r"No\.\s?\d+|[0-9]+號", "no", "住在某處"),  # IGNORECASE, as the recognizers compile it
]


@pytest.mark.parametrize(("pattern", "accepted", "rejected"), REQUIRED)
def test_prefilter_needs_what_every_match_needs(pattern: str, accepted: str, rejected: str) -> None:
    check = prefilter([pattern], regex.IGNORECASE | regex.DOTALL | regex.MULTILINE)
    assert check is not None
    assert check.search(accepted) is not None
    assert check.search(rejected) is None


@pytest.mark.parametrize("pattern", [r"(?:x)?y*", r".+", r"a|\w", r"\p{Han}{2,4}", r"(?=\d)", "a{0,3}",
                                     r"(?i)secret",  # an inline flag the prefilter is not compiled with
                                     r"[[:alpha:]]{3}"])  # POSIX to the regex module, "[:alph" + "]" to re
def test_no_prefilter_where_a_match_needs_nothing_nameable(pattern: str) -> None:
    assert required_class(pattern) is None or prefilter([pattern], 0) is None
    assert prefilter([pattern], 0) is None or prefilter([pattern], 0).search("SECRET") is not None
    assert first_class(pattern) is None and with_first_class(pattern) == pattern


# (regex, characters a match may start with, characters it may not, texts): behind the lookahead
# for its first character a pattern finds the same matches (the date-of-birth patterns take it).
FIRST = [
    (r"(?<![\d.\-/])(?:民國|民|ROC)?[ \t]?(?P<y>\d{2,3})[ \t]?年", "民R \t7", "國年Ox",
     ["民國七十年", "生於民國75年", "roc 75年", "ROC75年", " 75年", "1975年", "x.75年"]),
    (r"\b(?:Jan|Feb|Mar)[a-z]*\.?[ \t]+\d{1,2}", "JFM", "ja 1", ["born jan. 5, 1990", "JANUARY 12", "Mar 3"]),
    (r"(?:ab)?c|d?e", "acde", "b", ["xe", "abc", "cde", "ac", "dde"]),
    (r"(?<!\d)(?:19|20)\d{2}(?:\d{4})?", "12", "03", ["19991231", "2024", "119"]),
]


@pytest.mark.parametrize(("pattern", "starts", "not_starts", "texts"), FIRST)
def test_a_pattern_behind_its_first_character_finds_the_same_matches(
        pattern: str, starts: str, not_starts: str, texts: list[str]) -> None:
    first = first_class(pattern)
    assert first is not None
    assert all(re.fullmatch(first, ch) for ch in starts)
    assert not any(re.fullmatch(first, ch) for ch in not_starts)
    for flags in (0, re.IGNORECASE):
        plain, guarded = re.compile(pattern, flags), re.compile(with_first_class(pattern, flags), flags)
        for text in texts:
            assert [(m.span(), m.groupdict()) for m in guarded.finditer(text)] == [
                (m.span(), m.groupdict()) for m in plain.finditer(text)]
    assert with_first_class(pattern, re.VERBOSE) == pattern  # whitespace means something else there


# (segments of one request): values split over content parts, messages, spaced out or encoded,
# and boundaries no value crosses.
SPLIT = [
    ["身分證字號是F12345", "6784，請幫我查詢"],
    ["身分證F1234", "567", "84 請查"],
    ["報案人陳", "志明說他看見了"],
    ["請回電0912-345", "-678"],
    ["請回電0912 ", " 345 678"],
    ["聯絡人陳 志 ", "明，謝謝"],
    ["手機0912.345.", "678"],
    ["信箱 wang.xiaoming@exa", "mple.gov.tw 收"],
    ["%E9%99%B3%E5%BF", "%97%E6%98%8E 報案"],
    ["A1\u200b2345\u200b", "6789 是他的身分證"],
    ["【機", "密】\n主旨：勤務調整"],
    ["密等：機密（保密期限至中華民國120年。", "12月31日）\n主旨"],
    ["機密（保密期限至120年。", "）\n主旨：勤務調整"],
    ["會議紀錄\n", "機密（本件。", "解密）\n"],
    ["你是一位公文助理。", "請把下列段落改寫：王小明的電話是0912-345-678。", "謝謝！"],
    ["請問？", "A123456789 是誰的？"],
    ["No. 5, Ln. 3, Sec. 2, ", "Zhongshan N. Rd., Taipei City"],
]


@pytest.mark.parametrize("segments", SPLIT)
def test_skipping_uncrossable_boundaries_finds_what_every_boundary_finds(
        engine: Engine, segments: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = engine.inspect_segments(segments)
    monkeypatch.setattr(Engine, "_may_cross", lambda self, joined, boundary: True)
    every = engine.inspect_segments(segments)
    assert fast == every


def test_split_values_of_the_corpus_are_found_without_inspecting_every_boundary(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value of the sample corpus cut after its first character and in its middle."""
    requests = []
    for text in _corpus():
        for f in engine.inspect(text).findings:
            requests += [[text[:at], text[at:]] for at in {f.start + 1, (f.start + f.end) // 2}
                         if f.start < at < f.end]
    fast = [engine.inspect_segments(r) for r in requests]
    monkeypatch.setattr(Engine, "_may_cross", lambda self, joined, boundary: True)
    assert fast == [engine.inspect_segments(r) for r in requests]


@pytest.mark.parametrize("text", [
    "王小明 陳志明 林美玲三人",
    "身分證A123456789  B123456780",
    "電話0912-345-678 0912-345-679",
    "報案人王小明 陳志明",
])
def test_values_separated_by_spaces_keep_their_own_numbered_placeholders(engine: Engine, text: str) -> None:
    """presidio-anonymizer joins two values of one type with only spaces between them into one
    unnumbered placeholder, which no reply can be restored from; the engine keeps them apart."""
    verdict = engine.inspect(text)
    redacted = verdict.redacted[0]
    written = re.findall(r"<[A-Z_]+?(?:_\d+)?>", redacted)
    assert len(written) == len(verdict.findings) >= 2
    assert all(p in verdict.placeholders for p in written), redacted
    restored = re.sub(r"<[A-Z_]+_\d+>", lambda m: verdict.placeholders[m.group()], redacted)
    assert restored == text
