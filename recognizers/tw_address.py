"""Recognizer for street-level Taiwanese addresses (地址, ``TW_ADDRESS``).

Format (內政部 門牌整編; 中華郵政 地址英譯): an address is written from the largest unit to the
smallest: postal code, 縣市, 鄉鎮市區, 村里, 鄰, 路/街/大道 (with 段), 巷, 弄, 號, 樓, 之N. The
counties, cities, townships and districts are shipped in ``recognizers/data/tw_districts.txt``.
A house number (號) is what makes a place an address of someone: a city, a district or a road
alone is public geography and is not reported. Digits may be full-width (folded before matching)
or Chinese numerals; 臺 and 台 are both accepted.

The span runs from the first component written to the last of 號/樓/之N (a room 室 is outside it).
The English postal form ("3F., No. 5, Ln. 12, Sec. 2, Zhongshan N. Rd., Zhongshan Dist., Taipei
City 104") is recognised from the floor or number to the city and postal code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer

DISTRICTS_FILE = Path(__file__).parent / "data" / "tw_districts.txt"


def load_divisions(path: Path = DISTRICTS_FILE) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(counties and cities, townships and districts) as written in the data file."""
    counties: list[str] = []
    districts: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        county, names = line.split("\t", 1)
        counties.append(county)
        districts.update(names.split())
    return tuple(counties), tuple(sorted(districts))


# Counties merged into the special municipalities in 2010 and 2014, still written on old documents
# and signs, and the short forms used everywhere (北市, 新北, 高市).
FORMER_COUNTIES = ("臺北縣", "桃園縣", "臺中縣", "臺南縣", "高雄縣")
SHORT_COUNTIES = ("北市", "新北", "中市", "南市", "高市", "北縣", "竹市", "竹縣", "嘉市", "嘉縣")


def former_names(districts: tuple[str, ...]) -> tuple[str, ...]:
    """A district's name as a former 市/鎮/鄉 (板橋區 was 板橋市, 鶯歌區 鶯歌鎮), stems of 2+ characters."""
    return tuple(name[:-1] + suffix for name in districts if name.endswith("區") and len(name) >= 3
                 for suffix in "市鎮鄉")


Trie = dict[str, "Trie"]


def _alternation(names: tuple[str, ...]) -> str:
    """A regex matching any of the names (臺 written either way), factored as a trie.

    Python's re tries the branches of a plain alternation one by one at every position; with a
    thousand place names that made a 250,000-character paste take 11 s. A trie tries one branch
    per first character.
    """
    trie: Trie = {}
    for name in names:
        node = trie
        for ch in name.replace("台", "臺"):
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_regex(trie)


def _trie_regex(node: Trie) -> str:
    ends = "" in node
    branches = [("[臺台]" if ch == "臺" else re.escape(ch)) + _trie_regex(child)
                for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return "(?:" + body + ")?" if ends else body


COUNTIES, DISTRICTS = load_divisions()

# Digits (already folded from full-width) or Chinese numerals.
NUM = r"(?:\d{1,5}|[零〇一二三四五六七八九十百]{1,4})"
SP = r"[ \t]?"
# Characters that end a place name: grammar words and verbs that stand right before an address
# ("住在", "寄到", "位於") and the address units themselves. Without them the leftmost match of
# "他住在中山路5號" would start at 他.
_NOT_IN_NAME = (
    "的在於住址是為到從至往去搬寄送位設及與或請將把向由經他她我你您其家戶籍居所係即地"
    "縣區號樓巷弄段鄰"
)
# Python's re has no class subtraction: a negative lookahead does it.
NAME_CHAR = r"(?:(?![" + _NOT_IN_NAME + r"])[\u4e00-\u9fff])"

POSTAL = r"\d{3}(?:\d{2,3})?" + SP
COUNTY = _alternation(COUNTIES + FORMER_COUNTIES + SHORT_COUNTIES)
DISTRICT = _alternation(DISTRICTS + former_names(DISTRICTS))
VILLAGE = NAME_CHAR + r"{1,3}[村里]"
NEIGHBOURHOOD = NUM + "鄰"
# 中山北路, 中正一路, 凱達格蘭大道: a name, an optional direction and number, then 路/街/大道.
ROAD = NAME_CHAR + r"{1,4}?[東西南北]?[一二三四五六七八九十]?(?:路|街|大道)" + r"(?:" + SP + NUM + "段)?"
HOUSE = NUM + r"(?:[-之]" + NUM + r")?" + SP + "號"
FLOOR = (r"(?:" + NUM + r"|[Bb]\d{1,2}|地下" + NUM + r"?)" + SP
         + r"(?:樓|[Ff](?![A-Za-z]))(?:[-之]" + NUM + ")?")

ADMIN = r"(?:(?:(?<!\d)" + POSTAL + r")?" + COUNTY + SP + r")?(?:" + DISTRICT + SP + r")?"
LOCAL = (
    r"(?:" + VILLAGE + SP + r"(?:" + NEIGHBOURHOOD + SP + r")?(?:" + ROAD + ")?"
    + r"|" + NEIGHBOURHOOD + SP + r"(?:" + ROAD + ")?"
    + r"|" + ROAD + r")"
)
TAIL = (
    r"(?:" + SP + NUM + "巷)?(?:" + SP + NUM + "[弄衖])?" + SP + HOUSE
    + r"(?:之" + NUM + r")?(?:" + SP + FLOOR + r")?"
)
# A village must be followed by 鄰 or a road ("走了3公里5號" is not an address).
CHINESE_ADDRESS = ADMIN + r"(?!" + VILLAGE + SP + HOUSE + ")" + LOCAL + TAIL

_EN_WORD = r"[A-Z][A-Za-z'’\-]*\.?"
_EN_NAME = _EN_WORD + r"(?:\s" + _EN_WORD + r"){0,3}"
ENGLISH_ADDRESS = (
    r"\b(?:(?:\d{1,3}F\.?(?:-\d+)?|(?:Floor|Fl\.)\s?\d{1,3}),?\s*)?"
    r"No\.\s?\d{1,5}(?:-\d{1,4})?"
    r"(?:,\s*(?:Aly|Alley|Ln|Lane)\.?\s?\d{1,4}(?:-\d{1,4})?)*"
    r"(?:,\s*Sec\.?\s?\d{1,2})?"
    r",\s*" + _EN_NAME + r"\s(?:Rd|St|Blvd|Ave|Road|Street|Boulevard|Avenue)\.?"
    r"(?:,\s*" + _EN_NAME + r"\s(?:Vil|Village|Li)\.?)?"
    r"(?:,\s*" + _EN_NAME + r"\s(?:Dist|District|Township|Twp|City)\.?)?"
    r"(?:,\s*" + _EN_NAME + r"\s(?:City|County)\.?)?"
    r"(?:\s?\d{3}(?:\d{2,3})?\b)?"
)


class TwAddressRecognizer(TaiwanPatternRecognizer):
    """Find street-level addresses with a house number, in Chinese or the English postal form."""

    ENTITY = "TW_ADDRESS"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("TW address (Chinese)", CHINESE_ADDRESS, 0.7),
        Pattern("TW address (English postal form)", ENGLISH_ADDRESS, 0.7),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "地址", "住址", "戶籍", "住所", "居所", "通訊處", "寄送", "住在", "住於", "居住", "address",
    ]

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Run the patterns only around each house number (N號, "No. N"): every address has one.

        The patterns are costly to try at every position of a long paste (Presidio matches with
        the ``regex`` module: 0.8 s for 40,000 characters); the windows reach far enough before
        the 號 (and after "No.") for the longest address written.
        """
        results: list[RecognizerResult] = []
        for start, end in _windows(text):
            for result in super().analyze(text[start:end], entities, nlp_artifacts, regex_flags):
                result.start += start
                result.end += start
                if not any(r.start == result.start and r.end == result.end for r in results):
                    results.append(result)
        return results


# How far an address reaches before its house number, and after its English "No.".
BEFORE_HOUSE_NUMBER, AFTER_HOUSE_NUMBER = 90, 24
BEFORE_ENGLISH_NO, AFTER_ENGLISH_NO = 24, 200
_ANCHORS = re.compile(HOUSE + r"|No\.")


def _windows(text: str) -> list[tuple[int, int]]:
    """Merged (start, end) windows of ``text`` around every 號 and "No."."""
    windows: list[tuple[int, int]] = []
    for m in _ANCHORS.finditer(text):
        if m.group().endswith("號"):
            start, end = m.start() - BEFORE_HOUSE_NUMBER, m.end() + AFTER_HOUSE_NUMBER
        else:
            start, end = m.start() - BEFORE_ENGLISH_NO, m.end() + AFTER_ENGLISH_NO
        start, end = max(0, start), min(len(text), end)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
        else:
            windows.append((start, end))
    return windows
