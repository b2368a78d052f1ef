"""Recognizer for Taiwanese vehicle registration plates (``TW_LICENSE_PLATE``).

Series (reference/identifiers.md; 交通部公路局 / 監理站 plate rules):

- since 2012-12, cars: three letters and four digits, ``ABC-1234``; the letters I and O and the
  digit 4 are not used, rental cars begin with R (``RAA-1235``), electric scooters with E;
- 2012 large commercial vehicles and old motorcycles: ``ABC-123``; old motorcycles also ``123-ABC``;
- 1992-2001 cars: ``AB-1234`` and mixed ``F2-123`` / ``2F-123``;
- 2001-2012 cars: ``1234-AB`` and ``123-AB``; trailers ``XA-032``.

The hyphen is often left out (``ABC1234``) and is optional everywhere; spaces, hyphens and
invisible characters may stand between any two characters (``recognizers.text.GAP``).

Only the 2012 car form written the way new plates are issued (upper-case or hyphenated, no I/O,
no digit 4, not an everyday abbreviation such as ``JAN`` or ``USD``, not a year such as ``ESG-2030``)
is reported on its own. Every
other form collides with flight numbers (``BR-0087``), model numbers (``MX-5000``), standards
(``ISO-9001``) and units (``125CC``), so it needs a vehicle word nearby (車號, 車牌, 牌照, 車籍,
車主, 機車, 駕駛, 車輛, car, plate ...), a word for what vehicles do (占用, 違停, 停放, 肇事, 超速,
拖吊, 闖紅燈) or a table column headed by one. When a word about flights,
products or standards stands closer to the match than any vehicle word, the match is not a plate.
This recognizer judges its own context (the engine's context enhancer leaves it alone).
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers import LANGUAGE
from recognizers.base import TaiwanPatternRecognizer
from recognizers.context import CONTEXT_KEY
from recognizers.text import GAP, ZERO_WIDTH, compact, spaced

_L = "[A-Za-z]"
_D = "[0-9]"
# Not inside a URL, path, e-mail, file name, identifier or longer code; not continuing a number.
_START = r"(?<![A-Za-z0-9_/.@#\\\-])(?<![0-9][ \t" + ZERO_WIDTH + r"]{1,3})"
_END = r"(?![A-Za-z0-9_@]|[./\\\-][A-Za-z0-9])"


def _plate(*parts: str) -> str:
    return _START + spaced(*parts) + _END


class TwLicensePlateRecognizer(TaiwanPatternRecognizer):
    """Find vehicle plates of every series in use; weak forms only next to a vehicle word."""

    ENTITY = "TW_LICENSE_PLATE"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("plate ABC-1234 (2012 car, rental, EV)", _plate(_L, _L, _L, _D, _D, _D, _D), 0.3),
        Pattern("plate ABC-123 (2012 commercial, old motorcycle)", _plate(_L, _L, _L, _D, _D, _D), 0.3),
        Pattern("plate AB-1234 (1992 car)", _plate(_L, _L, _D, _D, _D, _D), 0.3),
        Pattern("plate AB-123 (trailer)", _plate(_L, _L, _D, _D, _D), 0.3),
        Pattern("plate F2-123 (1992 mixed)", _plate(_L, _D, _D, _D, _D), 0.3),
        Pattern("plate 2F-123 (1992 mixed)", _plate(_D, _L, _D, _D, _D), 0.3),
        Pattern("plate 1234-AB (2001 car)", _plate(_D, _D, _D, _D, _L, _L), 0.3),
        Pattern("plate 123-AB (2001 car)", _plate(_D, _D, _D, _L, _L), 0.3),
        Pattern("plate 123-ABC (old motorcycle)", _plate(_D, _D, _D, _L, _L, _L), 0.3),
    ]

    # Vehicle words. Substrings of the folded, lower-cased text; ASCII words match whole words only.
    CONTEXT: ClassVar[list[str]] = [
        "車號", "車牌", "牌照", "號牌", "車籍", "車主", "自小客車", "小客車", "機車", "汽車", "駕駛", "車輛",
        "開車", "騎乘", "停車", "違停", "肇事", "拖吊", "行照", "監理", "租賃車", "計程車", "貨車", "車",
        "車牌編號", "車輛編號",
        # What vehicles do: "XY-2468長期占用消防通道", "QRS-579違規停車" name a plate without 車號.
        # 占用 alone is also what programs do to memory: only with a place a vehicle takes up.
        *(verb + place for verb in ("占用", "佔用") for place in (
            "消防通道", "車位", "車道", "道路", "人行道", "騎樓", "巷道", "停車", "紅線", "路口", "通道")),
        "停放", "違規停放", "超速", "闖紅燈", "逆向", "擦撞", "追撞", "酒駕", "逃逸", "肇逃",
        "違規行駛", "移車", "拖走", "紅線",
        "plate", "car", "cars", "vehicle", "vehicles", "motorcycle", "scooter", "truck", "taxi", "van",
        "driver", "drove", "driving", "parked", "registration",
    ]
    # Words that say the code is something else: flights, products, standards, versions.
    NEGATIVE_CONTEXT: ClassVar[list[str]] = [
        "班機", "航班", "航空", "機場", "登機", "起飛", "降落", "型號", "機型", "規格", "產品", "商品",
        "料號", "序號", "批號", "貨號", "訂單", "標準", "規範", "認證", "版本", "韌體", "晶片", "處理器",
        "顯示卡", "顯卡", "零件", "條文", "法規", "編號", "代碼", "代號", "編碼", "錯誤", "單號", "案號",
        "文號", "工單", "票號",
        "flight", "flights", "airline", "model", "standard", "version", "firmware", "part", "sku",
        "serial", "order", "invoice", "product", "item", "ticket", "room", "gate", "seat", "error",
        "code", "issue", "bug", "case", "ref", "jira",
    ]
    # Letter groups that are everyday abbreviations, units or currencies, not plate series.
    STOP_LETTERS: ClassVar[frozenset[str]] = frozenset({
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "SEPT", "OCT", "NOV", "DEC",
        "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "TWD", "NTD", "USD", "EUR", "JPY", "RMB",
        "CNY", "HKD", "GBP", "AUD", "CAD", "KRW", "SGD", "NT", "US", "ISO", "CNS", "RFC", "IEC", "CVE",
        "CWE", "PEP", "JIS", "DIN", "ANS", "BS", "EN", "GB", "KS", "NFPA", "GTX", "RTX", "GPT", "DDR",
        "USB", "LTE", "API", "SOP", "KPI", "SKU", "CPU", "GPU", "RAM", "SSD", "HDD", "PDF", "THE",
        "AND", "FOR", "ARE", "WAS", "NOT", "BUT", "HAS", "HAD", "ALL", "ANY", "CAN", "NEW", "NOW",
        "OUR", "OUT", "SEE", "TOP", "TWO", "WHO", "WHY", "YOU", "PER", "VOL", "NO", "AM", "PM", "CC",
        "KG", "KM", "MM", "CM", "ML", "MB", "TB", "KB", "HP", "KW", "PS", "NM", "MG", "DB", "HZ",
        "MP", "ERR", "REF", "INV", "REQ", "BUG", "DOC", "TKT", "PRJ", "VER", "REV",
    })

    WEAK_SCORE = 0.3            # every form but the 2012 car form: needs a vehicle word
    STRONG_SCORE = 0.85         # hyphenated or spaced 2012 car form
    STRONG_COMPACT_SCORE = 0.6  # the same written in one run, e.g. ABC1234
    CONTEXT_BOOST = 0.4
    MIN_SCORE_WITH_CONTEXT = 0.75
    NEGATIVE_SCORE = 0.1
    PREFIX_CHARS = 25
    SUFFIX_CHARS = 12
    HEADER_LINES = 30

    def __init__(
        self,
        patterns: list[Pattern] | None = None,
        context: list[str] | None = None,
        negative_context: list[str] | None = None,
        supported_language: str = LANGUAGE,
        supported_entity: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(patterns, context, supported_language, supported_entity, name)
        self.negative_context = list(negative_context or self.NEGATIVE_CONTEXT)
        self._cues = _CueFinder(self.context, self.negative_context)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        kept: list[RecognizerResult] = []
        results = sorted(super().analyze(text, entities, nlp_artifacts, regex_flags), key=lambda r: r.start)
        for result in results:
            score = self._score(text, result.start, result.end, result.recognition_metadata)
            if score is None:
                continue
            previous = kept[-1] if kept else None
            if (previous is not None and previous.score > score
                    and _LIST_SEPARATOR_RE.fullmatch(text, previous.end, result.start)):
                score = previous.score  # "車號 ABC-1235、XY-1234": one context word for a whole list
            result.score = score
            result.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
            if result.analysis_explanation is not None:
                result.analysis_explanation.set_improved_score(score)
            kept.append(result)
        return kept

    def _score(self, text: str, start: int, end: int, metadata: dict[str, object]) -> float | None:
        """The match's score from its form and its surroundings; None when it is no plate at all."""
        raw = text[start:end]
        if _GLUED_RE.search(raw) and _CONTINUES_RE.match(text, end):
            return None  # part of a longer spaced-out code (an ID written "J 1 9 9 0 4 ..."), not a plate
        value = compact(raw)
        letters = "".join(ch for ch in value if ch.isalpha())
        if letters in self.STOP_LETTERS and len(value) - len(letters) <= 3 and not value[0].isalpha():
            return None  # 125CC, 300KG: a quantity and its unit
        score = self._form_score(raw, value, letters)
        cue = self._cues.nearest(text, start, end, self.PREFIX_CHARS, self.SUFFIX_CHARS)
        if cue is None and self._column_header_says_vehicle(text, start):
            cue = ("column header", True)
        if cue is None:
            return score
        word, positive = cue
        if not positive:
            return self.NEGATIVE_SCORE
        metadata[CONTEXT_KEY] = word
        return min(1.0, max(score + self.CONTEXT_BOOST, self.MIN_SCORE_WITH_CONTEXT))

    def _form_score(self, raw: str, value: str, letters: str) -> float:
        if not (len(value) == 7 and value[:3].isalpha() and value[3:].isdigit()):
            return self.WEAK_SCORE
        if letters in self.STOP_LETTERS or "I" in letters or "O" in letters or "4" in value:
            return self.WEAK_SCORE
        if value[3:5] in ("19", "20"):
            return self.WEAK_SCORE  # ESG-2030, SDG-2030: an abbreviation and a year
        raw_letters = "".join(ch for ch in raw if ch.isalpha())
        separated = not raw.isalnum()
        if not raw_letters.isupper() and "-" not in raw:
            return self.WEAK_SCORE  # "abc1234", "Abc 5678": user names and words, not plates
        return self.STRONG_SCORE if separated else self.STRONG_COMPACT_SCORE

    def _column_header_says_vehicle(self, text: str, start: int) -> bool:
        """True when the match sits in a table column whose header is a vehicle word (車號, 車牌 ...)."""
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        line = text[line_start:line_end if line_end >= 0 else len(text)]
        delimiter = next((d for d in ("\t", "|", ",") if d in line), None)
        if delimiter is None:
            return False
        column = text.count(delimiter, line_start, start)
        width = line.count(delimiter)
        end = line_start - 1
        for _ in range(self.HEADER_LINES):
            if end <= 0:
                return False
            begin = text.rfind("\n", 0, end) + 1
            header = text[begin:end]
            if not header.strip():
                return False
            if header.count(delimiter) == width:
                cell = header.split(delimiter)[column]
                if self._cues.has_positive(cell):
                    return True
            end = begin - 1
        return False


_LIST_SEPARATOR_RE = re.compile(r"[ ]{0,2}(?:[、,;/]|和|及|與|或|and|or)[ ]{0,2}")
_GLUED_RE = re.compile(r"[ \t" + ZERO_WIDTH + "]")
_CONTINUES_RE = re.compile(GAP.replace("{0,3}", "{1,3}") + "[A-Za-z0-9](?![A-Za-z0-9])")


class _CueFinder:
    """Finds the vehicle word or the counter-word nearest to a match."""

    def __init__(self, positive: list[str], negative: list[str]) -> None:
        words = sorted({w.lower() for w in positive + negative}, key=len, reverse=True)
        # CJK words match anywhere; ASCII words only as whole words ("car" is not in "card").
        alternatives = [rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w) for w in words]
        self._re = re.compile("|".join(alternatives), re.IGNORECASE)
        self._positive = {w.lower() for w in positive}

    def nearest(self, text: str, start: int, end: int, before: int, after: int) -> tuple[str, bool] | None:
        """(word, is_vehicle_word) for the cue closest to ``text[start:end]``, if any is in the window."""
        best: tuple[int, str] | None = None
        for m in self._re.finditer(text, max(0, start - before), start):
            distance = start - m.end()
            if best is None or distance <= best[0]:
                best = (distance, m.group())
        following = self._re.search(text, end, min(len(text), end + after))
        if following is not None and (best is None or following.start() - end < best[0]):
            best = (following.start() - end, following.group())
        if best is None:
            return None
        return best[1], best[1].lower() in self._positive

    def has_positive(self, text: str) -> bool:
        return any(m.group().lower() in self._positive for m in self._re.finditer(text))
