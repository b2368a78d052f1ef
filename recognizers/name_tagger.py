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


def _ends_of(words: frozenset[str], text: str) -> set[int]:
    """Positions right after an occurrence of one of ``words`` (at most four characters long)."""
    found = set()
    n = len(text)
    for i in range(n):
        for length in (1, 2, 3, 4):
            if i + length <= n and text[i:i + length] in words:
                found.add(i + length)
    return found


def _starts_of(words: frozenset[str], text: str) -> set[int]:
    found = set()
    n = len(text)
    for i in range(n):
        for length in (1, 2, 3, 4):
            if i + length <= n and text[i:i + length] in words:
                found.add(i)
                break
    return found


def features(simplified: str, lex: Lexicon) -> list[list[str]]:
    """The feature strings of every character of ``simplified`` (already folded and converted)."""
    n = len(simplified)
    padded = "\x02\x02" + simplified + "\x03\x03"
    freq = lex.word_freq
    # Dictionary words by where they start and end: "ws3" = a word of 3 characters starts here.
    starts: list[list[str]] = [[] for _ in range(n)]
    ends: list[list[str]] = [[] for _ in range(n)]
    for i in range(n):
        for length in _WORD_LENGTHS:
            j = i + length
            if j > n:
                break
            word = simplified[i:j]
            word_freq = freq.get(word, 0)
            if word_freq:
                tag = "n" if word in lex.name_words else _freq_bucket(word_freq)
                starts[i].append(f"ws{length}{tag}")
                ends[j - 1].append(f"we{length}{tag}")
                for k in range(i + 1, j - 1):
                    starts[k].append(f"wm{tag}")
    after_role = _ends_of(lex.roles, simplified)
    before_title = _starts_of(lex.titles, simplified)
    out: list[list[str]] = []
    for i in range(n):
        p = i + 2
        c = padded[p]
        f = [
            "c=" + c, "c-1=" + padded[p - 1], "c+1=" + padded[p + 1], "c-2=" + padded[p - 2],
            "c+2=" + padded[p + 2], "b-1=" + padded[p - 1:p + 1], "b+1=" + padded[p:p + 2],
            "b-2=" + padded[p - 2:p], "b+2=" + padded[p + 1:p + 3], "t=" + _char_class(c),
            "t-1=" + _char_class(padded[p - 1]), "t+1=" + _char_class(padded[p + 1]),
        ]
        if c in lex.surnames:
            f.append("sn")
        if padded[p:p + 2] in lex.compound_surnames:
            f.append("sn2")
        if padded[p - 1] in lex.surnames:
            f.append("sn-1")
        if padded[p - 2] in lex.surnames:
            f.append("sn-2")
        if c in lex.given_chars:
            f.append("gn")
        if padded[p + 1] in lex.given_chars:
            f.append("gn+1")
        if padded[p - 1] in lex.given_chars:
            f.append("gn-1")
        if i in after_role:
            f.append("role")
        if i - 1 in after_role:
            f.append("role-1")
        for d in (1, 2, 3, 4):
            if i + d in before_title:
                f.append(f"title+{d}")
        f.extend(starts[i])
        f.extend(ends[i])
        out.append(f)
    return out


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
