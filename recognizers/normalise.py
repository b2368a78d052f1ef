"""The second view of a text: what a model still reads once encodings and padding are taken away.

``fold`` keeps offsets exact by changing characters one for one. Some evasions cannot be undone
that way, so the analyzer also inspects a *normalised view* built in stages, each of which keeps a
map of what it changed:

1. **decode**: HTML entities (``&#65;``, ``&#x41;``, ``&amp;``), percent-encoded runs (``%E9%99%B3``)
   and base64 runs that decode to readable UTF-8 text are replaced by what they decode to (base64
   up to ``MAX_DEPTH`` times: base64 of percent-encoding is decoded too);
2. **drop**: invisible characters (Unicode categories Cf, Mn, Me: zero-width spaces, LRM/RLM and bidi
   controls, CGJ, variation selectors, combining marks) are removed, and numbers that NFKC writes
   with several characters (``⑩``) are expanded;
3. **numerals**: runs of eight or more Chinese numerals (``A一二三四五六七八九``) are written as digits;
4. **join**: characters a user spaced out are joined: three or more single characters separated
   by spaces or punctuation (``陳 志 明``, ``A.1.2.3``), and letter/digit groups separated by
   ``_``, a line break, four or more spaces, two or more dots (``0912.345.678``, ``A123_456_789``),
   Markdown's ``**``, ``~~`` or backticks, or escaped line breaks and tabs (``0912\\n345``).

A letter/digit chain of three lines or more is also read *delimited*, each line break a space
(``Normalised.delimited``): which of its lines are a value's first and last is unknown, and closed up
the lines around a value glue onto it.

``Normalised.original_span`` maps a span of the view back to the span of the original text it came
from (a decoded character maps to the whole encoded run), so findings are reported, redacted and
audited at offsets into the original text. ``Normalised.windows`` lists the stretches of the view
around each change: only those need inspecting again, so the cost is proportional to what changed.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from recognizers.text import fold, load_fold_data

MAX_DEPTH = 2          # base64 inside base64 inside the prompt, and no deeper
WINDOW_CONTEXT = 48    # characters of unchanged text inspected on each side of a change
_MIN_BASE64 = 12       # the base64 of a 9-character value is 12 characters long
# The fewest digits of a value the delimited reading looks for: a landline (02-2345-678), a national
# or resident ID (a letter and nine); mobiles, passports, cards and accounts have more. Shorter ones
# (a plate, a UBN: both need a context word) split over three lines are left to the closed-up view.
MIN_DIGITS_APART = 9


@dataclass(frozen=True)
class _Stage:
    """The changes one stage made: sorted, non-overlapping replacements (input span → output span)."""

    in_starts: tuple[int, ...]
    in_ends: tuple[int, ...]
    out_starts: tuple[int, ...]
    out_ends: tuple[int, ...]

    def back(self, position: int, end: bool) -> int:
        """The input offset of an output offset: a start maps to the start of a replaced run, an
        (exclusive) end to its end."""
        probe = position - 1 if end else position
        i = bisect.bisect_right(self.out_starts, probe) - 1
        if i < 0:
            return position
        if probe < self.out_ends[i]:  # inside a replacement: the whole replaced run
            return self.in_ends[i] if end else self.in_starts[i]
        return self.in_ends[i] + (position - self.out_ends[i])

    def forward(self, position: int) -> int:
        """The output offset of an input offset (for placing windows)."""
        i = bisect.bisect_right(self.in_starts, position) - 1
        if i < 0:
            return position
        if position < self.in_ends[i]:
            return self.out_starts[i]
        return self.out_ends[i] + (position - self.in_ends[i])


Edit = tuple[int, int, str]  # replace text[start:end] with the string


def _rewrite(text: str, edits: Iterable[Edit]) -> tuple[str, _Stage]:
    """Apply sorted, non-overlapping edits to ``text``, recording where each one went."""
    pieces: list[str] = []
    in_starts: list[int] = []
    in_ends: list[int] = []
    out_starts: list[int] = []
    out_ends: list[int] = []
    copied = 0  # input consumed so far
    length = 0  # output written so far
    for start, end, replacement in edits:
        pieces.append(text[copied:start])
        length += start - copied
        in_starts.append(start)
        in_ends.append(end)
        out_starts.append(length)
        pieces.append(replacement)
        length += len(replacement)
        out_ends.append(length)
        copied = end
    if not in_starts:
        return text, _Stage((), (), (), ())
    pieces.append(text[copied:])
    return "".join(pieces), _Stage(tuple(in_starts), tuple(in_ends), tuple(out_starts), tuple(out_ends))


def _replacements(text: str, pattern: re.Pattern[str],
                  replace: Callable[[re.Match[str]], str | None]) -> Iterator[Edit]:
    """An edit for every match that ``replace`` changes (``None`` keeps the match as it is)."""
    for match in pattern.finditer(text):
        replacement = replace(match)
        if replacement is not None and replacement != match.group():
            yield match.start(), match.end(), replacement


# ---------------------------------------------------------------- stage 1: decode

_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_PERCENT = r"(?:%[0-9A-Fa-f]{2})+"
_BASE64 = r"(?<![A-Za-z0-9+/\-_])[A-Za-z0-9+/\-_]{" + str(_MIN_BASE64) + r",}={0,2}"
# JSON's \uXXXX escapes: JSON held in a string (tool-call arguments, f.req payloads) keeps them after
# the outer parse, and ``json.dumps`` writes every Chinese character that way.
_JSON_ESCAPE = r"(?:\\u[0-9A-Fa-f]{4})+"
# Escapes of other languages a developer pastes from code or logs: Python's bytes (\xe9\x99\xb3),
# JavaScript's \u{9673} and escape()'s %u9673, and quoted-printable from a raw e-mail (=E9=99=B3).
_BYTE_ESCAPE = r"(?:\\x[0-9A-Fa-f]{2})+"
_BRACED_ESCAPE = r"(?:\\u\{[0-9A-Fa-f]{1,6}\})+"
_PERCENT_U = r"(?:%u[0-9A-Fa-f]{4})+"
_QUOTED_PRINTABLE = r"(?:=[0-9A-F]{2}){2,}"
# Text a human reads right to left: an RLO (U+202E) shows ``987654321A`` as A123456789, and a model
# told to read it as displayed does. The view holds the characters in display order.
_RIGHT_TO_LEFT = "\u202e[^\u202a-\u202e\u2066-\u2069\n]{1,256}(?:\u202c|\u2069)?"
# HTML a user pasted: a model reads through tags, so inline ones vanish and the rest end a line.
_HTML_TAG = r"<!--.{0,64}?-->|</?[A-Za-z][A-Za-z0-9]{0,15}(?:\s[^<>]{0,200})?/?>"
_ENCODED_RE = re.compile(
    f"(?P<unicode>{_JSON_ESCAPE})|(?P<braced>{_BRACED_ESCAPE})|(?P<bytes>{_BYTE_ESCAPE})"
    f"|(?P<percent_u>{_PERCENT_U})|(?P<quoted>{_QUOTED_PRINTABLE})|(?P<reversed>{_RIGHT_TO_LEFT})"
    f"|(?P<tag>{_HTML_TAG})|(?P<entity>{_ENTITY})|(?P<percent>{_PERCENT})|(?P<base64>{_BASE64})")
_INLINE_TAGS = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "del", "em", "font", "i", "ins", "kbd", "mark",
    "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "tt", "u", "var", "wbr"})
_HEX_RE = re.compile("[0-9A-Fa-f]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def _readable(decoded: bytes) -> str | None:
    """``decoded`` as text when it is UTF-8 a person could have typed, else None (binary data)."""
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or _CONTROL_RE.search(text):
        return None
    return text


def _decode_base64(run: str) -> bytes | None:
    stripped = run.rstrip("=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in run or "_" in run:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_unescape(run: str) -> str | None:
    """``\\u9673\\u5fd7`` as 陳志; None when it is not text (a lone surrogate, a control character)."""
    try:
        text = json.loads(f'"{run}"')
    except ValueError:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return None
    return None if _CONTROL_RE.search(text) else text


def _code_points(run: str) -> str | None:
    """``\\u{9673}`` or ``%u9673`` runs as the characters they name; None when one is not text."""
    try:
        codes = _HEX_RE.findall(run.replace("\\u", " ").replace("%u", " "))
        text = "".join(chr(int(code, 16)) for code in codes)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # beyond U+10FFFF, or a lone surrogate
        return None
    return None if _CONTROL_RE.search(text) else text


def _html_tag(tag: str) -> str:
    name = re.match(r"</?([A-Za-z0-9]*)", tag)
    if tag.startswith("<!--") or (name is not None and name.group(1).lower() in _INLINE_TAGS):
        return ""
    return "\n"


def _decoder(depth: int) -> Callable[[re.Match[str]], str | None]:
    def decode(match: re.Match[str]) -> str | None:
        if match.lastgroup == "unicode":
            return _json_unescape(match.group())
        if match.lastgroup in ("braced", "percent_u"):
            return _code_points(match.group())
        if match.lastgroup in ("bytes", "quoted"):
            return _readable(bytes.fromhex(re.sub(r"\\x|=", "", match.group())))
        if match.lastgroup == "reversed":
            return match.group().strip("\u202e\u202c\u2069")[::-1]
        if match.lastgroup == "tag":
            return _html_tag(match.group())
        if match.lastgroup == "entity":
            return html.unescape(match.group())
        if match.lastgroup == "percent":
            return _readable(unquote_to_bytes(match.group()))
        run = match.group()
        # A word or a number is not base64 a person hid text in: both letters and digits, or padding.
        if not (run.endswith("=") or (re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run))):
            return None
        raw = _decode_base64(run)
        text = _readable(raw) if raw is not None else None
        if text is None:
            return None
        return _decode_text(text, depth + 1) if depth + 1 < MAX_DEPTH else text
    return decode


def _decode_text(text: str, depth: int = 0) -> str:
    decoded, _ = _rewrite(text, _replacements(text, _ENCODED_RE, _decoder(depth)))
    return decoded


# ---------------------------------------------------------------- stage 2: drop and expand


_TAG_OFFSET, _TAG_FIRST, _TAG_LAST = 0xE0000, 0xE0020, 0xE007E
# Letters and symbols that render as nothing, so evasion kits use them as invisible separators:
# the Hangul fillers and the blank Braille pattern (not format characters, so not in the table).
_BLANK_LETTERS = "\u115f\u1160\u3164\uffa0\u2800"


def _invisible_class(astral: bool) -> str:
    parts = [_BLANK_LETTERS]
    for low, high in load_fold_data()["invisible"]:
        if high >= 0x10000 and not astral:
            continue
        parts.append(re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}")
    return "[" + "".join(parts) + "]+"


_EXPANSIONS: dict[str, str] = load_fold_data()["many"]
_EXPANDED = "[" + "".join(map(re.escape, _EXPANSIONS)) + "]"
# The class with astral ranges is twenty times slower to scan; most texts have no astral character.
_DROP_BMP_RE = re.compile(_invisible_class(astral=False) + "|" + _EXPANDED)
_DROP_ALL_RE = re.compile(_invisible_class(astral=True) + "|" + _EXPANDED)
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def _drop(match: re.Match[str]) -> str:
    run = match.group()
    if run in _EXPANSIONS:
        return _EXPANSIONS[run]
    # Tag characters (U+E0020-E007E) are invisible, yet a model reads them as the ASCII they shadow:
    # "ASCII smuggling" hides a whole value in them.
    return "".join(chr(ord(ch) - _TAG_OFFSET) for ch in run if _TAG_FIRST <= ord(ch) <= _TAG_LAST)


# ---------------------------------------------------------------- stage 3: numerals

# Digits written as Chinese numerals (A一二三四五六七八九, 〇九一二…): a model reads the number. Only
# runs of eight or more, the length of a phone or ID number; prose never writes that many in a row
# (年份 二〇二四 is four).
_NUMERAL_DIGITS = dict(zip("〇零一二三四五六七八九" "壹貳參叁肆伍陸柒捌玖" "兩两",
                           "00123456789" "1233456789" "22", strict=True))
_NUMERAL = "[" + "".join(_NUMERAL_DIGITS) + "]"
_NUMERAL_RUN_RE = re.compile(rf"{_NUMERAL}(?:[ \-.‧·]{{0,3}}{_NUMERAL}){{7,}}")
_NUMERAL_RE = re.compile(_NUMERAL)


def _numerals(text: str) -> Iterator[Edit]:
    """One edit per numeral of a long run, so a finding maps back to exactly its numerals."""
    for run in _NUMERAL_RUN_RE.finditer(text):
        for numeral in _NUMERAL_RE.finditer(text, run.start(), run.end()):
            yield numeral.start(), numeral.end(), _NUMERAL_DIGITS[numeral.group()]


# ---------------------------------------------------------------- stage 4: join

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_ALNUM = r"[A-Za-z0-9]"
# Pictographs (emoji, dingbats, symbols) separate nothing anyone reads: 王😀小😀明 is 王小明.
_PICTOGRAPHS = "\u2600-\u27bf\U0001f000-\U0001faff"
# Arrows, mathematical operators, technical and geometric symbols, bullets and middle dots
# (‧ • ∙ ･ ×): symbols too, between the characters of a value (F→1→2…, 陳‧志‧明).
_SYMBOL_BLOCKS = "\u2190-\u23ff\u25a0-\u25ff\u2b00-\u2bff\u2022\u2027\u00d7\u00f7\uff65`"
# Symbols nobody writes between the single characters of a value: 王=小=明, A#1#2…; brackets and
# quotes only between letters and digits (A(1)2…): in prose they close a single character in a
# caption or a quote (黃湘怡（左）昨…, 『哈利波特』或『榮恩』), and joining those makes names of words.
_SYMBOLS = "=#^<>@&%$" + _SYMBOL_BLOCKS
_BRACKETS = "!?'\"()\\[\\]{}「」『』【】〈〉《》"
_SEPARATOR = rf"[\s.,_\-·・/\\|:;*~+、，。．{_SYMBOLS}{_BRACKETS}{_PICTOGRAPHS}]{{1,16}}"
# Markdown's bold, strike-through and code marks (A12345**6789**, 0912`345`678, ~~), and line breaks or
# tabs written as escapes (0912\n345\n678 in a JSON string pasted as text): nobody types them inside a
# number either. A single * or ~ is left: 1200*3 and 3000~7000 (a range) are arithmetic, not a value.
_MARKDOWN_MARKS = r"(?:\*\*|~~|`{1,3})"
_ESCAPED_BREAK = r"(?:\\[nrt])+"
_WIDE_SEPARATOR = rf"(?:[ \t]*[\r\n._][ \t\r\n._]*|[ \t]{{4,16}}|{_MARKDOWN_MARKS}|{_ESCAPED_BREAK})"
# Three or more single characters separated by anything (陳 志 明, A.1.2.3); letter/digit groups
# separated by what nobody types inside a number on purpose (0912.345.678, A123_456_789, a line
# break, 4+ spaces) when a digit follows: a value's next line or group goes on with its digits, and
# a word on the next line (a field name after a decoded value: f / F123456784 / model) is not glued
# on. White space between longer runs of Chinese is left: headlines and captions use it between
# phrases, and joining those makes names of words (觀光酒莊 青翠 → 莊青翠).
# Each alternative starts with a character class, not a look-behind, so the regex engine can skip
# ahead to a possible start (half the scanning time); the look-behind then checks the character
# before it.
_SINGLE_ALNUM = f"{_ALNUM}(?<!{_ALNUM}{_ALNUM})(?!{_ALNUM})"
# Not sentence punctuation: 甲，乙，丙 is prose.
_CJK_SEPARATOR = rf"[\s._\-·・/\\|*~+{_SYMBOLS}{_PICTOGRAPHS}]{{1,16}}"
# Inside label brackets even two characters are closed up over anything but a bracket: 【機、密】,
# 【機→密】 is a classification marking however it is pulled apart.
_LABEL_JOIN = rf"(?<=[【〔\[])[{_CJK}](?:[^{_CJK}【】〔〕\[\]]{{1,16}}[{_CJK}])+(?=[】〕\]])"
_JOIN_RE = re.compile(
    f"{_LABEL_JOIN}|{_SINGLE_ALNUM}(?:{_SEPARATOR}{_SINGLE_ALNUM}){{2,}}"
    f"|[{_CJK}](?:{_CJK_SEPARATOR}[{_CJK}]){{2,}}"
    f"|{_ALNUM}(?<!{_ALNUM}{_ALNUM}){_ALNUM}*(?:{_WIDE_SEPARATOR}[0-9]{_ALNUM}*)+"
)
_GAPS_RE = re.compile(rf"(?:{_ESCAPED_BREAK}|[^A-Za-z0-9{_CJK}])+")  # an escape's letter is part of its gap
_DIGIT_RE = re.compile("[0-9]")
_LINE_BREAK_RE = re.compile(r"[\r\n]|\\[nr]")


@dataclass(frozen=True)
class _Chain:
    """Characters or groups pulled apart that the join stage closes up, and the gaps between them."""

    alnum: bool                        # letters and digits (else Chinese characters)
    gaps: tuple[re.Match[str], ...]
    lines: tuple[str, ...]             # its text cut at the gaps that hold a line break

    @property
    def ambiguous(self) -> bool:
        """Three lines or more, which of them are a value's first and last unknown, and without its
        first or last line digits enough for a value a space cannot hide (``MIN_DIGITS_APART``).
        Within a line, dots and underscores join one number (1.52.0, 0912_345_678)."""
        if not self.alnum or len(self.lines) < 3:
            return False
        digits = [len(_DIGIT_RE.findall(line)) for line in self.lines]
        return sum(digits) - min(digits[0], digits[-1]) >= MIN_DIGITS_APART


def _chains(text: str) -> list[_Chain]:
    chains = []
    for match in _JOIN_RE.finditer(text):
        alnum = match.group()[0].isascii()
        if alnum and not _DIGIT_RE.search(match.group()):
            continue  # letters only (www.example.com, S.H.E): every identifier has digits
        gaps = tuple(_GAPS_RE.finditer(text, match.start(), match.end()))
        if len(gaps) == 1 and gaps[0].group() == ".":
            continue  # a decimal number (0.912345678), not a spaced-out value
        lines = tuple(line for line in _LINE_BREAK_RE.split(match.group()) if line.strip(" \t._"))
        chains.append(_Chain(alnum, gaps, lines))
    return chains


def _closed(chains: Iterable[_Chain], line_gap: str = "") -> Iterator[Edit]:
    """One edit per separator closed up, so a finding inside a long chain maps back precisely; a
    separator holding a line break becomes ``line_gap``."""
    for chain in chains:
        for separator in chain.gaps:
            gap = line_gap if _LINE_BREAK_RE.search(separator.group()) else ""
            if separator.group() != gap:
                yield separator.start(), separator.end(), gap


# ---------------------------------------------------------------- the view


@dataclass(frozen=True)
class Normalised:
    """The normalised view of a folded text and the maps back to it.

    ``delimited`` is a second reading of the letter/digit chains of three lines or more, each line
    break a space instead of nothing. Closed up, a chain is read whole (病歷號 0034 / 567, a birth
    date 1990 / 01 / 05, an e-mail's user on two lines: their patterns allow no gap), but a value
    on only some of its lines is glued to the others (v1 / 0912 / 345 / 678 reads v10912345678,
    0912 / 345 / 678 / 2 reads 09123456782: no number). A space is a gap every identifier's pattern allows
    (``recognizers.text.GAP``) and still ends a value, so there the value is found whatever its
    neighbours hold. Only the stretches around those chains are inspected in it (``changes_from``:
    its first stage that is its own; the ones before are this view's decoding).
    """

    text: str
    stages: tuple[_Stage, ...]
    delimited: Normalised | None = None
    changes_from: int = 0

    def readings(self) -> Iterator[Normalised]:
        """This view, then the delimited reading if there is one."""
        yield self
        if self.delimited is not None:
            yield self.delimited

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that the view's ``[start, end)`` came from."""
        for stage in reversed(self.stages):
            start, end = stage.back(start, end=False), stage.back(end, end=True)
        return start, end

    def changed_at(self, position: int) -> bool:
        """Whether a change (a decoded run, a dropped character, a closed-up gap) covers or touches
        ``position`` of the original text."""
        for index, stage in enumerate(self.stages):
            for start, end in zip(stage.in_starts, stage.in_ends, strict=True):
                for earlier in reversed(self.stages[:index]):
                    start, end = earlier.back(start, end=False), earlier.back(end, end=True)
                if start <= position <= end:
                    return True
        return False

    def windows(self) -> Iterator[tuple[int, int]]:
        """Stretches of the view around every change, merged where they meet."""
        changes: list[tuple[int, int]] = []
        for index, stage in enumerate(self.stages):
            if index < self.changes_from:
                continue
            for out_start, out_end in zip(stage.out_starts, stage.out_ends, strict=True):
                for later in self.stages[index + 1:]:
                    out_start, out_end = later.forward(out_start), later.forward(out_end)
                changes.append((out_start, out_end))
        changes.sort()
        current: tuple[int, int] | None = None
        for change_start, change_end in changes:
            low = max(0, change_start - WINDOW_CONTEXT)
            high = min(len(self.text), change_end + WINDOW_CONTEXT)
            if current is not None and low <= current[1]:
                current = (current[0], max(current[1], high))
                continue
            if current is not None:
                yield current
            current = (low, high)
        if current is not None:
            yield current


def normalise(folded: str) -> Normalised | None:
    """The normalised view of ``folded`` (the output of ``fold``), or None when it changes nothing."""
    stages = []
    text = folded
    decoded, stage = _rewrite(text, _replacements(text, _ENCODED_RE, _decoder(0)))
    if stage.in_starts:
        text = fold(decoded)  # the decoded text gets the same one-for-one folds
        stages.append(stage)
    drop = _DROP_ALL_RE if _ASTRAL_RE.search(text) else _DROP_BMP_RE
    text, stage = _rewrite(text, _replacements(text, drop, _drop))
    if stage.in_starts:
        stages.append(stage)
    text, stage = _rewrite(text, _numerals(text))
    if stage.in_starts:
        stages.append(stage)
    chains = _chains(text)
    delimited = None
    spaced_out, stage = _rewrite(text, _closed((c for c in chains if c.ambiguous), line_gap=" "))
    if stage.in_starts:
        delimited = Normalised(spaced_out, (*stages, stage), changes_from=len(stages))
    text, stage = _rewrite(text, _closed(chains))
    if stage.in_starts:
        stages.append(stage)
    if not stages:
        return None
    return Normalised(text, tuple(stages), delimited)
