"""Pattern pieces for identifiers that are nothing but a run of digits (統編, passport, 健保卡, card).

A bare digit run is only an identifier when it stands alone: not inside a longer number, and not
one piece of a spaced-out longer number (``0 9 1 2 3 4 5 6 7 8`` must not yield an 8-digit 統編).
So besides the usual "no letter or digit next to it", no digit may stand a gap away on either side.
"""

from __future__ import annotations

from recognizers.text import GAP, NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM, ZERO_WIDTH, spaced

_GAP_CHARS = r"[ \t\-" + ZERO_WIDTH + "]"
ALONE_BEFORE = NOT_AFTER_ALNUM + r"(?<!\d" + _GAP_CHARS + "{1,3})"
ALONE_AFTER = NOT_BEFORE_ALNUM + r"(?!" + _GAP_CHARS + r"{1,3}\d)"


def digit_run(count: int) -> str:
    """A regex for exactly ``count`` digits standing alone, with gaps allowed between them."""
    return ALONE_BEFORE + spaced(*[r"\d"] * count) + ALONE_AFTER


def digit_run_between(low: int, high: int) -> str:
    """A regex for ``low`` to ``high`` digits standing alone, with gaps allowed between them."""
    return ALONE_BEFORE + r"\d(?:" + GAP + r"\d){" + f"{low - 1},{high - 1}" + "}" + ALONE_AFTER
