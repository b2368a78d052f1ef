"""Length-preserving text folding and the pattern pieces every identifier recognizer shares.

Evasions (full-width forms, odd dashes, NBSP, zero-width characters, inserted spaces) are handled
in two steps that keep offsets exact without an offset map:

1. ``fold`` maps each character to at most one character (full-width ASCII to ASCII, every dash to
   ``-``, every space-like character to `` ``, every script's digits to ASCII digits, look-alikes
   of Latin letters to Latin, Simplified-only characters to Traditional), so position *i* of the
   folded text is position *i* of the original text.
2. Recognizer patterns allow ``GAP`` (spaces, hyphens, zero-width characters) between the
   characters of an identifier; ``compact`` strips those gaps before a checksum is computed.

The engine folds once and gives the folded text to every recognizer, so findings are reported at
offsets into the *original* text. What cannot be folded length for length (dropped invisible
characters, joined spaced-out characters, decoded base64, percent-encoding and HTML entities) is
``recognizers.normalise``'s second view, with an offset map back to the original.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u30fc\u2500"
FOLD_DATA_PATH = Path(__file__).parent / "data" / "fold_table.json"


def load_fold_data() -> dict[str, Any]:
    """The generated Unicode table (``recognizers/fold_data.py`` says what is in it and why)."""
    data: dict[str, Any] = json.loads(FOLD_DATA_PATH.read_text(encoding="utf-8"))
    return data


def _build_fold_table() -> dict[int, str]:
    # Generated one-character folds: every script's decimal digits, superscript and circled
    # digits, accented letters, confusables of Latin letters (Cyrillic, Greek, Cherokee), and
    # Simplified characters that never occur in Traditional text.
    table: dict[int, str] = {ord(ch): to for ch, to in load_fold_data()["one"].items()}
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII block
        table[code] = chr(code - 0xFEE0)
    for ch in _SPACES:
        table[ord(ch)] = " "
    for ch in _DASHES:
        table[ord(ch)] = "-"
    return table


# Enclosed, parenthesised and dingbat forms Unicode gives no one-character decomposition (🅰, ➊,
# ⑴, ⒈) or that the NFKC step skips (Ⓐ sits below U+2E80): a model reads them as the letter or
# digit inside. (first code point, the characters it starts, how many)
_ENCLOSED_RUNS = (
    (0x24B6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),  # Ⓐ circled capitals
    (0x24D0, "abcdefghijklmnopqrstuvwxyz", 26),  # ⓐ circled small letters
    (0x249C, "abcdefghijklmnopqrstuvwxyz", 26),  # ⒜ parenthesised small letters
    (0x1F130, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),  # 🄰 squared capitals
    (0x1F150, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),  # 🅐 negative circled capitals
    (0x1F170, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),  # 🅰 negative squared capitals
    (0x1F1E6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26),  # 🇦 regional indicators
    (0x2474, "123456789", 9),                    # ⑴ parenthesised digits
    (0x2488, "123456789", 9),                    # ⒈ digits with a full stop
    (0x24F5, "123456789", 9),                    # ⓵ double circled digits
    (0x2776, "123456789", 9),                    # ❶ dingbat negative circled
    (0x2780, "123456789", 9),                    # ➀ dingbat circled sans-serif
    (0x278A, "123456789", 9),                    # ➊ dingbat negative circled sans-serif
    (0x24FF, "0", 1),                            # ⓿
    (0x1F100, "0", 1),                           # 🄀 digit zero full stop
)
# Small capitals (ᴀ123456789): phonetic letters a model reads as the capital.
_SMALL_CAPITALS = dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", "ABCDEFGHIJKLMNOPQRSTUVWYZ", strict=True))
# Lenticular brackets of other shapes: the label brackets of a classification marking.
_BRACKET_FOLDS = {"〖": "【", "〗": "】", "〘": "【", "〙": "】"}


def _enclosed_folds() -> dict[int, str]:
    table = {ord(k): v for k, v in (_BRACKET_FOLDS | _SMALL_CAPITALS).items()}
    for first, characters, count in _ENCLOSED_RUNS:
        for offset in range(count):
            table[first + offset] = characters[offset]
    return table


_FOLD_TABLE = _build_fold_table() | _enclosed_folds()


# Characters outside ASCII, the common CJK blocks and CJK punctuation: the only ones NFKC may change.
_MAY_NEED_NFKC = re.compile(r"[^\x00-\u2e7f\u3000-\u303f\u4e00-\u9fff]")


def _nfkc_if_one_char(match: re.Match[str]) -> str:
    norm = unicodedata.normalize("NFKC", match.group())
    return norm if len(norm) == 1 else match.group()


def fold(text: str) -> str:
    """Return ``text`` with full-width forms, dashes and spaces folded; ``len`` is unchanged."""
    folded = text.translate(_FOLD_TABLE)
    if folded.isascii():
        return folded
    # CJK compatibility ideographs and similar: NFKC only where it stays one character.
    return _MAY_NEED_NFKC.sub(_nfkc_if_one_char, folded)


# Characters users insert inside identifiers to dodge detection: allowed between characters.
GAP = r"[ \t\-" + ZERO_WIDTH + r"]{0,3}"
_GAP_RE = re.compile(r"[\s\-" + ZERO_WIDTH + r"]")

# Python's \b treats CJK characters as word characters, so "身分證A123456789" has no \b before
# the A. Identifiers are delimited by "no ASCII letter or digit next to them" instead.
NOT_AFTER_ALNUM = r"(?<![A-Za-z0-9])"
NOT_BEFORE_ALNUM = r"(?![A-Za-z0-9])"


def spaced(*parts: str) -> str:
    """Join regex pieces (one character class each) so that a GAP may stand between them."""
    return GAP.join(parts)


def compact(value: str) -> str:
    """Strip the gap characters out of a matched value and upper-case it, for checksums."""
    return _GAP_RE.sub("", value).upper()
