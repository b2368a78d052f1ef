"""A trained character tagger for person names: a linear-chain CRF over characters (python-crfsuite).

The same feature function serves training (``tools/train_names.py``) and tagging, so the shipped model
and the code that runs it cannot drift apart.  Features are computed on the Simplified form of the
folded text (OpenCC ``t2s`` maps character by character, so offsets do not move); every feature is a
lookup in a dict or a set, so tagging is linear in the length of the text.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
MODEL_PATH = DATA_DIR / "person_crf.crfsuite"
METADATA_PATH = DATA_DIR / "person_crf.json"

BEGIN, INSIDE, OUTSIDE = "B", "I", "O"
# Dictionary words of two to four characters starting or ending at a character are features; longer
# words are rare and add nothing a four-character window does not already see.
_WORD_LENGTHS = (2, 3, 4)
# Texts are tagged in pieces of at most this many characters, cut at a line or sentence end where
# there is one: a CRF's cost is linear, but one piece per sentence keeps every call small.
_MAX_PIECE = 400
_PIECE_ENDS = frozenset("\n。！？!?；;")
# A line at least this long that ends between two Han characters is hard-wrapped prose.
_WRAPPED_LINE = 12
_HAN_RE = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
_DOTS = frozenset("\u00b7\u2027\u2022.\u30fb\u2219\u22c5\uff65")


@dataclass(frozen=True)
class Lexicon:
    """What the features look up: surnames, given-name characters, dictionary words, context words."""

    surnames: frozenset[str]  # single-character surnames (Simplified)
    compound_surnames: frozenset[str]  # two-character surnames (Simplified)
    given_chars: frozenset[str]  # characters typical of Taiwanese given names (Simplified)
    word_freq: Mapping[str, int]  # jieba's dictionary: word -> frequency
    name_words: frozenset[str]  # dictionary words jieba tags as person names (nr*)
    roles: frozenset[str]  # words after which a name is expected (報案人, 主席, 記者)
    titles: frozenset[str]  # words written right after a name (先生, 科長, 說)


@dataclass(frozen=True)
class TaggedName:
    """A name the model found: offsets into the tagged text and its mean marginal probability."""

    start: int
    end: int
    probability: float


def _char_class(ch: str) -> str:
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff":
        return "H"
    if ch.isdigit():
        return "D"
    if ch.isascii() and ch.isalpha():
        return "L"
    if ch in _DOTS:
        return "."
    if ch.isspace():
        return "S"
    return "P"


def _freq_bucket(freq: int) -> str:
    return "0" if freq < 10 else "1" if freq < 100 else "2" if freq < 1000 else "3"


def _starts_re(words: frozenset[str]) -> re.Pattern[str]:
    """A zero-width pattern that matches wherever one of ``words`` starts (overlaps included)."""
    compiled = _STARTS_RE_CACHE.get(words)
    if compiled is None:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        compiled = _STARTS_RE_CACHE[words] = re.compile(f"(?=(?:{alternatives}))")
    return compiled


_STARTS_RE_CACHE: dict[frozenset[str], re.Pattern[str]] = {}


def _ends_of(words: frozenset[str], text: str) -> set[int]:
    """Positions right after an occurrence of one of ``words`` (at most four characters long)."""
    found = set()
    n = len(text)
    for m in _starts_re(words).finditer(text):
        i = m.start()
        for length in (1, 2, 3, 4):
            if i + length <= n and text[i:i + length] in words:
                found.add(i + length)
    return found


def _starts_of(words: frozenset[str], text: str) -> set[int]:
    return {m.start() for m in _starts_re(words).finditer(text)}


def _classes(text: str) -> list[str]:
    cache = _CLASS_CACHE
    out = []
    for ch in text:
        cls = cache.get(ch)
        if cls is None:
            cls = cache[ch] = _char_class(ch)
        out.append(cls)
    return out


_CLASS_CACHE: dict[str, str] = {}


def features(simplified: str, lex: Lexicon) -> list[list[str]]:
    """The feature strings of every character of ``simplified`` (already folded and converted).

    Built column by column (one comprehension per feature kind, then zipped into rows): the same
    features as a loop per character, a few times faster, which is what tagging costs most.
    """
    n = len(simplified)
    if n == 0:
        return []
    padded = "\x02\x02" + simplified + "\x03\x03"
    pairs = [padded[p:p + 2] for p in range(n + 3)]
    classes = _classes(padded)
    rows = [list(row) for row in zip(
        ["c=" + c for c in padded[2:n + 2]],
        ["c-1=" + c for c in padded[1:n + 1]],
        ["c+1=" + c for c in padded[3:n + 3]],
        ["c-2=" + c for c in padded[0:n]],
        ["c+2=" + c for c in padded[4:n + 4]],
        ["b-1=" + b for b in pairs[1:n + 1]],
        ["b+1=" + b for b in pairs[2:n + 2]],
        ["b-2=" + b for b in pairs[0:n]],
        ["b+2=" + b for b in pairs[3:n + 3]],
        ["t=" + t for t in classes[2:n + 2]],
        ["t-1=" + t for t in classes[1:n + 1]],
        ["t+1=" + t for t in classes[3:n + 3]],
        strict=True,
    )]
    surnames, given = lex.surnames, lex.given_chars
    for i in range(n):
        p = i + 2
        c = padded[p]
        row = rows[i]
        if c in surnames:
            row.append("sn")
        if pairs[p] in lex.compound_surnames:
            row.append("sn2")
        if padded[p - 1] in surnames:
            row.append("sn-1")
        if padded[p - 2] in surnames:
            row.append("sn-2")
        if c in given:
            row.append("gn")
        if padded[p + 1] in given:
            row.append("gn+1")
        if padded[p - 1] in given:
            row.append("gn-1")
    for i in _ends_of(lex.roles, simplified):
        if i < n:
            rows[i].append("role")
        if i + 1 < n:
            rows[i + 1].append("role-1")
    for j in _starts_of(lex.titles, simplified):
        for d in (1, 2, 3, 4):
            if 0 <= j - d < n:
                rows[j - d].append(f"title+{d}")
    # Dictionary words by where they start and end: "ws3" = a word of 3 characters starts here.
    freq_get = lex.word_freq.get
    name_words = lex.name_words
    for i in range(n):
        for length in _WORD_LENGTHS:
            j = i + length
            if j > n:
                break
            word = simplified[i:j]
            word_freq = freq_get(word, 0)
            if word_freq:
                tag = "n" if word in name_words else _freq_bucket(word_freq)
                rows[i].append(f"ws{length}{tag}")
                rows[j - 1].append(f"we{length}{tag}")
                for k in range(i + 1, j - 1):
                    rows[k].append(f"wm{tag}")
    return rows


def spans_from_labels(labels: list[str]) -> list[tuple[int, int]]:
    """``[(start, end)]`` of the B/I runs in a label sequence."""
    spans = []
    start = -1
    for i, label in enumerate([*labels, OUTSIDE]):
        if label != INSIDE and start >= 0:
            spans.append((start, i))
            start = -1
        if label == BEGIN:
            start = i
    return spans


def labels_from_spans(length: int, spans: list[tuple[int, int]]) -> list[str]:
    labels = [OUTSIDE] * length
    for start, end in spans:
        labels[start] = BEGIN
        for i in range(start + 1, end):
            labels[i] = INSIDE
    return labels


def unwrap(text: str) -> tuple[str, list[int]]:
    """``text`` without the line breaks of hard-wrapped prose, and where each kept character was.

    Text pasted from a PDF breaks lines mid-word ("犯罪集團的關⏎說"); the model reads it joined.  Only a
    break between two Han characters after a line of ``_WRAPPED_LINE`` characters or more is removed, so
    a list of names one per line stays a list.
    """
    if "\n" not in text:
        return text, list(range(len(text)))
    kept: list[int] = []
    line_start = 0
    for i, ch in enumerate(text):
        if ch == "\n":
            wrapped = (
                i - line_start >= _WRAPPED_LINE and i + 1 < len(text)
                and _HAN_RE.match(text, i - 1) is not None and _HAN_RE.match(text, i + 1) is not None
            )
            line_start = i + 1
            if wrapped:
                continue
        kept.append(i)
    return "".join(text[i] for i in kept), kept


def pieces(text: str, max_piece: int = _MAX_PIECE) -> Iterator[tuple[int, int]]:
    """``(start, end)`` pieces covering ``text``: cut after a sentence or line end, or every ``max_piece``."""
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + max_piece)
        if end < n:
            cut = max((text.rfind(ch, start, end) for ch in _PIECE_ENDS), default=-1)
            if cut >= start + max_piece // 4:
                end = cut + 1
        yield start, end
        start = end


class NameTagger:
    """The shipped CRF: loaded once, thread-safe per call (a tagger object per thread)."""

    def __init__(self, lex: Lexicon, model_path: Path = MODEL_PATH) -> None:
        import pycrfsuite

        if not model_path.is_file():
            raise FileNotFoundError(f"name tagger model missing: {model_path} (see tools/train_names.py)")
        self.lex = lex
        self.model_path = model_path
        self._tagger: Any = pycrfsuite.Tagger()
        self._lock = threading.Lock()
        self._tagger.open(str(model_path))

    @staticmethod
    def metadata(path: Path = METADATA_PATH) -> dict[str, Any]:
        with path.open(encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return data

    def tag(self, simplified: str) -> list[TaggedName]:
        """Names in ``simplified`` (folded, then ``t2s``) with the model's mean marginal probability."""
        joined, positions = unwrap(simplified)
        found: list[TaggedName] = []
        with self._lock:  # a crfsuite tagger holds the last sequence: one caller at a time
            tagger = self._tagger
            for lo, hi in pieces(joined):
                piece = joined[lo:hi]
                if not _HAN_RE.search(piece):
                    continue  # no Han characters: nothing this model was trained on
                labels = tagger.tag(features(piece, self.lex))
                for start, end in spans_from_labels(labels):
                    while start < end and piece[start].isspace():
                        start += 1
                    while end > start and piece[end - 1].isspace():
                        end -= 1
                    if start == end:
                        continue
                    probability = (tagger.marginal(labels[start], start) + sum(
                        tagger.marginal(labels[i], i) for i in range(start + 1, end))) / (end - start)
                    found.append(TaggedName(positions[lo + start], positions[lo + end - 1] + 1, probability))
        return found
