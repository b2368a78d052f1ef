"""Recognizer for document classification markings (``CLASSIFICATION_MARKER``).

What counts as a marking (reference/identifiers.md; 國家機密保護法 and its 施行細則; 行政院
文書處理手冊):

- the 公文 field 「密等及解密條件或保密期限：…」 (or a shorter 「密等：…」) holding a level —
  絕對機密, 極機密, 機密 (national secrets) or 密 (general official secret); 「普通」 means not
  classified and is not a marking;
- a level printed alone on a line (as at the top of each page) or in label brackets 【】〔〕[],
  or alone on its line in 「」『』() brackets, optionally followed by its declassification condition
  (「（本件於公布後解密）」, 「保密期限至…」) and a 複製物 number; 密件 counts as 密;
- CONFIDENTIAL / SECRET / TOP SECRET as an upper-case heading on a line of its own.

Words about secrecy in running prose (公務機密維護, 機密文書應由承辦人親自撰寫, 商業機密, 營業秘密,
密碼, 密切, 親密, 密度, 「機密和極機密有什麼差別？」) and urgency (速別：普通件／速件／最速件) are not
markings. Simplified characters (机密, 极机密, 绝对机密) are accepted as well.

Each result carries its level in ``recognition_metadata["classification_level"]``: 密, 機密, 極機密,
絕對機密, or CONFIDENTIAL / SECRET / TOP_SECRET for English headings.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer
from recognizers.text import ZERO_WIDTH

LEVEL_KEY = "classification_level"

# Spaces or invisible characters slipped between the characters of a word.
_CJK_GAP = "[ " + ZERO_WIDTH + "]{0,2}"


def _cjk_word(*chars: str) -> str:
    return _CJK_GAP.join(chars)


_LEVEL = "(?:" + "|".join((
    _cjk_word("[絕绝]", "[對对]", "[機机]", "密"),
    _cjk_word("[極极]", "[機机]", "密"),
    _cjk_word("[機机]", "密"),
    _cjk_word("密", "件"),
    "密",
)) + ")"
# A level is a whole word: not followed by another Chinese character (機密文書, 密切, 密碼),
# except the words that open a declassification condition or copy number.
_LEVEL_END = r"(?!(?!保密|解密|本件|複製|复制|自|至|於|于)[\u4e00-\u9fff])"
# Declassification condition and copy number after a level: bracketed parts, then free text that
# starts with one of the words such conditions start with.
_TAIL = (
    r"(?:[ ]*[,，、]?[ ]*[(〔【\[][^()〔〕【】\[\]\n]{1,60}[)〕】\]]){0,2}"
    r"(?:[ ]*[,，、;；]?[ ]*(?:保密期限|解密|本件|複製物|复制物)[^\n]{0,60})?"
)
_LABEL = (
    r"(?:" + _cjk_word("密", "[等级級]") + "|" + _cjk_word("[機机]", "密", "等", "[級级]")
    + "|" + _cjk_word("保", "密", "等", "[級级]") + r")[^\n:]{0,16}:[ ]*"
)
_OPEN, _CLOSE = "【〔[「『(", "】〕]」』)"
_BRACKETED_ALONE = "(?:" + "|".join(
    re.escape(o) + "[ ]*" + _LEVEL + "[ ]*" + re.escape(c) for o, c in zip(_OPEN, _CLOSE, strict=True)
) + ")"
_LABEL_BRACKETED = r"(?:【[ ]*" + _LEVEL + r"[ ]*】|〔[ ]*" + _LEVEL + r"[ ]*〕|\[[ ]*" + _LEVEL + r"[ ]*\])"
_EN_LEVEL = r"(?-i:TOP[ _-]?SECRET|SECRET|(?:STRICTLY[ ])?CONFIDENTIAL)"
_EN_QUALIFIER = r"(?:[ ]*(?://|[-:|])[ ]*(?-i:[A-Z][A-Z ,/-]{0,40}))?"

FIELD = _LABEL + _LEVEL + _LEVEL_END + _TAIL
LINE_ALONE = r"(?m)^[ \t]*(?:" + _BRACKETED_ALONE + "|" + _LEVEL + _LEVEL_END + ")" + _TAIL + r"[ \t\r]*$"
LABEL_BRACKETED = _LABEL_BRACKETED + _TAIL
ENGLISH_HEADING = (
    r"(?m)^[ \t]*(?:\[[ ]*" + _EN_LEVEL + r"[ ]*\](?=[^\n]*$)|" + _EN_LEVEL + _EN_QUALIFIER + r"[ \t\r]*$)"
)

_LEVEL_LABELS = (
    ("絕對機密", "絕對機密"), ("绝对机密", "絕對機密"), ("極機密", "極機密"), ("极机密", "極機密"),
    ("機密", "機密"), ("机密", "機密"), ("密", "密"),
    ("TOPSECRET", "TOP_SECRET"), ("TOP_SECRET", "TOP_SECRET"), ("SECRET", "SECRET"),
    ("CONFIDENTIAL", "CONFIDENTIAL"),
)
_LEVEL_LABEL_RE = re.compile("|".join(re.escape(k) for k, _ in _LEVEL_LABELS))
_LEVEL_LABEL = dict(_LEVEL_LABELS)
_LABEL_RE = re.compile(_LABEL)
_STRIP_RE = re.compile("[ \t\\-" + ZERO_WIDTH + "]")


def classification_level(marking: str) -> str | None:
    """The level named by a marking (密, 機密, 極機密, 絕對機密 or an English heading level)."""
    # 机 is in Big5 too, so fold leaves it when it turns the rest of 绝对机密 into Traditional.
    value = _STRIP_RE.sub("", marking).replace("机", "機")
    label = _LABEL_RE.match(value)
    if label:  # skip the field label (密等及解密條件或保密期限) which itself contains 密
        value = value[label.end():]
    found = _LEVEL_LABEL_RE.search(value)
    return _LEVEL_LABEL[found.group()] if found else None


_BARE_LEVEL_LINE_RE = re.compile(r"[ \t]*" + _LEVEL + r"[ \t\r]*", re.IGNORECASE)


def _in_list_of_levels(text: str, start: int, end: int) -> bool:
    """True for a bare level whose neighbouring line is a bare level too: a list of the levels
    (機密\n極機密\n絕對機密), as in a question about them, not a marking."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if not _BARE_LEVEL_LINE_RE.fullmatch(text, line_start, line_end):
        return False
    if line_start > 0:
        prev_start = text.rfind("\n", 0, line_start - 1) + 1
        if _BARE_LEVEL_LINE_RE.fullmatch(text, prev_start, line_start - 1):
            return True
    if line_end < len(text):
        next_end = text.find("\n", line_end + 1)
        next_end = len(text) if next_end < 0 else next_end
        if _BARE_LEVEL_LINE_RE.fullmatch(text, line_end + 1, next_end):
            return True
    return False


class ClassificationMarkerRecognizer(TaiwanPatternRecognizer):
    """Find classification markings on documents (not words about secrecy)."""

    ENTITY = "CLASSIFICATION_MARKER"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("密等 field", FIELD, 0.95),
        Pattern("level alone on a line", LINE_ALONE, 0.9),
        Pattern("level in label brackets", LABEL_BRACKETED, 0.9),
        Pattern("English classification heading", ENGLISH_HEADING, 0.85),
    ]

    CONTEXT: ClassVar[list[str]] = []

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        kept = []
        for result in super().analyze(text, entities, nlp_artifacts, regex_flags):
            if _in_list_of_levels(text, result.start, result.end):
                continue
            start, end = result.start, result.end
            while end > start and text[end - 1] in " \t\r":  # a line's trailing spaces are not the marking
                end -= 1
            while start < end and text[start] in " \t":
                start += 1
            level = classification_level(text[start:end])
            if level is None:
                continue
            result.start, result.end = start, end
            metadata = result.recognition_metadata or {}
            metadata[LEVEL_KEY] = level
            result.recognition_metadata = metadata
            kept.append(result)
        return kept
