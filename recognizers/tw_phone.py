"""Recognizer for Taiwanese telephone numbers (``PHONE_NUMBER``).

Formats (reference/identifiers.md; NCC numbering plan):

- mobile: ``09xx-xxx-xxx``, ``09xxxxxxxx``, ``0912-345678``, ``+886 9xx xxx xxx``, ``+886-9...``;
- landline: area code 02-089 then the subscriber number, 9 or 10 digits in all:
  ``(02)xxxx-xxxx``, ``02-xxxx-xxxx``, ``07-xxxxxxx``, ``+886-2-xxxx-xxxx``;
- optionally followed by an extension (``#123``, ``分機 123``, ``ext. 123``).

Any grouping is accepted (users split numbers anyhow, and spacing is a common evasion), so the
patterns allow a gap between every digit and the digit count is checked afterwards. A landline
written as one unbroken run of digits is a weak signal (it could be any number) and needs a
context word such as 電話 to be reported. ``phonenumbers`` is not used: it is far too slow here.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from recognizers.base import TaiwanPatternRecognizer
from recognizers.text import GAP, compact

_D = GAP + r"\d"
# Not inside a longer number, word or "+..." prefix; not glued to digits by a hyphen.
_START = r"(?<![A-Za-z0-9+])(?<!\d-)"
_END = r"(?![A-Za-z0-9])(?!-\d)"
_EXTENSION = r"(?:[ ]{0,2}(?:#|分機|轉|ext\.?|x)[ ]{0,2}\d{1,6}(?![A-Za-z0-9]))?"
_COUNTRY = r"(?:\(" + GAP + r")?(?:\+|00)" + GAP + "8" + GAP + "8" + GAP + "6" + r"(?:" + GAP + r"\))?"
_TRUNK_ZERO = r"(?:" + GAP + r"\(" + GAP + "0" + GAP + r"\)|" + GAP + "0)?"

MOBILE = _START + "0" + GAP + "9" + _D * 8 + _END + _EXTENSION
# Dots between the groups (0912.345.678) are a common way of writing, and of dodging a pattern.
MOBILE_DOTTED = _START + r"0" + GAP + r"9(?:" + _D + r"){2}\.(?:" + _D + r"){3}\.(?:" + _D + r"){3}" + _END
MOBILE_INTL = _START + _COUNTRY + _TRUNK_ZERO + GAP + "9" + _D * 8 + _END + _EXTENSION
LANDLINE = (
    _START
    + r"(?:\(" + GAP + "0" + GAP + "[2-8]" + r"(?:" + _D + r"){0,2}" + GAP + r"\)" + GAP + r"\d"
    + r"(?:" + _D + r"){4,7}"
    + r"|0" + GAP + "[2-8]" + r"(?:" + _D + r"){7,8})"
    + _END + _EXTENSION
)
LANDLINE_INTL = (
    _START + _COUNTRY + _TRUNK_ZERO + GAP + r"(?:\(" + GAP + r")?[2-8](?:" + GAP + r"\))?"
    + r"(?:" + _D + r"){7,8}" + _END + _EXTENSION
)

_EXTENSION_MARK = ("#", "分機", "轉", "ext", "x")


def national_digits(value: str) -> str:
    """The number's digits in national form (leading 0, no country code, no extension)."""
    v = compact(value).lower()
    for mark in _EXTENSION_MARK:
        cut = v.find(mark, 1)
        if cut > 0:
            v = v[:cut]
    digits = "".join(ch for ch in v if ch.isdigit())
    if v.startswith(("+886", "(+886", "00886", "(00886")):
        digits = digits[digits.index("886") + 3:]
        digits = digits if digits.startswith("0") else "0" + digits
    return digits


class TwPhoneRecognizer(TaiwanPatternRecognizer):
    """Find Taiwanese mobile and landline numbers in any grouping, domestic or +886."""

    ENTITY = "PHONE_NUMBER"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("TW mobile", MOBILE, 0.7),
        Pattern("TW mobile dotted", MOBILE_DOTTED, 0.7),
        Pattern("TW mobile +886", MOBILE_INTL, 0.8),
        Pattern("TW landline", LANDLINE, 0.6),
        Pattern("TW landline +886", LANDLINE_INTL, 0.75),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "電話", "手機", "門號", "聯絡", "連絡", "市話", "傳真", "專線", "分機", "行動", "撥打", "致電",
        "來電", "call", "phone", "tel", "mobile", "fax", "cell",
    ]

    # An unbroken run of 9-10 digits starting 02-08 is a number of some kind, not surely a phone.
    UNSEPARATED_LANDLINE_SCORE = 0.4

    def validate_result(self, pattern_text: str) -> bool | None:
        """False when the digit count does not fit a mobile (10) or landline (9-10) number."""
        digits = national_digits(pattern_text)
        if digits.startswith("09"):
            return None if len(digits) == 10 else False
        return None if 9 <= len(digits) <= 10 and digits[1] in "2345678" else False

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for result in results:
            value = text[result.start:result.end]
            if value.isdigit() and not value.startswith("09"):
                result.score = min(result.score, self.UNSEPARATED_LANDLINE_SCORE)
        return results
