"""Recognizer for birth dates (出生年月日, ``DATE_OF_BIRTH``).

Formats (戶籍謄本, 身分證 and government forms use the ROC calendar: 民國 year = Gregorian - 1911):
``民國74年5月3日``, ``七十四年五月三日``, ``74.05.03``, ``74/5/3``, ``0740503`` (7 digits, 戶役政
systems), and Gregorian ``西元1985年5月3日``, ``1985-05-03``, ``1985/5/3``, ``19850503``,
``May 3, 1985``, ``3 May 1985``. A date is a birth date only with birth context: a word such as
出生, 生日, 生於, DOB or born close before it (in the same clause, no other date between), 生 or
出生 right after it (``74年5月3日生``), or a column headed 出生年月日 / 生日 / DOB in a table.
Other dates (a 申請日期, a deadline, a news date) are not reported. The span is the date only,
with 民國/西元 included.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers import LANGUAGE
from recognizers.context import CONTEXT_KEY
from recognizers.prefilter import with_first_class
from recognizers.table import column_header

_CN_DIGITS = "零〇一二三四五六七八九十"
CN_NUM = "[" + _CN_DIGITS + "]{1,4}"
MONTH_ABBREVIATIONS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAME = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"

# Each pattern names its groups y (year), m (month), d (day); ``roc`` patterns give ROC years.
_D = r"(?<![\d.\-/])"
_E = r"(?![\d.\-/]?\d)"
DATE_PATTERNS: tuple[tuple[str, re.Pattern[str], bool], ...] = tuple(
    # Behind a lookahead for their first character (``with_first_class``): the same matches, found
    # without trying each pattern at every position of the text.
    (name, re.compile(with_first_class(regex, re.IGNORECASE), re.IGNORECASE), roc) for name, regex, roc in (
        ("ROC 年月日", _D + r"(?:民國|民|ROC)?[ \t]?(?P<y>\d{2,3})[ \t]?年[ \t]?(?P<m>\d{1,2})[ \t]?月"
         r"[ \t]?(?P<d>\d{1,2})[ \t]?[日號]?", True),
        ("ROC 年月日 (Chinese numerals)", r"(?:民國)?(?P<y>" + CN_NUM + r")年(?P<m>" + CN_NUM + r")月"
         r"(?P<d>" + CN_NUM + r")[日號]", True),
        ("Gregorian 年月日", _D + r"(?:西元|公元)?[ \t]?(?P<y>\d{4})[ \t]?年[ \t]?(?P<m>\d{1,2})[ \t]?月"
         r"[ \t]?(?P<d>\d{1,2})[ \t]?[日號]?", False),
        ("Gregorian y-m-d", _D + r"(?:西元)?(?P<y>(?:19|20)\d{2})(?P<sep>[\-/.])(?P<m>\d{1,2})(?P=sep)"
         r"(?P<d>\d{1,2})" + _E, False),
        ("ROC y.m.d", _D + r"(?:民國)?(?P<y>\d{2,3})(?P<sep>[\-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _E,
         True),
        ("Gregorian d/m/y or m/d/y", _D + r"(?P<a>\d{1,2})(?P<sep>[\-/.])(?P<b>\d{1,2})(?P=sep)"
         r"(?P<y>(?:19|20)\d{2})" + _E, False),
        ("Gregorian yyyymmdd", r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)(?!\d)", False),
        ("ROC yyymmdd", r"(?<!\d)(?P<y>[01]\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)(?!\d)", True),
        ("English month d, y", r"\b(?P<mn>" + _MONTH_NAME + r")[ \t]+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?[ \t]+"
         r"(?P<y>(?:19|20)\d{2})\b", False),
        ("English d month y", r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?[ \t]+(?P<mn>" + _MONTH_NAME + r"),?[ \t]+"
         r"(?P<y>(?:19|20)\d{2})\b", False),
    )
)

# Birth words standing before the date. 生於 alone would match 發生於, 出生 would match 出生率:
# those phrases are blanked out first.
BEFORE_WORDS: tuple[str, ...] = (
    "出生", "生日", "生於", "誕生", "出世", "dob", "d.o.b", "born", "birth", "生年月日",
)
NOT_BIRTH_BEFORE = ("發生於", "產生於", "衍生於", "生於憂患", "出生率", "出生數", "出生人口", "出生地")
AFTER_WORDS: tuple[str, ...] = ("出生", "生", "誕生", "出世")
NOT_BIRTH_AFTER = ("生效", "生產", "發生", "生活", "生病", "生意", "產生")
# A clause boundary: context does not reach across it.
CLAUSE_END = re.compile(r"[。；;！？!?\n]")
BEFORE_CHARS = 14

HEADER_WORDS = ("出生", "生日", "DOB", "Date of Birth", "birth")


def _cn_value(text: str) -> int:
    """七十四 -> 74, 一一三 -> 113 (positional), 十二 -> 12."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0}
    if "十" not in text:
        value = 0
        for c in text:
            value = value * 10 + digits[c]
        return value
    tens, _, ones = text.partition("十")
    return (digits[tens] if tens else 1) * 10 + (digits[ones] if ones else 0)


def _number(text: str) -> int | None:
    try:
        return int(text) if text.isdigit() else _cn_value(text)
    except (KeyError, ValueError):
        return None


def plausible_date(match: re.Match[str], roc: bool, this_year: int = 2026) -> bool:
    """A real calendar day of a plausible birth year (1900 to now)."""
    groups = match.groupdict()
    year = _number(groups["y"])
    if year is None:
        return False
    if groups.get("mn"):
        month: int | None = MONTH_ABBREVIATIONS.index(groups["mn"][:3].lower()) + 1
        day = _number(groups["d"])
    elif groups.get("a"):  # d/m/y or m/d/y: accept when either reading is a date
        a, b = int(groups["a"]), int(groups["b"])
        month, day = (a, b) if a <= 12 else (b, a)
    else:
        month, day = _number(groups["m"]), _number(groups["d"])
    if month is None or day is None:
        return False
    if roc:
        year += 1911
    return 1900 <= year <= this_year and 1 <= month <= 12 and 1 <= day <= 31


def birth_context(text: str, start: int, end: int) -> str | None:
    """The birth word that makes ``text[start:end]`` a birth date, if any (folded text)."""
    window_start = max(0, start - BEFORE_CHARS)
    before = text[window_start:start]
    cut = max((m.end() for m in CLAUSE_END.finditer(before)), default=0)
    before = before[cut:].lower()
    for bad in NOT_BIRTH_BEFORE:
        before = before.replace(bad, "#" * len(bad))
    for word in BEFORE_WORDS:
        at = before.rfind(word)
        # No other number (another date) between the word and this date.
        if at >= 0 and not re.search(r"\d{2,}", before[at + len(word):]):
            return word
    after = text[end:end + 4]
    for word in AFTER_WORDS:
        if after.lstrip(" )）").startswith(word) and not any(after.lstrip(" )）").startswith(bad)
                                                            for bad in NOT_BIRTH_AFTER):
            return word
    return None


class DateOfBirthRecognizer(LocalRecognizer):
    """Find dates that the text says are someone's birth date."""

    ENTITY = "DATE_OF_BIRTH"
    NAME = "DateOfBirthRecognizer"
    CONTEXT: ClassVar[list[str]] = list(BEFORE_WORDS)
    SCORE = 0.85

    def __init__(self, supported_language: str = LANGUAGE) -> None:
        super().__init__(
            supported_entities=[self.ENTITY], supported_language=supported_language,
            name=self.NAME, context=list(self.CONTEXT),
        )

    def load(self) -> None:
        """Nothing to load: the patterns are compiled at import."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        taken: list[tuple[int, int]] = []
        for pattern_name, pattern, roc in DATE_PATTERNS:
            for match in pattern.finditer(text):
                start, end = match.span()
                if any(s < end and start < e for s, e in taken) or not plausible_date(match, roc):
                    continue
                word = birth_context(text, start, end)
                if word is None and column_header(text, start, HEADER_WORDS) is None:
                    continue
                taken.append((start, end))
                results.append(self._result(start, end, pattern_name, word))
        return results

    def _result(self, start: int, end: int, pattern: str, word: str | None) -> RecognizerResult:
        explanation = AnalysisExplanation(
            recognizer=self.NAME, original_score=self.SCORE, pattern_name=pattern,
            textual_explanation=f"date with birth context ({word or 'column header'})",
        )
        return RecognizerResult(
            entity_type=self.ENTITY, start=start, end=end, score=self.SCORE,
            analysis_explanation=explanation,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.NAME,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                # The recognizer judged its own context: the generic enhancer must not add to it.
                RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
                CONTEXT_KEY: word,
            },
        )
