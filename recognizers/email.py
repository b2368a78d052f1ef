"""Recognizer for e-mail addresses (``EMAIL_ADDRESS``), with its own regex.

Format: RFC 5322 ``local@domain`` in the dot-atom form people actually write (letters, digits and
``.!#$%&'*+/=?^_`{|}~-`` in the local part; dotted host labels and an alphabetic top-level
domain). Common obfuscations are accepted too: ``[at]``/``(at)`` for ``@``, ``[dot]``/``(dot)`` for a
dot, spaces around ``@`` and invisible characters inside the address.

Presidio's ``EmailRecognizer`` is not used: its ``tldextract`` validation downloads the public
suffix list at run time, which an outbound proxy must not do.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.base import TaiwanPatternRecognizer
from recognizers.text import ZERO_WIDTH

_ZW = "[" + ZERO_WIDTH + "]*"
_LOCAL_CHARS = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~" + ZERO_WIDTH + "-]"
_LABEL_CHARS = "[A-Za-z0-9" + ZERO_WIDTH + "-]"
_AT = r"[ ]{0,2}(?:@|[\[(]\s?at\s?[\])])[ ]{0,2}"
_DOT = r"(?:\.|[ ]{0,2}[\[(]\s?dot\s?[\])][ ]{0,2})"

EMAIL = (
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])"
    + _LOCAL_CHARS + r"+(?:\." + _LOCAL_CHARS + r"+)*"
    + _AT
    + r"(?:" + _ZW + r"[A-Za-z0-9]" + _LABEL_CHARS + r"{0,62}" + _DOT + r")+"
    + _ZW + r"[A-Za-z]" + r"(?:" + _ZW + r"[A-Za-z]){1,62}"
    + r"(?![A-Za-z0-9_-])"
)


# "icon@2x.png", "logo@3x.jpg": image file names written the way e-mail addresses are.
FILE_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "pdf", "js", "ts", "css", "py", "txt",
    "json", "xml", "html", "md", "zip", "mp4", "mp3",
})


class EmailRecognizer(TaiwanPatternRecognizer):
    """Find e-mail addresses, plain or with the usual [at]/[dot] obfuscations."""

    ENTITY = "EMAIL_ADDRESS"

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("Email address", EMAIL, 0.9)]

    CONTEXT: ClassVar[list[str]] = ["email", "e-mail", "mail", "信箱", "郵件", "電郵", "郵箱"]

    def invalidate_result(self, pattern_text: str) -> bool:
        """True (drop) for a file name such as ``icon@2x.png``."""
        tld = pattern_text.rsplit(".", 1)[-1].strip(ZERO_WIDTH).lower()
        return tld in FILE_EXTENSIONS
