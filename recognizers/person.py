"""Person names in Chinese text: surnames, given-name characters, jieba's dictionary and context words."""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers import LANGUAGE, jieba_dictionary
from recognizers.context import CONTEXT_KEY
from recognizers.name_net import NET_PATH
from recognizers.name_tagger import Lexicon, NameTagger
from recognizers.table import cells_under

DATA_DIR = Path(__file__).parent / "data"
JIEBA_CACHE_DIR_VARIABLE = "GUARD_JIEBA_CACHE_DIR"

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Middle dots joining the parts of indigenous and transliterated names, after ``fold`` (which turns
# the full-width "．" into "."): · ‧ • . ・ ∙ ⋅ and the half-width katakana dot.
_DOTS = "\u00b7\u2027\u2022.\u30fb\u2219\u22c5\uff65"
# Anchored at the start of a run of Chinese characters, with possessive runs: a failing match neither
# rescans the rest of the run from every position nor backtracks inside it (linear on a long run).
_HAN_RE = re.compile(f"[{_CJK}]")
_DOTTED_RE = re.compile(f"(?<![{_CJK}])[{_CJK}]++(?:[{_DOTS}][{_CJK}]++)+")
_SALUTATION_RE = re.compile(
    # greetings in any case (hi Kevin), titles as written (ms Excel names no one)
    r"\b(?:(?i:Dear|Hi|Hello|Hey)|Mr|Mrs|Ms|Miss|Dr|Prof)\.?[ \t]+(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?[ \t]+)?"
    r"([A-Z][a-z]+(?:[ \t-][A-Z][a-z]+){0,2})\b"
)
# "Dear Sir", "Dear All", "Hi There", "Hello Claude": salutations that name no person (the AI services
# staff write to are greeted by name: "Hi Claude, 請幫我…" must not lose its addressee).
_SALUTATION_NOT_NAMES = frozenset({
    "sir", "madam", "madame", "all", "customer", "customers", "colleague", "colleagues", "team", "friend",
    "friends", "member", "members", "user", "users", "applicant", "client", "partner", "partners",
    "student", "students", "parent", "parents", "everyone", "there", "world", "guys", "folks", "again",
    "claude", "gemini", "copilot", "bard", "bing", "siri", "alexa", "cortana", "google", "assistant",
})
# A form field that asks for a name (姓名：, 申請人姓名：, 中文姓名: …, a JSON key "姓名": "…"), or a table
# column headed by one: what fills it up to the next separator is a name whatever its surname (兀育成,
# 瓦旦), when it is two to four Chinese characters.
_NAME_FIELD_WORDS = ("姓名", "名字", "本名")  # not 全名: 機關全名：行政院 names an agency
_NAME_FIELD_RE = re.compile(
    rf"(?:{'|'.join(_NAME_FIELD_WORDS)})[\"'」]?[ \t]*[:：=][ \t]*[\"'「]?([{_CJK}]{{2,4}})(?![{_CJK}])"
)
# A table cell that is two to four Chinese characters (and spaces around them).
_NAME_CELL_RE = re.compile(rf"[ \t]*([{_CJK}]{{2,4}})[ \t\r]*")
# What fills a name field without naming anyone.
_NAME_FIELD_PLACEHOLDERS = frozenset({
    "不詳", "同上", "如上", "請填", "請填寫", "填寫", "未填", "未知", "匿名", "保密", "隱匿", "從略", "空白",
    "待查", "待補", "見附件", "詳附件", "另附", "本人", "略",
})
# Romanised Taiwanese names (Wade-Giles, Tongyong and Hanyu spellings of the common surnames), with the
# hyphenated given name that passports and English documents use: "Chen Chih-ming", "Mei-hua Lin",
# "CHEN, CHIH-MING".  The hyphenated syllable pair is what tells a name from an English word.
_ROMAN_SURNAMES = (
    "Chen|Lin|Huang|Hwang|Chang|Zhang|Li|Lee|Wang|Wong|Wu|Liu|Tsai|Cai|Yang|Hsu|Xu|Cheng|Hsieh|Xie|Kuo|Guo"
    "|Hung|Hong|Chiu|Qiu|Tseng|Zeng|Liao|Lai|Chou|Zhou|Yeh|Ye|Su|Chuang|Zhuang|Lu|Chiang|Jiang|Ho|He|Lo|Luo"
    "|Kao|Gao|Pan|Chien|Jian|Chu|Zhu|Chung|Zhong|Peng|Yu|Tu|Shih|Shi|Hu|Tang|Fang|Weng|Sung|Song|Kang|Ko|Ke"
    "|Tai|Fan|Wei|Shen|Hsiao|Xiao|Yen|Yan|Lien|Ma|Fu|Teng|Deng|Tien|Tian|Tsao|Cao|Yuan|Hsueh|Xue|Tsui|Cui"
    "|Yao|Kuan|Guan|Chin|Qin|Chi|Ji|Hsiung|Xiong|Pai|Bai|Mao|Fu|Sun|Tung|Dong|Lung|Long|Chao|Zhao"
)
_ROMAN_GIVEN = r"[A-Z][a-z]{1,5}-[a-z]{1,5}"
# Bounded by anything but a Latin letter or digit (not ``\b``: a Chinese character is a word
# character too, and "承辦人Chen Chih-ming與…" has no space on either side).
_NOT_LATIN_BEFORE, _NOT_LATIN_AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
# Every form starts with a capital: the lookahead in front skips other positions without trying the
# look-behind and the 150 surnames there (a 2,000-character prompt: 0.50 -> 0.03 ms).
_ROMAN_NAME_RE = re.compile(
    rf"(?=[A-Z])(?:{_NOT_LATIN_BEFORE}(?:(?:{_ROMAN_SURNAMES}),?[ \t]+{_ROMAN_GIVEN}|{_ROMAN_GIVEN}[ \t]+"
    rf"(?:{_ROMAN_SURNAMES})){_NOT_LATIN_AFTER}"
    rf"|{_NOT_LATIN_BEFORE}(?:{_ROMAN_SURNAMES.upper()}),?[ \t]+[A-Z]{{1,6}}-[A-Z]{{1,6}}{_NOT_LATIN_AFTER})"
)
# Names in Latin letters in Chinese text: indigenous (Walis Nokan), Southeast-Asian (Nguyen Thi Mai),
# Western (Kevin). Capitalised words say nothing alone (product names, English words), so only a
# form label or role that names a person right before them, or an honorific right after, makes them
# one: "聯絡人：Walis Nokan", "Nguyen Thi Mai女士". Titles of office (經理, 主任) are left out: staff
# write "請經理Review" and "主任Check".  All-capital words count only two or more together (passport
# style "WALIS NOKAN"), never one alone (IT, HR, PDF).
_LATIN_WORD = r"[A-Z][a-z]+(?:['-][A-Za-z][a-z]*)?"
_LATIN_NAME_RE = re.compile(
    rf"{_NOT_LATIN_BEFORE}(?:{_LATIN_WORD}(?:[ \t]+{_LATIN_WORD}){{0,3}}"
    rf"|[A-Z]{{2,}}(?:[ \t]+[A-Z]{{2,}}){{1,3}}){_NOT_LATIN_AFTER}"
)
LATIN_NAME_ROLES: tuple[str, ...] = (
    "姓名", "名字", "全名", "報案人", "陳情人", "當事人", "嫌疑人", "被告", "原告", "證人", "告訴人",
    "被害人", "受害人", "行為人", "關係人", "代理人", "監護人", "負責人", "車主", "駕駛人", "申請人",
    "申報人", "聯絡人", "聯繫人", "連絡人", "收件人", "寄件人", "寄件者", "收件者", "檢舉人", "承辦人",
    "經辦人", "填表人", "立書人", "保證人", "委託人", "受託人", "移工", "外籍配偶", "配偶", "學生", "病患",
    "患者", "住戶", "房客", "屋主",
    # Labour, immigration and case work, where names are often written in Latin letters (看護工Siti
    # Aminah, 雇主Maria Santos, 新住民Tran Thi Lan). Roles of a case, not of an office or of everyday
    # life: after 經理 staff write English verbs ("請經理Review"), and after 員工, 民眾 or 兒子 apps and
    # products ("員工Google一下", "民眾用Line Pay").
    "看護工", "看護", "外勞", "勞工", "漁工", "船員", "幫傭", "雇主", "僱主", "新住民", "外配", "外籍人士",
    "旅客", "乘客", "遊客", "受刑人", "收容人", "個案", "案主", "嫌犯", "犯嫌", "嫌疑犯", "死者", "傷者",
    "家屬", "所有人", "受文者", "繼承人",
)
ROMANISED_NAME_SCORE = 0.75
# What may stand between a context word and the name: "姓名：王小明", "Dear 王小明".
_JOINER_CHARS = " \t:："
_JOINER_LONGEST = 2
_JOINER = f"[{_JOINER_CHARS}]{{0,{_JOINER_LONGEST}}}"
# Where a list element or a line ends: a name standing alone between these is a list entry.
_SEPARATORS = frozenset("、，,;；。：:\n\r\t |｜/（()）「」『』[]【】<>《》\"'")
# Streets, schools and places are often named after people (林森北路, 中正國小, 逢甲大學): a
# candidate followed by one of these is a place name.
# Punctuation, symbols and spaces: a name never starts or ends with one ("孩子王。" is not "王。").
_EDGE_NOT_NAME_RE = re.compile(r"[\W_]")


def _without_edge_punctuation(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and _EDGE_NOT_NAME_RE.match(text, start):
        start += 1
    while end > start and _EDGE_NOT_NAME_RE.match(text, end - 1):
        end -= 1
    return start, end


_PLACE_AFTER_RE = re.compile(
    "[東西南北中]?(?:路|街|巷|弄|大道|國小|國中|高中|高工|高商|大學|醫院|診所|公園|車站|捷運站|紀念館|紀念堂"
    "|新村|社區|里|村|鄉|鎮|市|縣|區|堂|館|廟|宮|寺|橋)"
)
# After a lone surname, words that make it a reference to someone unnamed: 陳姓男子, 林女, 王嫌, 李男
# (but 林女士 is "Ms Lin", a person reference the rules report).
_SURNAME_REFERENCE_RE = re.compile("(?:姓|氏|女(?!士)|男|嫌|童|婦|翁|嬤)")
# Headers of tables and lists of people; a list entry within _HEADER_WINDOW characters after one
# of them has it as context ("姓名,身分證,車號⏎張家怡,R163…").
HEADER_WORDS: tuple[str, ...] = ("姓名", "名單", "名冊", "出席", "列席", "人員", "成員", "與會", "name")
_HEADER_WINDOW = 80
# Surname + one of these is "the X family" (陳家, 李氏).
_FAMILY_SUFFIXES = frozenset("家氏")
_LIST_JOINERS = frozenset("、，,;；及與和跟/ \t")

# Scores.  The policy threshold is 0.5: a name with a context word scores 0.85 or more, a name with
# only its own evidence (common surname, typical given-name characters, not a dictionary word)
# about 0.6, an ordinary word is never reported.
STRONG_CONTEXT_SCORE = 0.85
MAX_SCORE = 0.95
MIN_REPORTED_SCORE = 0.4
SURNAME_ONLY_SCORE = 0.55

# The tagger's names: score = base + weight × its mean marginal probability (+ a bonus with a role or
# title next to the name), so p = 0.5 scores 0.6 and p = 0.3 falls below the policy's 0.5.
_MODEL_BASE_SCORE = 0.35
_MODEL_WEIGHT = 0.5
_MODEL_CONTEXT_BONUS = 0.1
# Below this probability an ordinary dictionary word (not tagged as a name by jieba) is not a name
# without context; above it the model's evidence wins (周恩來 is tagged "t" in jieba's dictionary).
_MODEL_SURE = 0.9
# Without a role or title next to it, a tagged name needs at least this probability (scores 0.625), and
# one below _MODEL_SURE may not start or end inside a common word (和解金 is not a name 解金). The
# network (``name_net.py``) reads 15 characters either side and tags more names than the CRF did,
# with less certainty: these two keep its unsure guesses in running text out.
_MODEL_ALONE_MIN = 0.55

_TIER_WEIGHT = {"compound": 0.35, "common": 0.3, "rare": 0.15}
_NAME_CHAR_WEIGHT = 0.15  # a given-name character typical of names
_OTHER_CHAR_WEIGHT = 0.05  # any other (non-grammar) character
_ISOLATED_BONUS = 0.15  # the name is a whole list entry / table cell
_INTRO_BONUS = 0.3  # a verb or preposition that introduces a person (給, 向, Dear)

# A dictionary word counts as an ordinary word when it is at least this frequent in jieba's
# dictionary; words jieba tags as person names (nr*) need a higher frequency, because jieba's
# dictionary tags many ordinary words nr (谢谢, 小姐, 陈述) and many real names too.
_ORDINARY_MIN_FREQ = 20
_ORDINARY_NAME_TAGGED_MIN_FREQ = 150
# For the given name alone ("美國" in 李美國) only very common words count against the name.
_GIVEN_WORD_MIN_FREQ = 2000
# A name may not end or start inside a word at least this frequent (jieba segmentation).
_CROSSING_MIN_FREQ = 100
# Words this frequent end the name part of a dotted name: "我朋友瓦歷斯·諾幹" → "瓦歷斯·諾幹".
_COMMON_WORD_MIN_FREQ = 50

# Grammar: never part of a name, not even of a transliterated one (so not 將 or 那, as in
# 夷將·拔路兒, 莫那·魯道).
GRAMMAR_CHARS = frozenset(
    "的了是在於和與及或等之而也就都要會不這被把讓從向對為以因但並且則即還又再很只已說請給嗎呢吧啊著過"
    "您你我他她它們"
)
# Grammar plus characters that do not occur in Han given names: a candidate containing one is rejected.
STOP_CHARS = GRAMMAR_CHARS | frozenset(
    "那所能該使更最得沒無有此各每某將來到去太年月日時分秒號條項款點第元萬億人者局署處科課股院部廳府市縣鄉鎮區里村"
    "路街段巷弄樓室先女員官警啦喔嗯哦呀嘛一二三四五六七八九十百千零兩姓"
)
# Characters that may follow a name directly ("林國宏於昨日", "陳華妤的居留證").
FOLLOW_CHARS = frozenset("的於在是與和及等說為也都已將向對被把跟因並即則就卻還又再曾之所")
# Words after which a name is expected: roles, titles, form labels.  A name right after one of
# these (or right before a title) is reported at STRONG_CONTEXT_SCORE or more.
ROLE_WORDS: tuple[str, ...] = (
    "姓名", "名字", "全名", "本人", "報案人", "陳情人", "當事人", "嫌疑人", "犯嫌", "被告", "原告", "證人",
    "告訴人", "被害人", "受害人", "行為人", "關係人", "代理人", "監護人", "負責人", "車主", "駕駛人",
    "所有人", "申請人", "申報人", "聯絡人", "聯繫人", "連絡人", "受文者", "收件人", "寄件人", "檢舉人",
    "承辦人", "經辦人", "填表人", "立書人", "保證人", "委託人", "受託人", "繼承人", "配偶", "家長",
    "學生", "同學", "客戶", "病患", "患者", "移工", "員工", "職員", "人員", "成員", "出席", "列席",
    "主持人", "主席", "記錄", "紀錄", "陪同", "受訪者", "發言人", "先生", "小姐", "女士", "太太",
    "科員", "科長", "警員", "員警", "警佐", "巡佐", "偵查佐", "警官", "所長", "隊長", "組長", "股長",
    "課長", "局長", "署長", "處長", "主任", "秘書", "專員", "技士", "議員", "委員", "主委", "立委",
    "里長", "村長", "鄉長", "鎮長", "市長", "縣長", "部長", "院長", "校長", "老師", "教授", "導師",
    "醫師", "醫生", "護理師", "律師", "會計師", "經理", "董事長", "總經理", "店長", "廠長", "法官",
    "總統", "副總統", "院長", "副院長", "部長", "次長", "首長", "議長", "社長", "團長", "班長", "站長",
    "檢察官", "書記官", "執行長", "負責人", "外籍", "學員", "住戶", "房東", "房客", "屋主", "業主",
    "reporter", "applicant", "complainant", "suspect", "contact", "customer", "name",
)
# Titles written right after a name: "劉志峻先生", "王品品科員", "林國宏您好".
TITLE_WORDS: tuple[str, ...] = (
    "先生", "小姐", "女士", "太太", "君", "您好", "科員", "科長", "警員", "所長", "隊長", "組長", "股長",
    "課長", "局長", "署長", "處長", "主任", "秘書", "專員", "技士", "議員", "委員", "主委", "立委", "里長",
    "村長", "鄉長", "鎮長", "市長", "縣長", "部長", "院長", "校長", "老師", "教授", "醫師", "醫生",
    "律師", "會計師", "經理", "董事長", "總經理", "同學", "主席", "法官", "檢察官", "書記官", "警官",
    "總統", "副總統", "副院長", "次長", "議長", "社長", "團長", "班長", "站長", "先進", "前輩", "學長",
    "學姊",
)
# Verbs and prepositions that introduce a person: weaker than a role, they raise a name that has
# evidence of its own (INTRO_BONUS) but never rescue an ordinary word ("由於", "和平", "向來").
INTRO_WORDS: tuple[str, ...] = (
    "給", "向", "由", "請", "與", "和", "跟", "同", "及", "致", "問", "找", "叫", "讓", "被", "把", "替",
    "通知", "聯絡", "聯繫", "告知", "轉告", "轉交", "寄給", "交給", "拜訪", "詢問", "邀請", "感謝", "謝謝",
    "恭喜", "祝賀", "dear", "to", "from", "attn", "cc",
)
# More words that the tagger's features mark (they add evidence, a name still needs the model's score):
# how news and posts introduce people ("記者王小明報導", "王小明表示").
MODEL_ROLE_WORDS: tuple[str, ...] = (
    "記者", "書記", "總理", "主任", "教練", "球員", "選手", "作者", "導演", "歌手", "演員", "網友", "藝人",
    "嫌犯", "死者", "傷者", "女兒", "兒子", "丈夫", "妻子", "母親", "父親", "哥哥", "姊姊", "弟弟", "妹妹",
)
MODEL_TITLE_WORDS: tuple[str, ...] = (
    "說", "表示", "指出", "認為", "強調", "同志", "等人", "夫婦", "一家", "本人",
)
# A title that is also one of the commonest given-name characters (王君 "Mr Wang", 怡君 a given
# name): the tagger's features read it as a title, so a name it tags right before it takes it along.
_TITLE_OR_GIVEN = "君"
# A bare surname before one of these is a person reference: "陳小姐", "王先生".
HONORIFICS: tuple[str, ...] = ("先生", "小姐", "女士", "太太")


@dataclass(frozen=True)
class Surname:
    """One surname and how strongly it suggests a name on its own."""

    text: str
    tier: str  # "common", "compound" or "rare"


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    score: float
    why: str
    context_word: str | None = None
    evidence: float = 0.0  # name evidence before context, for list propagation
    exact_bounds: bool = False  # a rule that trims its own ends (dotted names): its span beats the model's


def _read_lines(path: Path) -> list[str]:
    """The non-empty, non-comment lines of a data file."""
    with path.open(encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def load_surnames(path: Path = DATA_DIR / "surnames.txt") -> list[Surname]:
    """Surnames with their tier; raises ``ValueError`` naming the file and line on a bad entry."""
    surnames: list[Surname] = []
    for line in _read_lines(path):
        parts = line.split("\t")
        if len(parts) != 2 or parts[1] not in _TIER_WEIGHT or not 1 <= len(parts[0]) <= 2:
            raise ValueError(f"{path}: bad surname entry {line!r} (expected 'surname<TAB>tier')")
        surnames.append(Surname(parts[0], parts[1]))
    return surnames


def load_char_set(path: Path) -> frozenset[str]:
    """The characters listed (separated by whitespace) in a data file."""
    return frozenset(ch for line in _read_lines(path) for ch in line.split())


def load_words(path: Path) -> frozenset[str]:
    """The words listed in a data file (whitespace-separated, several per line allowed)."""
    return frozenset(word for line in _read_lines(path) for word in line.split())


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


class _Crossings:
    """``crosses_word`` for the positions of one text, each position cut by jieba once (a surname's
    start is asked about for each given-name length)."""

    def __init__(self, lex: _Lexicon, simplified: str) -> None:
        self._lex, self._simplified = lex, simplified
        self._known: dict[int, bool] = {}

    def __call__(self, pos: int) -> bool:
        crosses = self._known.get(pos)
        if crosses is None:
            crosses = self._known[pos] = self._lex.crosses_word(self._simplified, pos)
        return crosses


class _WordBefore:
    """Whether one of ``words`` (and a joiner) ends right where a name starts: ``search(text, lo, at)``
    is ``(?:words)JOINER\\Z`` searched in ``text[lo:at]``, the same match or None.

    The regex tries every start in the window; a word can only end one to three characters before
    ``at`` (the joiner has at most two), so when none of those characters ends a word (Han characters
    are caseless: no case-insensitive match either), there is no match and the regex is not run.
    """

    def __init__(self, words: Iterable[str], flags: int = 0) -> None:
        words = list(words)
        self.regex = re.compile(f"(?:{_alternation(words)}){_JOINER}\\Z", flags)
        self._last = frozenset(
            "".join(f"{w[-1]}{w[-1].lower()}{w[-1].upper()}{w[-1].casefold()}" for w in words if w))
        self._anywhere = not all(words)  # an empty word matches before any joiner: no shortcut

    def search(self, text: str, lo: int, at: int) -> re.Match[str] | None:
        if self._anywhere:
            return self.regex.search(text, lo, at)
        end = at
        for _ in range(_JOINER_LONGEST + 1):
            if end <= lo:
                return None
            ch = text[end - 1]
            if ch in self._last or ch.lower() != ch or ch.upper() != ch:  # a word may end here
                return self.regex.search(text, lo, at)
            if ch not in _JOINER_CHARS:
                return None
            end -= 1
        return None


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so "偵查佐" wins over "查佐" and "總經理" over "經理"; English words must be
    # whole words ("to" is not the end of "into", "name" not the start of "names").
    return "|".join(
        rf"(?<![A-Za-z]){re.escape(w)}(?![A-Za-z])" if w.isascii() else re.escape(w)
        for w in sorted(set(words), key=len, reverse=True)
    )


class _Lexicon:
    """The heavy part: jieba's dictionary and tokenizer, OpenCC, and the compiled patterns."""

    def __init__(self, recognizer: ChinesePersonRecognizer) -> None:
        import jieba
        import opencc

        # jieba logs "Building prefix dict ..." at DEBUG/INFO to stderr; proxies log JSON only.
        jieba.setLogLevel(logging.WARNING)
        # The dictionary's cache goes to the temp directory, never next to the package (read-only in
        # containers); a container image prepares it at build time in GUARD_JIEBA_CACHE_DIR (Dockerfile).
        cache_dir = os.environ.get(JIEBA_CACHE_DIR_VARIABLE) or tempfile.gettempdir()
        tokenizer = jieba_dictionary.tokenizer(cache_dir)
        self.tokenizer = tokenizer
        self.freq: dict[str, int] = tokenizer.FREQ
        # OpenCC t2s maps character by character, so simplified offsets are original offsets;
        # jieba's dictionary is Simplified, and so is every lookup below.
        self.converter = opencc.OpenCC("t2s")
        surname_chars = {s.text[0] for s in recognizer.surnames}
        surname_chars = {self.to_simplified(c) for c in surname_chars}
        self.name_tagged = self._name_tagged_words(tokenizer, surname_chars)
        self.extra_words = frozenset(self.to_simplified(w) for w in recognizer.ordinary_words)

        self.surnames = {s.text: s for s in recognizer.surnames}
        # One character class finds every position where a surname may start (a lookahead
        # alternation of 300 surnames is several times slower); compound surnames are then
        # looked up by their two characters.
        self.surname_start_re = re.compile("[" + "".join(sorted({s[0] for s in self.surnames})) + "]")
        self.role_before = _WordBefore(recognizer.role_words, re.IGNORECASE)
        self.intro_before = _WordBefore(recognizer.intro_words, re.IGNORECASE)
        self.title_after = re.compile(_alternation(recognizer.title_words))
        self.header_before = re.compile(_alternation(recognizer.header_words), re.IGNORECASE)
        self.honorific_after = re.compile(_alternation(recognizer.honorifics))
        self.latin_role_before = _WordBefore(LATIN_NAME_ROLES)
        self.role_at = re.compile(_alternation(recognizer.role_words))
        # The tagger's names also take the news and social-media roles and titles as evidence.
        self.model_role_before = _WordBefore((*recognizer.role_words, *MODEL_ROLE_WORDS), re.IGNORECASE)
        self.model_title_after = re.compile(_alternation((*recognizer.title_words, *MODEL_TITLE_WORDS)))
        self.context_inside = re.compile(_alternation(recognizer.role_words + recognizer.title_words))
        given_chars = frozenset(self.to_simplified(c) for c in recognizer.name_chars)
        simplified_surnames = [self.to_simplified(s) for s in self.surnames]
        self.features = Lexicon(
            surnames=frozenset(s for s in simplified_surnames if len(s) == 1),
            compound_surnames=frozenset(s for s in simplified_surnames if len(s) == 2),
            given_chars=given_chars,
            word_freq=self.freq,
            name_words=self.name_tagged,
            roles=frozenset(self.to_simplified(w) for w in (*recognizer.role_words, *MODEL_ROLE_WORDS)
                            if not w.isascii()),
            titles=frozenset(self.to_simplified(w) for w in (*recognizer.title_words, *MODEL_TITLE_WORDS)
                             if not w.isascii()),
        )

    @staticmethod
    def _name_tagged_words(tokenizer: Any, first_chars: set[str]) -> frozenset[str]:
        """Dictionary words jieba tags as person names (nr, nrfg, nrt) that start with a surname."""
        tagged = set()
        with tokenizer.get_dict_file() as f:
            for raw in f:
                line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                if line[:1] in first_chars and " nr" in line:
                    tagged.add(line.split(" ", 1)[0])
        return frozenset(tagged)

    def to_simplified(self, text: str) -> str:
        simplified: str = self.converter.convert(text)
        return simplified if len(simplified) == len(text) else text

    def is_ordinary(self, word: str) -> bool:
        """Whether ``word`` (Simplified) is an ordinary dictionary word rather than a name."""
        if word in self.extra_words:
            return True
        freq = self.freq.get(word, 0)
        if freq == 0:
            return False
        threshold = _ORDINARY_NAME_TAGGED_MIN_FREQ if word in self.name_tagged else _ORDINARY_MIN_FREQ
        return freq >= threshold

    def is_plain_word(self, word: str) -> bool:
        """Whether ``word`` (Simplified) is a dictionary word that jieba does not tag as a name (李子)."""
        if word in self.extra_words:
            return True
        return word not in self.name_tagged and self.freq.get(word, 0) >= _ORDINARY_MIN_FREQ

    def is_common(self, word: str, min_freq: int) -> bool:
        return word in self.extra_words or self.freq.get(word, 0) >= min_freq

    def cuts(self, simplified: str, lo: int, hi: int) -> set[int]:
        """Word boundaries (absolute offsets) jieba finds in ``simplified[lo:hi]``."""
        bounds = {lo}
        pos = lo
        for token in self.tokenizer.cut(simplified[lo:hi], HMM=False):
            pos += len(token)
            bounds.add(pos)
        return bounds

    def crosses_word(self, simplified: str, pos: int, radius: int = 6) -> bool:
        """Whether jieba, on a window around ``pos``, puts a common word across ``pos``.

        Only common words count: jieba glues rare dictionary entries to names ("张家文名下" →
        文名), while a name boundary inside 驾驶 or 由于 means the candidate is ordinary text.
        """
        lo = max(0, pos - radius)
        token_start = lo
        for token in self.tokenizer.cut(simplified[lo:pos + radius], HMM=False):
            token_end = token_start + len(token)
            if token_start < pos < token_end:
                return self.is_common(token, _CROSSING_MIN_FREQ)
            if token_end >= pos:
                return False
            token_start = token_end
        return False


class ChinesePersonRecognizer(EntityRecognizer):
    """Recognize person names in (folded) Chinese text: Han names, indigenous dotted names, salutations.

    Method (no POS tagging: jieba's tagger is far too slow on whole prompts):

    1. Candidates start at a surname found by one precompiled character class: the top ~100 of
       內政部戶政司「全國姓名統計分析」, compound surnames (張簡, 范姜, 歐陽, 司徒 ...) and a long
       tail of rarer ones (``data/surnames.txt``).  A given name of one or two characters follows;
       characters of grammar (``STOP_CHARS``) end it, and a street or place suffix (林森北路,
       中正國小) makes it a place name.
    2. The text is converted once to Simplified with OpenCC ``t2s`` (length-preserving), so jieba's
       dictionary can tell names from ordinary words that begin with a surname character (許多,
       周末, 方法, 由於; plus Taiwanese words jieba lacks, ``data/person_ordinary_words.txt``), and
       jieba's segmenter, on a few characters around the candidate only, checks that the name does
       not cut through a word on either side.
    3. Evidence adds up: the surname's tier, given-name characters typical of Taiwanese names
       (``data/given_name_chars.txt``), a whole list entry or table cell, a role or title before or
       after (報案人, 車主, 先生, 科員 ...: at least ``STRONG_CONTEXT_SCORE``), a verb or preposition
       that introduces a person (給, 向, Dear).  A name with no context needs a common surname,
       typical given-name characters and no dictionary word to reach about 0.6.
    4. A name found with context is also reported where it recurs in the same text; list entries
       next to a name with context inherit that context.
    5. Indigenous names (and transliterated foreign names) join parts with a middle dot in one of
       its many forms (瓦歷斯·諾幹, 巴奈‧母路): reported unless the parts are ordinary words.
    6. A bare surname before 先生/小姐/女士/太太 is reported at a modest score; English names after
       Dear/Mr./Ms. are reported too.

    Reference: /work/shared/reference/identifiers.md, section "Person names".  Offsets are offsets
    into the folded text, which has the same length as the original.
    """

    ENTITY = "PERSON"
    NAME = "ChinesePersonRecognizer"

    def __init__(
        self,
        supported_language: str = LANGUAGE,
        role_words: Sequence[str] | None = None,
        title_words: Sequence[str] | None = None,
        intro_words: Sequence[str] | None = None,
        honorifics: Sequence[str] | None = None,
        header_words: Sequence[str] | None = None,
        data_dir: Path = DATA_DIR,
        use_model: bool = True,
    ) -> None:
        self.role_words = tuple(role_words if role_words is not None else ROLE_WORDS)
        self.title_words = tuple(title_words if title_words is not None else TITLE_WORDS)
        self.intro_words = tuple(intro_words if intro_words is not None else INTRO_WORDS)
        self.honorifics = tuple(honorifics if honorifics is not None else HONORIFICS)
        self.header_words = tuple(header_words if header_words is not None else HEADER_WORDS)
        self.data_dir = data_dir
        # Small data files are read now so a broken file fails at start-up, not on the first prompt.
        self.surnames = load_surnames(data_dir / "surnames.txt")
        self.name_chars = load_char_set(data_dir / "given_name_chars.txt")
        self.ordinary_words = load_words(data_dir / "person_ordinary_words.txt")
        self.use_model = use_model
        self._lexicon: _Lexicon | None = None
        self._tagger: NameTagger | None = None
        self._lock = threading.Lock()
        # ``context`` stays empty: this recognizer judges its own context, and the engine's
        # character-window enhancer must not raise ordinary words that sit near "姓名".
        super().__init__(
            supported_entities=[self.ENTITY], supported_language=supported_language, context=[],
            name=self.NAME,
        )

    def load(self) -> None:
        """Presidio calls this from ``__init__``: nothing heavy here, see ``ensure_loaded``."""

    @property
    def model_loaded(self) -> bool:
        """Whether jieba, OpenCC and the patterns have been built yet."""
        return self._lexicon is not None

    def ensure_loaded(self) -> None:
        """Build jieba's tokenizer, OpenCC, the patterns and the name tagger (once per process)."""
        if self._lexicon is None:
            with self._lock:
                if self._lexicon is None:
                    lexicon = _Lexicon(self)
                    if self.use_model:
                        self._tagger = NameTagger(lexicon.features, net_path=NET_PATH)
                    self._lexicon = lexicon

    def feature_lexicon(self) -> Lexicon:
        """What the name tagger's features look up (the training script builds its data with it)."""
        self.ensure_loaded()
        assert self._lexicon is not None
        return self._lexicon.features

    def to_simplified(self, text: str) -> str:
        """``text`` in Simplified characters, same length (OpenCC t2s, character by character)."""
        self.ensure_loaded()
        assert self._lexicon is not None
        return self._lexicon.to_simplified(text)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Find person names in ``text`` (folded); scores below ``MIN_REPORTED_SCORE`` are dropped."""
        if entities and self.ENTITY not in entities:
            return []
        self.ensure_loaded()
        assert self._lexicon is not None
        lex = self._lexicon
        simplified = lex.to_simplified(text)
        # One per text: the rules and the tagger ask about the same positions (each cut by jieba once).
        crossings = _Crossings(lex, simplified)
        rule_candidates = [
            *self._dotted_names(text, simplified, lex),
            *self._han_names(text, simplified, lex, crossings),
            *self._salutation_names(text),
            *self._field_names(text),
            *self._romanised_names(text),
            *self._latin_names(text, lex),
        ]
        candidates = self._merge(self._model_names(text, simplified, lex, crossings), rule_candidates)
        candidates = self._propagate(text, candidates)
        return [self._result(c) for c in self._non_overlapping(candidates) if c.score >= MIN_REPORTED_SCORE]

    # --- the trained tagger ------------------------------------------------------------------

    def _model_names(self, text: str, simplified: str, lex: _Lexicon,
                     crossings: _Crossings) -> list[_Candidate]:
        """Names the tagger (the CRF and the network stacked on it) finds, scored by its probability and
        the evidence around them."""
        if self._tagger is None or not _HAN_RE.search(text):
            return []  # every tagged name needs a Chinese character (below): none, no tagging
        found = []
        for tagged in self._tagger.tag(simplified):
            start, end = self._trim_context_words(text, lex, tagged.start, tagged.end)
            start, end = _without_edge_punctuation(text, start, end)
            if text[end:end + 1] == _TITLE_OR_GIVEN and end - start <= 3:
                end += 1  # 怡君 read as 怡 + the title 君: either way 君 is part of how the person is named
            if not _HAN_RE.search(text, start, end):
                continue  # trained on Chinese prose: Latin-script names (Chen Chih-ming) are the rules'
            if end - start < 1 or (end - start == 1 and lex.honorific_after.match(text, end)):
                continue  # a role word alone; 陳小姐 is the rules' (a surname before an honorific)
            if _SURNAME_REFERENCE_RE.match(text, start + 1) and (end - start <= 2 or text[start + 1] == "姓"):
                continue  # 陳姓男子, 林女, 王姓里長, 李男: a surname standing for someone unnamed
            title = lex.model_title_after.match(text, end)
            if title is None and _PLACE_AFTER_RE.match(text, end):
                continue  # 中正路, 逢甲大學: places named after people
            role = lex.model_role_before.search(text, max(0, start - 16), start)
            context = role or title
            context_word = context.group(0).strip(" \t:：") if context else None
            if context is None and not self._stands_alone(text, simplified, lex, crossings, start, end,
                                                           tagged.probability):
                continue
            evidence = [f"name tagger p={tagged.probability:.2f}"]
            if context_word is not None:
                evidence.append(f"{'role' if role else 'title'} {context_word!r}")
            first = text[start:start + 2] if text[start:start + 2] in lex.surnames else text[start]
            if first in lex.surnames:
                evidence.append(f"surname {first}")
            if simplified[start:end] in lex.name_tagged:
                evidence.append("dictionary name")
            if context is None and lex.is_plain_word(simplified[start:end]) and (
                tagged.probability < _MODEL_SURE or simplified[start:end] in lex.extra_words
            ):
                continue  # 高明, 和平, 金門: an ordinary word the model is unsure of needs a role or title
            score = _MODEL_BASE_SCORE + _MODEL_WEIGHT * tagged.probability
            if context is not None:
                score += _MODEL_CONTEXT_BONUS
            found.append(_Candidate(
                start, end, round(min(MAX_SCORE, score), 2), "; ".join(evidence),
                context_word, evidence=round(tagged.probability, 2),
            ))
        return found

    @staticmethod
    def _stands_alone(text: str, simplified: str, lex: _Lexicon, crossings: _Crossings, start: int, end: int,
                      probability: float) -> bool:
        """Whether a tagged name with no role or title next to it is a name on the model's word alone."""
        if probability < _MODEL_ALONE_MIN:
            return False
        if end - start == 1 and any(simplified[start:start + k] in lex.extra_words for k in (2, 3)):
            return False  # 陳 of 陳情人: one character starting a word of data/person_ordinary_words.txt
        if probability >= _MODEL_SURE:
            return True
        left_open = start > 0 and _is_cjk(text[start - 1])
        right_open = end < len(text) and _is_cjk(text[end]) and text[end] not in FOLLOW_CHARS
        return not ((left_open and crossings(start)) or (right_open and crossings(end)))

    @staticmethod
    def _merge(model: list[_Candidate], rules: list[_Candidate]) -> list[_Candidate]:
        """Model and rule candidates; where a rule's name covers the model's (上官 + 文傑), the rule's
        span wins with the better of the two scores."""
        merged = list(rules)
        # Rules by start, so each model name looks only at the rules that can touch it (linear time).
        order = sorted(range(len(rules)), key=lambda i: rules[i].start)
        starts = [rules[i].start for i in order]
        longest = max((r.end - r.start for r in rules), default=0)
        for m in model:
            near = [order[k] for k in range(bisect.bisect_left(starts, m.start - longest),
                                            bisect.bisect_left(starts, m.end))]
            if any(rules[i].exact_bounds and rules[i].start < m.end and m.start < rules[i].end for i in near):
                continue  # 瓦歷斯·諾幹寫: the dotted-name rule knows where such a name ends
            covering = [
                i for i in near
                if merged[i].start <= m.start and m.end <= merged[i].end
                and (merged[i].start, merged[i].end) != (m.start, m.end)
            ]
            if not covering:
                merged.append(m)
                continue
            for i in covering:
                r = merged[i]
                if m.score > r.score:
                    merged[i] = _Candidate(r.start, r.end, m.score, f"{m.why}; {r.why}",
                                           r.context_word or m.context_word, max(r.evidence, m.evidence))
        return merged

    @staticmethod
    def _trim_context_words(text: str, lex: _Lexicon, start: int, end: int) -> tuple[int, int]:
        """The tagged span without a role word it swallowed (受文者馮立群) or a title (陳小姐)."""
        role = lex.role_at.match(text, start, end)
        if role is not None:
            start = role.end()
        for pos in range(start + 1, end):
            title = lex.title_after.match(text, pos)
            if title is not None and title.end() >= end:
                return start, pos
        return start, end

    # --- Han names ---------------------------------------------------------------------------

    def _han_names(self, text: str, simplified: str, lex: _Lexicon,
                   crossings: _Crossings) -> list[_Candidate]:
        found: list[_Candidate] = []
        skip_until = -1
        for match in lex.surname_start_re.finditer(text):
            start = match.start()
            if start < skip_until:
                continue  # "張簡宏明": this 簡 belongs to the compound surname just reported
            # At one position both "張簡" and "張" may match: try each, keep the best.
            options = [s for s in (text[start:start + 2], text[start]) if s in lex.surnames]
            best: _Candidate | None = None
            best_surname = ""
            for surname in options:
                candidate = self._evaluate(text, simplified, lex, start, lex.surnames[surname], crossings)
                if candidate is not None and (best is None or candidate.score > best.score):
                    best, best_surname = candidate, surname
            if best is not None:
                found.append(best)
                skip_until = start + len(best_surname)
        return found

    def _evaluate(
        self, text: str, simplified: str, lex: _Lexicon, start: int, surname: Surname, crossings: _Crossings,
    ) -> _Candidate | None:
        given_start = start + len(surname.text)
        # Given names of two characters, then one: Chinese characters that are not function words,
        # and not making a surname with the first ("張簡" alone is a surname, not 張 + a given name).
        givens = []
        if given_start < len(text) and _is_cjk(text[given_start]) and text[given_start] not in STOP_CHARS:
            second = given_start + 1
            if (second < len(text) and _is_cjk(text[second]) and text[second] not in STOP_CHARS
                    and text[start:second + 1] not in lex.surnames):
                givens.append(text[given_start:second + 1])
            if text[start:second] not in lex.surnames:
                givens.append(text[given_start:second])
        honorific = lex.honorific_after.match(text, given_start)
        if not givens and honorific is None:
            return None  # most surname characters in running text: 於是, 和解, 有關 ...
        lo = max(0, start - 16)
        role = lex.role_before.search(text, lo, start)
        intro = None if role else lex.intro_before.search(text, lo, start)
        left_edge = start == 0 or not _is_cjk(text[start - 1])
        # A context word that ends where the surname starts settles the left boundary even when
        # jieba would glue them ("車主張家文": 车/主张/家文).
        left_settled = left_edge or role is not None or intro is not None

        if honorific is not None:
            return self._surname_only(start, surname, honorific, left_settled, role, intro, crossings)
        best: _Candidate | None = None
        for given in givens:
            candidate = self._score_han(
                text, simplified, lex, start, surname, given, role, intro, left_edge, left_settled, crossings
            )
            if candidate is not None and (best is None or candidate.score > best.score + 1e-9):
                best = candidate
        return best

    def _score_han(
        self, text: str, simplified: str, lex: _Lexicon, start: int, surname: Surname, given: str,
        role: re.Match[str] | None, intro: re.Match[str] | None, left_edge: bool, left_settled: bool,
        crossings: _Crossings,
    ) -> _Candidate | None:
        given_start = start + len(surname.text)
        end = given_start + len(given)
        title = lex.title_after.match(text, end)
        if title is None and _PLACE_AFTER_RE.match(text, end):
            return None  # 林森北路, 中正國小
        next_char = text[end] if end < len(text) else ""
        right_edge = not next_char or not _is_cjk(next_char)
        right_hard = right_edge or title is not None or next_char in FOLLOW_CHARS

        typical = [c in self.name_chars for c in given]
        isolated = (
            left_edge and right_edge and (start == 0 or text[start - 1] in _SEPARATORS)
            and (not next_char or next_char in _SEPARATORS)
        )
        if not all(typical) and not (right_hard and (role or title or isolated)):
            # Decided already (the same None as below, before the dictionary look-ups): unusual
            # characters need a role, title or list header (only an isolated entry has one) and a
            # hard right edge.
            return None
        evidence = _TIER_WEIGHT[surname.tier]
        if surname.tier == "compound" and lex.is_common(lex.to_simplified(surname.text), 1000):
            evidence = _TIER_WEIGHT["rare"]  # 東方, 第五, 百里: ordinary words first
        evidence += sum(_NAME_CHAR_WEIGHT if t else _OTHER_CHAR_WEIGHT for t in typical)
        if len(given) == 2 and lex.is_common(simplified[given_start:end], _GIVEN_WORD_MIN_FREQ):
            evidence -= 0.1  # the given name is itself a common word (李美國): weaker
        evidence = round(evidence, 2)  # 0.3 + 0.15 must compare equal to 0.45
        first_word = simplified[start:given_start + 1]  # surname + first given character
        # Surname + 家/氏 is "the X family" (陳家, 李氏), not an ordinary word hiding a surname.
        wordy = (lex.is_ordinary(first_word) and first_word[-1] not in _FAMILY_SUFFIXES) or lex.is_ordinary(
            simplified[start:end]
        )
        # A table cell or list entry under a "姓名" / "出席人員" header has that header as context.
        header = None
        if isolated and not (role or title or intro):
            header = lex.header_before.search(text, max(0, start - _HEADER_WINDOW), start)
        strong = role is not None or title is not None or header is not None
        found_by = role or title or header or intro
        context_word = found_by.group(0).strip(" \t:：") if found_by else None

        if wordy and not (strong and len(given) == 2 and all(typical)):
            # 許多, 周末, 高明: an ordinary word is a name only with a role or title next to it,
            # a two-character given name (高明宏) and typical given-name characters.
            return None
        if not all(typical) and not (strong and right_hard):
            return None  # unusual characters: only "報案人X某某，" shapes
        if strong:
            if evidence < 0.35:
                return None
            score = min(MAX_SCORE, max(STRONG_CONTEXT_SCORE, evidence + 0.4))
            kind = "role" if role else "title" if title else "list header"
            why = f"surname {surname.text} + given name, {kind} {context_word!r} next to it"
        elif intro:
            if evidence < 0.4:
                return None
            score = min(MAX_SCORE, evidence + _INTRO_BONUS + (_ISOLATED_BONUS if isolated else 0.0))
            why = f"surname {surname.text} + typical given name, introduced by {context_word!r}"
        else:
            if evidence < 0.45:
                return None
            score = evidence + (_ISOLATED_BONUS if isolated else 0.0)
            why = (
                f"{surname.tier} surname {surname.text} + typical given-name characters, not a word"
                + (", standing alone as a list entry" if isolated else "")
            )

        # Last, as it is the costly check: the name must not cut through a common word on either
        # side ("由於時間", "陳志駕駛": 驾驶 starts inside 陳志駕).
        if not left_settled and crossings(start):
            return None
        if not right_hard and crossings(end):
            return None
        return _Candidate(start, end, round(score, 2), why, context_word, evidence)

    def _surname_only(
        self, start: int, surname: Surname, honorific: re.Match[str],
        left_settled: bool, role: re.Match[str] | None, intro: re.Match[str] | None, crossings: _Crossings,
    ) -> _Candidate | None:
        """A bare surname before 先生/小姐: "陳小姐" is a person reference (modest score)."""
        if surname.tier == "rare" and not (role or intro):
            return None
        if not left_settled and crossings(start):
            return None
        return _Candidate(
            start, start + len(surname.text), SURNAME_ONLY_SCORE,
            f"surname {surname.text} followed by {honorific.group(0)!r}", honorific.group(0),
        )

    # --- dotted (indigenous / transliterated) names ----------------------------------------

    def _dotted_names(self, text: str, simplified: str, lex: _Lexicon) -> list[_Candidate]:
        found: list[_Candidate] = []
        for match in _DOTTED_RE.finditer(text):
            dots = [i for i in range(match.start(), match.end()) if text[i] in _DOTS]
            start = self._trim_left(text, simplified, lex, match.start(), dots[0])
            end = self._trim_right(text, simplified, lex, dots[-1] + 1, match.end())
            parts = re.split(f"[{_DOTS}]", text[start:end])
            # Parts of indigenous names have two characters or more (巴奈·母路); "全.個資" in a
            # hard-wrapped heading does not.
            if len(parts) < 2 or any(len(p) < 2 for p in parts):
                continue
            if any(all(c in STOP_CHARS for c in p) for p in parts):
                continue  # "一.二", numbered headings
            role = lex.role_before.search(text, max(0, start - 16), start)
            title = lex.title_after.match(text, end)
            context = role or title
            covered = self._word_coverage(simplified[start:end], lex)
            if covered * 2 >= end - start - len(dots) and context is None:
                continue  # mostly ordinary words joined by dots: "公務機密．資訊安全" is a heading
            why = "name parts joined by a middle dot (indigenous or transliterated name)"
            found.append(_Candidate(
                start, end, MAX_SCORE if context else STRONG_CONTEXT_SCORE, why,
                context.group(0).strip(" \t:：") if context else None, 0.6, exact_bounds=True,
            ))
        return found

    def _trim_left(self, text: str, simplified: str, lex: _Lexicon, start: int, dot: int) -> int:
        """Where the first part of a dotted name starts: after grammar, roles and common words."""
        for pos in range(dot - 1, start - 1, -1):
            if text[pos] in GRAMMAR_CHARS:
                start = pos + 1
                break
        for context in lex.context_inside.finditer(text, start, dot - 1):
            start = context.end()  # "主委夷將·拔路兒": the name follows the title
        tokens = self._tokens(simplified, lex, start, dot)
        for token_start, token_end in reversed(tokens[1:]):
            word = simplified[token_start:token_end]
            if len(word) >= 2 and lex.is_common(word, _COMMON_WORD_MIN_FREQ):
                return token_end if token_end < dot else token_start
        if len(tokens) > 1:
            first = simplified[tokens[0][0]:tokens[0][1]]
            if len(first) >= 2 and lex.is_common(first, _COMMON_WORD_MIN_FREQ):
                return tokens[0][1]
        return start

    def _trim_right(self, text: str, simplified: str, lex: _Lexicon, after_dot: int, end: int) -> int:
        """Where the last part of a dotted name ends: before grammar, titles and common words."""
        for pos in range(after_dot + 1, end):
            # FOLLOW_CHARS too: "亞榮隆將出席" (將 inside a first part, as in 夷將, is kept).
            if text[pos] in GRAMMAR_CHARS or text[pos] in FOLLOW_CHARS or lex.title_after.match(text, pos):
                end = pos
                break
        for token_start, token_end in self._tokens(simplified, lex, after_dot, end)[1:]:
            word = simplified[token_start:token_end]
            if len(word) >= 2 and lex.is_common(word, _COMMON_WORD_MIN_FREQ):
                return token_start
        return end

    @staticmethod
    def _tokens(simplified: str, lex: _Lexicon, lo: int, hi: int) -> list[tuple[int, int]]:
        bounds = sorted(lex.cuts(simplified, lo, hi))
        return list(itertools.pairwise(bounds))

    @staticmethod
    def _word_coverage(simplified: str, lex: _Lexicon) -> int:
        """How many characters of ``simplified`` jieba puts in ordinary words of two or more characters."""
        return sum(
            len(token) for token in lex.tokenizer.cut(simplified, HMM=False)
            if len(token) >= 2 and lex.is_ordinary(token)
        )

    # --- English salutations -----------------------------------------------------------------

    @staticmethod
    def _romanised_names(text: str) -> list[_Candidate]:
        """Chen Chih-ming, Mei-hua Lin, CHEN, CHIH-MING: a known surname and a hyphenated given name."""
        return [
            _Candidate(m.start(), m.end(), ROMANISED_NAME_SCORE,
                       "romanised surname + hyphenated given name (Chen Chih-ming)", None, 0.6)
            for m in _ROMAN_NAME_RE.finditer(text)
        ]

    @staticmethod
    def _latin_names(text: str, lex: _Lexicon) -> list[_Candidate]:
        """Latin-letter names after a person's form label or role, or before an honorific."""
        found = []
        for match in _LATIN_NAME_RE.finditer(text):
            start, end = match.span()
            role = lex.latin_role_before.search(text, max(0, start - 8), start)
            after = end
            while after < len(text) and after - end < 2 and text[after] in " \t":
                after += 1
            honorific = lex.honorific_after.match(text, after)
            word = role.group(0).strip(" \t:：") if role else honorific.group(0) if honorific else None
            if word is not None:
                found.append(_Candidate(start, end, STRONG_CONTEXT_SCORE,
                                        f"name in Latin letters next to {word!r}", word))
        return found

    @staticmethod
    def _field_names(text: str) -> list[_Candidate]:
        """What fills a name field (姓名：兀育成) or a cell of a column headed 姓名: a name by the form's
        word, whatever its surname."""
        found = []
        for match in _NAME_FIELD_RE.finditer(text):
            if match.group(1) in _NAME_FIELD_PLACEHOLDERS:
                continue
            label = text[match.start():match.start(1)].strip(" \t:：=\"'「」")
            found.append(_Candidate(match.start(1), match.end(1), STRONG_CONTEXT_SCORE,
                                    f"fills the name field {label!r}", label, 0.6))
        if "\n" not in text:
            return found  # no table
        for start, end, header in cells_under(text, _NAME_FIELD_WORDS):
            cell = _NAME_CELL_RE.fullmatch(text, start, end)
            if cell is None or cell.group(1) in _NAME_FIELD_PLACEHOLDERS:
                continue
            found.append(_Candidate(cell.start(1), cell.end(1), STRONG_CONTEXT_SCORE,
                                    f"in the table column {header!r}", header, 0.6))
        return found

    def _salutation_names(self, text: str) -> list[_Candidate]:
        found = []
        for match in _SALUTATION_RE.finditer(text):
            name = match.group(1)
            if name.split()[0].lower() in _SALUTATION_NOT_NAMES:
                continue
            word = match.group(0)[: match.start(1) - match.start()].strip()
            found.append(_Candidate(
                match.start(1), match.end(1), STRONG_CONTEXT_SCORE, f"capitalised name after {word!r}", word
            ))
        return found

    # --- combining --------------------------------------------------------------------------

    @staticmethod
    def _propagate(text: str, candidates: list[_Candidate]) -> list[_Candidate]:
        """Spread context: to list entries next to a name with context, and to repeats of a name."""
        chain = sorted(candidates, key=lambda c: c.start)
        # List entries: "出席人員陳國詩、林豪妤、鍾明瑋" — one pass forward, one back along the chain.
        for order in (range(len(chain)), range(len(chain) - 1, -1, -1)):
            previous: _Candidate | None = None
            for i in order:
                current = chain[i]
                if previous is not None and previous.score >= STRONG_CONTEXT_SCORE > current.score and (
                    current.evidence >= 0.45
                ):
                    first, second = sorted((previous, current), key=lambda c: c.start)
                    gap = text[first.end:second.start]
                    if 0 < len(gap) <= 2 and all(ch in _LIST_JOINERS for ch in gap):
                        chain[i] = current = _Candidate(
                            current.start, current.end, STRONG_CONTEXT_SCORE,
                            current.why + f"; in a list with a name found by {previous.context_word!r}",
                            previous.context_word, current.evidence,
                        )
                previous = current
        candidates = chain
        # Repeats: "嫌疑人林明翔駕駛…，林明翔的手機" — the second mention has no context of its own.
        best_at = {(c.start, c.end): c for c in candidates}
        # One pass per name length over the text (not one scan per name): linear however many names.
        strong: dict[str, _Candidate] = {}
        for c in candidates:
            if c.score >= STRONG_CONTEXT_SCORE and c.end - c.start >= 2:
                strong.setdefault(text[c.start:c.end], c)
        # Every start of each name, overlaps included, by ``str.find`` (C speed, linear in the text,
        # and no regex compiled per prompt: each prompt's names are new), in order of position.
        starts: list[tuple[int, str]] = []
        for name in strong:
            pos = text.find(name)
            while pos >= 0:
                starts.append((pos, name))
                pos = text.find(name, pos + 1)
        for pos, name in sorted(starts, key=lambda s: (len(s[1]), s[0])):
            length = len(name)
            found = strong[name]
            span = (pos, pos + length)
            if span not in best_at or best_at[span].score < STRONG_CONTEXT_SCORE:
                best_at[span] = _Candidate(
                    pos, pos + length, STRONG_CONTEXT_SCORE,
                    "same name found with context elsewhere in the text", found.context_word,
                    found.evidence,
                )
        return list(best_at.values())

    @staticmethod
    def _non_overlapping(candidates: list[_Candidate]) -> list[_Candidate]:
        """Keep the best-scoring candidates that do not overlap (longer wins a tie)."""
        # Chosen spans kept sorted by start (they never overlap): only the neighbours of a new
        # span's position can overlap it, so each check is a bisection, not a scan (linear time).
        chosen: list[_Candidate] = []
        starts: list[int] = []
        for c in sorted(candidates, key=lambda c: (-c.score, -(c.end - c.start), c.start)):
            i = bisect.bisect_left(starts, c.start)
            if (i > 0 and chosen[i - 1].end > c.start) or (i < len(chosen) and chosen[i].start < c.end):
                continue
            starts.insert(i, c.start)
            chosen.insert(i, c)
        return chosen

    def _result(self, candidate: _Candidate) -> RecognizerResult:
        explanation = AnalysisExplanation(
            recognizer=self.NAME, original_score=candidate.score, textual_explanation=candidate.why
        )
        metadata: dict[str, Any] = {
            RecognizerResult.RECOGNIZER_NAME_KEY: self.NAME,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: candidate.context_word is not None,
        }
        if candidate.context_word is not None:
            metadata[CONTEXT_KEY] = candidate.context_word
            explanation.set_supportive_context_word(candidate.context_word)
        return RecognizerResult(
            entity_type=self.ENTITY, start=candidate.start, end=candidate.end, score=candidate.score,
            analysis_explanation=explanation, recognition_metadata=metadata,
        )
