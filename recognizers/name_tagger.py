"""A trained character tagger for person names: a linear-chain CRF over characters, run with numpy.

One table of feature templates serves training (``features()`` strings for python-crfsuite, in
``tools/train_names.py``) and tagging (the same attributes as integer keys looked up in numpy tables,
with the weights exported from the crfsuite model to ``data/person_crf.npz``), so the shipped model
and the code that runs it cannot drift apart.  Features are computed on the Simplified form of the
folded text (OpenCC ``t2s`` maps character by character, so offsets do not move); every feature is a
table look-up, and decoding is exact (``recognizers/crf_inference.py``), so tagging is linear in the
length of the text and gives crfsuite's labels and marginals.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recognizers.crf_inference import (
    marginals,
    marginals_sequence,
    read_crfsuite_model,
    viterbi,
    viterbi_sequence,
)
from recognizers.name_net import BMP as _BMP
from recognizers.name_net import NameNet, NetInputs, class_index

DATA_DIR = Path(__file__).parent / "data"
MODEL_PATH = DATA_DIR / "person_crf.crfsuite"
METADATA_PATH = DATA_DIR / "person_crf.json"
# What tagging loads: the model's weights keyed by feature template (tools/export_name_model.py).
WEIGHTS_PATH = DATA_DIR / "person_crf.npz"

BEGIN, INSIDE, OUTSIDE = "B", "I", "O"
# Dictionary words of two to four characters starting or ending at a character are features; longer
# words are rare and add nothing a four-character window does not already see.
_WORD_LENGTHS = (2, 3, 4)
# Texts are tagged in pieces of at most this many characters, cut at a line or sentence end where
# there is one: a CRF's cost is linear, but one piece per sentence keeps every call small.
_MAX_PIECE = 400
# Up to this many characters a text is decoded in plain Python (numpy's per-call cost is larger there).
_SHORT_TEXT = 3000
# Up to this many characters of padded buffer, state scores take ``_short_emissions``' path: fewer numpy
# calls, but beyond it (measured: cheaper at 6,400, twice the cost at 9,600) its gather outgrows the caches.
_SHORT_BUFFER = 5000
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


_FREQ_BUCKET_BOUNDS = (10, 100, 1000)  # bucket "0" below 10, "1" below 100, "2" below 1000, else "3"


def _freq_bucket(freq: int) -> str:
    return str(sum(freq >= bound for bound in _FREQ_BUCKET_BOUNDS))


def _starts_re(words: frozenset[str]) -> re.Pattern[str]:
    """A zero-width pattern that matches wherever one of ``words`` starts (overlaps included)."""
    compiled = _STARTS_RE_CACHE.get(words)
    if compiled is None:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        # A class of the words' first characters in front: the regex engine skips, without trying the
        # alternation, every position where no word can start (several times faster on prose).
        firsts = "".join(sorted({re.escape(w[0]) for w in words if w}))
        guard = f"(?=[{firsts}])" if firsts and all(words) else ""
        compiled = _STARTS_RE_CACHE[words] = re.compile(f"{guard}(?=(?:{alternatives}))")
    return compiled


_STARTS_RE_CACHE: dict[frozenset[str], re.Pattern[str]] = {}


def _ends_of(words: frozenset[str], text: str) -> set[int]:
    """Positions right after an occurrence of one of ``words`` of at most four characters."""
    found: set[int] = set()
    for length in (1, 2, 3, 4):
        same_length = _BY_LENGTH_CACHE.get((words, length))
        if same_length is None:
            same_length = _BY_LENGTH_CACHE[(words, length)] = frozenset(w for w in words if len(w) == length)
        if same_length:  # one pattern per length: an end is a start plus the length, no slicing
            found.update(m.start() + length for m in _starts_re(same_length).finditer(text))
    return found


_BY_LENGTH_CACHE: dict[tuple[frozenset[str], int], frozenset[str]] = {}


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


# --- the feature templates: one table drives the training strings and the vectorised keys -----------


@dataclass(frozen=True)
class WindowTemplate:
    """An attribute whose value is the text (or its character classes) at an offset: ``c-1=张``, ``t=H``."""

    name: str
    offset: int  # of the window's first character, from the tagged character
    width: int  # characters: 1 or 2
    char_class: bool = False  # the characters' classes (``_char_class``) rather than the characters


@dataclass(frozen=True)
class SetTemplate:
    """A flag set when the text at an offset is in one of the lexicon's sets: ``sn`` (a surname here)."""

    name: str
    lexicon_field: str  # a frozenset field of ``Lexicon``
    offset: int
    width: int


WINDOW_TEMPLATES = (
    WindowTemplate("c", 0, 1), WindowTemplate("c-1", -1, 1), WindowTemplate("c+1", 1, 1),
    WindowTemplate("c-2", -2, 1), WindowTemplate("c+2", 2, 1),
    WindowTemplate("b-1", -1, 2), WindowTemplate("b+1", 0, 2), WindowTemplate("b-2", -2, 2),
    WindowTemplate("b+2", 1, 2),
    WindowTemplate("t", 0, 1, char_class=True), WindowTemplate("t-1", -1, 1, char_class=True),
    WindowTemplate("t+1", 1, 1, char_class=True),
)
SET_TEMPLATES = (
    SetTemplate("sn", "surnames", 0, 1), SetTemplate("sn2", "compound_surnames", 0, 2),
    SetTemplate("sn-1", "surnames", -1, 1), SetTemplate("sn-2", "surnames", -2, 1),
    SetTemplate("gn", "given_chars", 0, 1), SetTemplate("gn+1", "given_chars", 1, 1),
    SetTemplate("gn-1", "given_chars", -1, 1),
)
# Context words: "role" on the character right after a role word, "role-1" on the next one;
# "title+d" on the character d places before a title word.
ROLE_TEMPLATES = {"role": 0, "role-1": 1}
TITLE_TEMPLATES = {f"title+{d}": -d for d in (1, 2, 3, 4)}
# Dictionary words: "ws3n" = a word of 3 characters starts here and jieba tags it a name; "we2" ends
# here; "wm" is inside; the tag is "n" or the frequency bucket of ``_freq_bucket``.
WORD_TAGS = ("0", "1", "2", "3", "n")
PAD_BEFORE, PAD_AFTER = "\x02\x02", "\x03\x03"  # what the windows see beyond the text's ends


def word_tag(word: str, lex: Lexicon) -> str | None:
    """The tag of a dictionary word's features, ``None`` when ``word`` is not in the dictionary."""
    word_freq = lex.word_freq.get(word, 0)
    if not word_freq:
        return None
    return "n" if word in lex.name_words else _freq_bucket(word_freq)


def word_attribute_names() -> list[str]:
    """Every dictionary-word attribute the features can produce."""
    names = [f"{kind}{length}{tag}" for kind in ("ws", "we") for length in _WORD_LENGTHS for tag in WORD_TAGS]
    return names + [f"wm{tag}" for tag in WORD_TAGS]


def flag_attribute_names() -> list[str]:
    """Every attribute without a value (a flag): set, role, title and dictionary-word templates."""
    return [*(t.name for t in SET_TEMPLATES), *ROLE_TEMPLATES, *TITLE_TEMPLATES, *word_attribute_names()]


def features(simplified: str, lex: Lexicon) -> list[list[str]]:
    """The feature strings of every character of ``simplified`` (already folded and converted).

    Training reads these strings; tagging computes the same attributes as integer keys
    (``recognizers/crf_inference.py``), from the same template tables.  Built column by column (one
    comprehension per template, then zipped into rows), a few times faster than a loop per character.
    """
    n = len(simplified)
    if n == 0:
        return []
    padded = PAD_BEFORE + simplified + PAD_AFTER
    classes = "".join(_classes(padded))
    columns = []
    for template in WINDOW_TEMPLATES:
        source = classes if template.char_class else padded
        lo, width, prefix = 2 + template.offset, template.width, template.name + "="
        columns.append([prefix + source[p:p + width] for p in range(lo, lo + n)])
    rows = [list(row) for row in zip(*columns, strict=True)]
    sets = [(t, getattr(lex, t.lexicon_field)) for t in SET_TEMPLATES]
    for i in range(n):
        row = rows[i]
        p = i + 2
        for set_template, members in sets:
            q = p + set_template.offset
            if padded[q:q + set_template.width] in members:
                row.append(set_template.name)
    for end in _ends_of(lex.roles, simplified):
        for name, offset in ROLE_TEMPLATES.items():
            if end + offset < n:
                rows[end + offset].append(name)
    for start in _starts_of(lex.titles, simplified):
        for name, offset in TITLE_TEMPLATES.items():
            if 0 <= start + offset < n:
                rows[start + offset].append(name)
    for i in range(n):
        for length in _WORD_LENGTHS:
            j = i + length
            if j > n:
                break
            tag = word_tag(simplified[i:j], lex)
            if tag is not None:
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
    # Only the line breaks are visited: the text between them is copied by slices.
    removed: list[int] = []
    line_start = 0
    n = len(text)
    i = text.find("\n")
    while i >= 0:
        if (i - line_start >= _WRAPPED_LINE and i + 1 < n
                and _HAN_RE.match(text, i - 1) is not None and _HAN_RE.match(text, i + 1) is not None):
            removed.append(i)
        line_start = i + 1
        i = text.find("\n", line_start)
    if not removed:
        return text, list(range(n))
    bounds = [-1, *removed, n]
    kept = list(itertools.chain.from_iterable(range(a + 1, b) for a, b in itertools.pairwise(bounds)))
    return "".join(text[a + 1:b] for a, b in itertools.pairwise(bounds)), kept


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


# --- the shipped weights, keyed for numpy ---------------------------------------------------------

# A window attribute's key: the template's index above bit 48, below it the codepoint (one character)
# or two codepoints of 21 bits each (two characters), or the class letter's codepoint.
_TEMPLATE_SHIFT = 48
_CHAR_BITS = 21
_TEMPLATE_INDEX = {t.name: i for i, t in enumerate(WINDOW_TEMPLATES)}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that exporting the same model writes the same bytes


def window_key(attribute: str) -> int | None:
    """The integer key of a window attribute (``c-1=张`` …), ``None`` for an attribute of another kind."""
    name, sep, value = attribute.partition("=")
    if not sep:
        return None
    index = _TEMPLATE_INDEX.get(name)
    if index is None:
        return None
    template = WINDOW_TEMPLATES[index]
    if len(value) != template.width:
        raise ValueError(f"attribute {attribute!r}: template {name} takes {template.width} character(s)")
    packed = 0
    for ch in value:
        packed = (packed << _CHAR_BITS) | ord(ch)
    return (index << _TEMPLATE_SHIFT) | packed


@dataclass(frozen=True)
class TaggerWeights:
    """The CRF's weights by template: window attributes as sorted integer keys, flags by name."""

    labels: tuple[str, ...]
    transitions: npt.NDArray[np.float64]  # (labels, labels): from, to
    window_keys: npt.NDArray[np.uint64]  # sorted
    window_weights: npt.NDArray[np.float64]  # (keys + 1, labels); the last row is zeros (no such key)
    flag_names: tuple[str, ...]
    flag_weights: npt.NDArray[np.float64]  # (flags, labels)

    @classmethod
    def from_crfsuite(cls, path: Path) -> TaggerWeights:
        """Key a crfsuite model's weights; an attribute that no template computes is an error."""
        model = read_crfsuite_model(path)
        if set(model.labels) != {BEGIN, INSIDE, OUTSIDE}:
            raise ValueError(f"{path}: labels {model.labels}, expected B/I/O")
        flags = flag_attribute_names()
        flag_index = {name: i for i, name in enumerate(flags)}
        keys: dict[int, int] = {}  # attribute index -> window key
        for index, attribute in enumerate(model.attributes):
            key = window_key(attribute)
            if key is not None:
                keys[index] = key
            elif attribute not in flag_index:
                raise ValueError(f"{path}: attribute {attribute!r} matches no feature template")
        n_labels = len(model.labels)
        ordered = sorted(set(keys.values()))
        row_of_key = {key: row for row, key in enumerate(ordered)}
        window_weights = np.zeros((len(ordered) + 1, n_labels))
        flag_weights = np.zeros((len(flags), n_labels))
        state = zip(model.state_attribute.tolist(), model.state_label.tolist(), model.state_weight.tolist(),
                    strict=True)
        for attribute, label, weight in state:
            if attribute in keys:
                window_weights[row_of_key[keys[attribute]], label] += weight
            else:
                flag_weights[flag_index[model.attributes[attribute]], label] += weight
        return cls(
            labels=model.labels, transitions=model.transitions,
            window_keys=np.array(ordered, dtype=np.uint64), window_weights=window_weights,
            flag_names=tuple(flags), flag_weights=flag_weights,
        )

    def save(self, path: Path) -> None:
        """Write an ``.npz`` (a zip of ``.npy`` arrays) with fixed dates: the same model, the same bytes."""
        arrays = {
            "labels": np.array(self.labels), "transitions": self.transitions,
            "window_keys": self.window_keys, "window_weights": self.window_weights,
            "flag_names": np.array(self.flag_names), "flag_weights": self.flag_weights,
        }
        save_npz(path, arrays)

    @classmethod
    def load(cls, path: Path) -> TaggerWeights:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                labels=tuple(str(x) for x in data["labels"]), transitions=data["transitions"],
                window_keys=data["window_keys"], window_weights=data["window_weights"],
                flag_names=tuple(str(x) for x in data["flag_names"]), flag_weights=data["flag_weights"],
            )


def save_npz(path: Path, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Write an ``.npz`` (a zip of ``.npy`` arrays) with fixed dates: the same arrays, the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), buffer.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)


_CODEPOINTS = 0x110000
_VALUE_MASK = (1 << _TEMPLATE_SHIFT) - 1
_CHAR_MASK = (1 << _CHAR_BITS) - 1


def _codes(text: str) -> npt.NDArray[np.int64]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _index_table(alphabet: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Codepoint -> 1 + its index in ``alphabet``; 0 for a character not in it (a direct table, 4 MB)."""
    table = np.zeros(_CODEPOINTS, dtype=np.int32)
    table[alphabet] = np.arange(1, len(alphabet) + 1, dtype=np.int32)
    return table


def _pair_keys(values: Iterator[str] | frozenset[str]) -> npt.NDArray[np.int64]:
    """Two-character strings as sorted integer keys (21 bits per codepoint)."""
    return np.array(sorted({(ord(v[0]) << _CHAR_BITS) | ord(v[1]) for v in values if len(v) == 2}),
                    dtype=np.int64)


def _lookup(sorted_keys: npt.NDArray[Any], keys: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Index of each key in ``sorted_keys``, or ``len(sorted_keys)`` when it is not there."""
    size = len(sorted_keys)
    if size == 0:
        return np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), size - 1)
    found: npt.NDArray[np.int64] = np.where(sorted_keys[at] == keys, at, size)
    return found


@dataclass(frozen=True)
class _WindowGroup:
    """Window templates of one kind: ``columns[k][value at offset k]`` summed over the templates k."""

    offsets: npt.NDArray[np.int64]  # (templates,)
    columns: tuple[npt.NDArray[np.float64], ...]  # per template: (values + 1, labels); last row: no such key
    pair_keys: npt.NDArray[np.int64] | None  # two-character groups: sorted pair keys (None: value = char id)


class _WindowTables:
    """Window weights in three groups: characters, character classes (direct tables) and pairs.

    Characters are numbered by their index in the model's alphabet (``char_id``, 0: not in it), so a
    one-character value is a row number and a pair is one small integer; the four pair templates are
    the same pair at four offsets, so a text's pairs are looked up once.
    """

    def __init__(self, weights: TaggerWeights) -> None:
        keys = weights.window_keys
        template = (keys >> np.uint64(_TEMPLATE_SHIFT)).astype(np.int64)
        values = (keys & np.uint64(_VALUE_MASK)).astype(np.int64)
        first, second = values >> _CHAR_BITS, values & _CHAR_MASK
        widths = np.array([t.width for t in WINDOW_TEMPLATES])[template]
        self.char_id = _index_table(np.unique(np.concatenate((second, first[widths == 2]))))
        self.size = int(self.char_id.max()) + 1
        n_labels = weights.window_weights.shape[1]
        pair_value = self.char_id[first].astype(np.int64) * self.size + self.char_id[second]
        self.groups: dict[str, _WindowGroup] = {}
        for kind, members in (
            ("chars", [i for i, t in enumerate(WINDOW_TEMPLATES) if t.width == 1 and not t.char_class]),
            ("classes", [i for i, t in enumerate(WINDOW_TEMPLATES) if t.char_class]),
            ("pairs", [i for i, t in enumerate(WINDOW_TEMPLATES) if t.width == 2]),
        ):
            in_group = np.isin(template, members)
            if kind == "pairs":
                pair_keys = np.unique(pair_value[in_group])
                row = np.searchsorted(pair_keys, pair_value)
                table = np.zeros((len(pair_keys) + 1, len(members), n_labels))
            else:
                pair_keys = None
                row = self.char_id[second]
                table = np.zeros((self.size + 1, len(members), n_labels))
            for column, index in enumerate(members):
                mine = template == index
                table[row[mine], column] = weights.window_weights[np.flatnonzero(mine)]
            offsets = np.array([WINDOW_TEMPLATES[i].offset for i in members], dtype=np.int64)
            columns = tuple(np.ascontiguousarray(table[:, column]) for column in range(len(members)))
            self.groups[kind] = _WindowGroup(offsets, columns, pair_keys)

    def scores(self, codes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The window templates' part of the state scores of ``rows``."""
        ids = self.char_id[codes].astype(np.int64)
        shifted: dict[int, npt.NDArray[np.int64]] = {}  # rows + offset, computed once per offset
        total = self._gather(self.groups["chars"], ids, rows, shifted)
        class_ids = self.char_id[_class_codes(codes)].astype(np.int64)
        total += self._gather(self.groups["classes"], class_ids, rows, shifted)
        pairs = self.groups["pairs"]
        assert pairs.pair_keys is not None
        pair_rows = _lookup(pairs.pair_keys, ids[:-1] * self.size + ids[1:])  # pair starting at each row
        return total + self._gather(pairs, pair_rows, rows, shifted)

    @staticmethod
    def _gather(group: _WindowGroup, values: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                shifted: dict[int, npt.NDArray[np.int64]]) -> npt.NDArray[np.float64]:
        # One contiguous table per template, gathered and added in turn: twice as fast as one gather
        # of (rows, templates, labels) summed over its middle axis.
        total: npt.NDArray[np.float64] | None = None
        for column, offset in zip(group.columns, group.offsets.tolist(), strict=True):
            at = shifted.get(offset)
            if at is None:
                at = shifted[offset] = rows + offset
            if total is None:
                total = column[values[at]]
            else:
                total += column[values[at]]
        assert total is not None
        return total


@dataclass(frozen=True)
class _GramIndex:
    """Sorted integer keys of character n-grams, each mapped to a row: ``find`` is two numpy calls.

    ``bounds`` interleaves every key k with k + 1, so ``searchsorted(bounds, x, "right")`` is odd
    exactly when x is a key; ``rows`` maps that position to the key's row and every even one to
    ``missing`` (a table's row of zeros).
    """

    bounds: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]

    @classmethod
    def build(cls, keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int64], missing: int) -> _GramIndex:
        if len(keys) > 1 and (np.diff(keys) <= 0).any():  # sorted already when they come from np.unique
            order = np.argsort(keys)
            keys, rows = keys[order], rows[order]
            if (np.diff(keys) == 0).any():
                raise ValueError("n-gram keys must be distinct")
        at = np.full(2 * len(keys) + 1, missing, dtype=np.int64)
        at[1::2] = rows
        return cls(np.stack((keys, keys + 1), axis=1).reshape(-1), at)

    def find(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        found: npt.NDArray[np.int64] = self.rows.take(np.searchsorted(self.bounds, keys, side="right"))
        return found


class _ShortTextTables:
    """Every template but the context words as blocks of one stacked table, for short texts in the
    Basic Multilingual Plane: a text's state scores from them are one gather and one product.

    - One-character templates (character, character class, surname and given-name sets): one block
      per offset, summed; its rows are the distinct (alphabet index, class, surname, given name)
      combinations of the plane, so a character the model never saw shares the row of its class.
    - Two characters (window pairs, two-character dictionary words, compound surnames): one block
      per pair offset, a row per pair (a word starting here is the pair at offset 0, one ending here
      the pair at offset -1).
    - Dictionary words of three and four characters: a block per position in the word (start,
      inside, end), a row per word tag.

    A sentence's numpy calls cost more than their arithmetic, so fewer calls is what makes it fast.
    """

    _GRAM_PAD = 3  # ids of zeros around a text's n-grams: no n-gram of a row reaches outside them
    # Where each position vector of ``state_scores`` starts beyond ``k * length``: the singles have
    # length entries, pairs 2 * pad - 1 more, triples 2 * pad - 2, and the n-grams are shifted by pad.
    _VECTOR_START = (0, _GRAM_PAD, 2 * _GRAM_PAD - 1 + _GRAM_PAD, 4 * _GRAM_PAD - 3 + _GRAM_PAD)

    def __init__(self, windows: _WindowTables, vocabulary: _Vocabulary, flag_weights: npt.NDArray[np.float64],
                 flag_column: dict[str, int], compound_surnames: frozenset[str]) -> None:
        one_character = {t.lexicon_field for t in SET_TEMPLATES if t.width == 1}
        two_characters = [(t.lexicon_field, t.offset) for t in SET_TEMPLATES if t.width == 2]
        if one_character != {"surnames", "given_chars"} or two_characters != [("compound_surnames", 0)]:
            raise ValueError("set templates changed: update _ShortTextTables")
        n_labels = flag_weights.shape[1]
        plane = np.arange(_BMP, dtype=np.int64)
        char_ids = windows.char_id[plane].astype(np.int64)
        class_ids = windows.char_id[_class_codes(plane)].astype(np.int64)
        surname = vocabulary.char_sets["surnames"][plane]
        given = vocabulary.char_sets["given_chars"][plane]
        # (alphabet index, class, surname, given name) as one integer: unique rows without a row sort.
        n_classes = int(class_ids.max()) + 1
        packed = ((char_ids * n_classes + class_ids) * 2 + surname) * 2 + given
        distinct, row = np.unique(packed, return_inverse=True)
        combo_char, rest = np.divmod(distinct, n_classes * 4)
        combo_class, rest = np.divmod(rest, 4)
        combo_surname, combo_given = np.divmod(rest, 2)
        self.single_row = row.reshape(-1).astype(np.int64)  # codepoint (BMP) -> its row in an offset's block
        singles: dict[int, npt.NDArray[np.float64]] = {}
        for kind, ids in (("chars", combo_char), ("classes", combo_class)):
            group = windows.groups[kind]
            for column, offset in zip(group.columns, group.offsets.tolist(), strict=True):
                singles.setdefault(offset, np.zeros((len(distinct), n_labels)))
                singles[offset] += column[ids]
        for template in SET_TEMPLATES:
            if template.width == 1:
                member = (combo_surname if template.lexicon_field == "surnames" else combo_given).astype(bool)
                singles.setdefault(template.offset, np.zeros((len(distinct), n_labels)))
                singles[template.offset] += member[:, None] * flag_weights[flag_column[template.name]]

        # The n-grams' characters, as codepoints: window pairs, dictionary words, compound surnames.
        pairs = windows.groups["pairs"]
        assert pairs.pair_keys is not None
        window_codes = np.flatnonzero(windows.char_id)  # char id k is the k-th code of the alphabet
        window_pairs = np.stack((window_codes[pairs.pair_keys // windows.size - 1],
                                 window_codes[pairs.pair_keys % windows.size - 1]), axis=1)
        word_codes = np.flatnonzero(vocabulary.word_char_id)
        words = {}
        for table in vocabulary.words:
            shifts = [np.uint64(16 * (table.length - 1 - k)) for k in range(table.length)]
            chars = np.stack([word_codes[((table.keys >> shift) & np.uint64(0xFFFF)).astype(np.int64) - 1]
                              for shift in shifts], axis=1)
            words[table.length] = (chars, table.tags)
        compound = np.array([[ord(c) for c in w] for w in sorted(compound_surnames) if len(w) == 2],
                            dtype=np.int64).reshape(-1, 2)
        used = np.zeros(_BMP, dtype=bool)  # short texts are in the plane: characters beyond it are left out
        for chars in (window_pairs, compound, *(chars for chars, _ in words.values())):
            used[chars[chars < _BMP]] = True
        alphabet = np.flatnonzero(used)
        self.gram_id = np.zeros(_BMP, dtype=np.int64)
        self.gram_id[alphabet] = np.arange(1, len(alphabet) + 1)
        self.gram_size = size = len(alphabet) + 1
        if size ** max(_WORD_LENGTHS) >= 1 << 62:
            raise ValueError(f"{size} characters in n-grams: four-character keys overflow 64 bits")

        def keys_of(chars: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
            in_plane: npt.NDArray[np.bool_] = np.asarray((chars < _BMP).all(axis=1))
            key = np.zeros(len(chars), dtype=np.int64)
            for k in range(chars.shape[1]):
                key = key * size + self.gram_id[np.where(in_plane, chars[:, k], 0)]
            return key[in_plane], in_plane

        # Pairs: a row per distinct pair, one block per pair offset.
        window_keys, window_in = keys_of(window_pairs)
        pair_words, pair_tags = words[2]
        word_keys, word_in = keys_of(pair_words)
        compound_keys, _ = keys_of(compound)
        # What the flag-only table of the network (``_ShortFlagTables``) builds its pair rows from.
        self.pair_word_keys, self.pair_word_tags = word_keys, pair_tags[word_in]
        self.compound_keys = compound_keys
        pair_keys = np.unique(np.concatenate((window_keys, word_keys, compound_keys)))
        pair_offsets = pairs.offsets.tolist()
        pair_blocks = [np.zeros((len(pair_keys) + 1, n_labels)) for _ in pair_offsets]
        window_rows = np.searchsorted(pair_keys, window_keys)
        for block, column in zip(pair_blocks, pairs.columns, strict=True):
            block[window_rows] += column[:-1][window_in]
        word_rows = np.searchsorted(pair_keys, word_keys)
        for flag, offset in (("ws2", 0), ("we2", -1)):
            tag_columns = np.array([flag_column[f"{flag}{tag}"] for tag in WORD_TAGS])
            np.add.at(pair_blocks[pair_offsets.index(offset)], word_rows,
                      flag_weights[tag_columns[pair_tags[word_in]]])
        pair_blocks[pair_offsets.index(0)][np.searchsorted(pair_keys, compound_keys)] += flag_weights[
            flag_column["sn2"]]
        self.pairs = _GramIndex.build(pair_keys, np.arange(len(pair_keys)), len(pair_keys))
        self.pair_keys = pair_keys  # a pair's row in the pair blocks is its index here (missing: the length)

        # Longer words: a row per tag (the last one: no word), a block per position in the word.
        self.words: list[_GramIndex] = []
        word_blocks: list[npt.NDArray[np.float64]] = []
        word_offsets: list[list[int]] = []
        missing = len(WORD_TAGS)
        for length in _WORD_LENGTHS[1:]:
            chars, tags = words[length]
            keys, in_plane = keys_of(chars)
            self.words.append(_GramIndex.build(keys, tags[in_plane], missing))
            flags = [f"ws{length}", *["wm"] * (length - 2), f"we{length}"]
            word_offsets.append([-k for k in range(length)])  # the word started k characters before
            for flag in flags:
                block = np.zeros((missing + 1, n_labels))
                block[:missing] = flag_weights[[flag_column[f"{flag}{tag}"] for tag in WORD_TAGS]]
                word_blocks.append(block)

        single_offsets = sorted(singles)
        blocks = [singles[o] for o in single_offsets] + pair_blocks + word_blocks
        self.table = np.concatenate(blocks)
        self.block_start = np.cumsum([0] + [len(block) for block in blocks])[:-1]
        # Per block, where it reads in the concatenated position vectors of ``state_scores``: vector k
        # (0 singles, 1 pairs, 2 and 3 longer words) starts at k * length + _VECTOR_START[k], so the
        # column of a row is ``row + length * block_vector + block_shift``.
        self.block_vector = np.array([0] * len(single_offsets) + [1] * len(pair_offsets)
                                     + [2 + i for i, offsets in enumerate(word_offsets) for _ in offsets])
        self.block_shift = (np.array(self._VECTOR_START)[self.block_vector]
                            + np.array([*single_offsets, *pair_offsets, *itertools.chain(*word_offsets)]))
        # (blocks x labels, labels) of ones on each block's labels: a gathered row of every block times
        # this is their sum per label (one matrix product, cheaper than numpy's reduction on few rows).
        self.sum_blocks = np.tile(np.eye(n_labels), (len(blocks), 1))

    def lookups(self, codes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
        """Per position: its row of the singles, of the pairs and of the longer words' tags."""
        pad = self._GRAM_PAD
        ids = np.concatenate((_ZEROS[:pad], self.gram_id.take(codes), _ZEROS[:pad]))
        pairs = ids[:-1] * self.gram_size + ids[1:]  # the n-gram starting at each position, shifted by pad
        triples = pairs[:-1] * self.gram_size + ids[2:]
        quads = triples[:-1] * self.gram_size + ids[3:]
        return (self.single_row.take(codes), self.pairs.find(pairs), self.words[0].find(triples),
                self.words[1].find(quads))

    def state_scores(self, codes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                     found: tuple[npt.NDArray[np.int64], ...] | None = None) -> npt.NDArray[np.float64]:
        """The state scores of ``rows`` from every template in the table (``codes`` all in the plane)."""
        if found is None:
            found = self.lookups(codes)
        at = _block_rows(found, len(codes), rows, self.block_vector, self.block_shift, self.block_start)
        scores: npt.NDArray[np.float64] = self.table.take(at, axis=0).reshape(len(rows), -1) @ self.sum_blocks
        return scores


def _block_rows(found: tuple[npt.NDArray[np.int64], ...], n: int, rows: npt.NDArray[np.int64],
                block_vector: npt.NDArray[np.int64], block_shift: npt.NDArray[np.int64],
                block_start: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per row of ``rows`` and per block, the table row to gather: the block's look-up (vector
    ``block_vector`` of ``found``, each ``n`` long, at the row plus ``block_shift``) plus its start."""
    at: npt.NDArray[np.int64] = np.concatenate(found).take(rows[:, None] + block_vector * n + block_shift)
    return at + block_start


class _ShortFlagTables:
    """The set and dictionary-word flags of a short text times a matrix (the network's projection of
    its flag counts), as ``_ShortTextTables`` sums the CRF's weights: a block per template offset, but a
    row per flag combination (surname or not, given-name character or not, a word's tag) instead of
    per character or n-gram, so the table stays small however wide the matrix. It reads the look-ups of
    ``short`` (``lookups``): its pair rows are mapped to combinations, its longer words' rows are tags."""

    def __init__(self, short: _ShortTextTables, vocabulary: _Vocabulary, weights: npt.NDArray[np.float64],
                 flag_column: dict[str, int]) -> None:
        width = weights.shape[1]
        plane = np.arange(_BMP, dtype=np.int64)
        surname = vocabulary.char_sets["surnames"][plane].astype(np.int64)
        given = vocabulary.char_sets["given_chars"][plane].astype(np.int64)
        self.single_row = surname * 2 + given  # codepoint -> one of four rows
        blocks: list[npt.NDArray[np.float64]] = []
        vectors: list[int] = []
        offsets: list[int] = []
        combos = np.arange(4)
        for template in SET_TEMPLATES:
            if template.width != 1:
                continue
            member = (combos >> 1 if template.lexicon_field == "surnames" else combos & 1).astype(bool)
            blocks.append(member[:, None] * weights[flag_column[template.name]])
            vectors.append(0)
            offsets.append(template.offset)
        # Pairs: a row per (two-character word's tag or none, compound surname or not); ``short``'s pair
        # row (its index in ``short.pair_keys``, the length when missing) -> that row.
        tags = len(WORD_TAGS)
        tag = np.full(len(short.pair_keys) + 1, tags, dtype=np.int64)
        tag[np.searchsorted(short.pair_keys, short.pair_word_keys)] = short.pair_word_tags
        compound = np.zeros(len(short.pair_keys) + 1, dtype=np.int64)
        compound[np.searchsorted(short.pair_keys, short.compound_keys)] = 1
        self.pair_combo = tag * 2 + compound
        pair_tag, pair_compound = np.divmod(np.arange((tags + 1) * 2), 2)
        for flag, offset in (("ws2", 0), ("we2", -1)):  # a word starting here; one ending here
            table = np.vstack((weights[[flag_column[f"{flag}{t}"] for t in WORD_TAGS]], np.zeros((1, width))))
            block = table[pair_tag]
            if offset == 0:
                block = block + pair_compound[:, None] * weights[flag_column["sn2"]]
            blocks.append(block)
            vectors.append(1)
            offsets.append(offset)
        # Longer words: ``short``'s indexes (a row per tag, the last one none), a block per position.
        for i, length in enumerate(_WORD_LENGTHS[1:]):
            for k, flag in enumerate([f"ws{length}", *["wm"] * (length - 2), f"we{length}"]):
                block = np.zeros((tags + 1, width))
                block[:tags] = weights[[flag_column[f"{flag}{t}"] for t in WORD_TAGS]]
                blocks.append(block)
                vectors.append(2 + i)
                offsets.append(-k)
        self.table = np.concatenate(blocks)
        self.block_start = np.cumsum([0] + [len(block) for block in blocks])[:-1]
        self.block_vector = np.array(vectors)
        self.block_shift = np.array(_ShortTextTables._VECTOR_START)[self.block_vector] + np.array(offsets)
        self.n_blocks = len(blocks)

    def state_scores(self, codes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                     short_found: tuple[npt.NDArray[np.int64], ...]) -> npt.NDArray[np.float64]:
        """Per row, the sum of the matrix rows of the set and word flags firing there."""
        _singles, pairs, triples, quads = short_found
        found = (self.single_row.take(codes), self.pair_combo.take(pairs), triples, quads)
        at = _block_rows(found, len(codes), rows, self.block_vector, self.block_shift, self.block_start)
        summed: npt.NDArray[np.float64] = self.table.take(at, axis=0).reshape(
            len(rows), self.n_blocks, -1).sum(axis=1)
        return summed


_ZEROS = np.zeros(8, dtype=np.int64)


@dataclass(frozen=True)
class _WordTable:
    """Dictionary words of one length as sorted keys (16 bits per character: its index in the alphabet)."""

    length: int
    keys: npt.NDArray[np.uint64]
    tags: npt.NDArray[np.int64]  # index into WORD_TAGS


def _pack(dense: npt.NDArray[np.uint64], length: int) -> npt.NDArray[np.uint64]:
    """Rows of ``length`` alphabet indices as one 64-bit key each."""
    keys = np.zeros(dense.shape[0], dtype=np.uint64)
    for k in range(length):
        keys = (keys << np.uint64(16)) | dense[:, k]
    return keys


class _Vocabulary:
    """The lexicon as arrays: set templates' members, dictionary words by length and their alphabet."""

    def __init__(self, lex: Lexicon) -> None:
        self.char_sets: dict[str, npt.NDArray[np.bool_]] = {}
        self.pair_sets: dict[str, npt.NDArray[np.int64]] = {}
        for t in SET_TEMPLATES:
            members: frozenset[str] = getattr(lex, t.lexicon_field)
            if t.width == 1:
                table = np.zeros(_CODEPOINTS, dtype=bool)
                table[[ord(m) for m in members if len(m) == 1]] = True
                self.char_sets[t.lexicon_field] = table
            else:
                self.pair_sets[t.lexicon_field] = _pair_keys(members)
        # The same tags as ``word_tag``, for the whole dictionary at once in array operations (start-up
        # time: one pass of Python over jieba's ~500,000 entries cost a quarter of a second).
        words, lengths, freqs = _dictionary_arrays(lex.word_freq)
        # Frequency 0: a prefix of a word, not a word itself.
        chosen = np.flatnonzero((freqs != 0) & np.isin(lengths, _WORD_LENGTHS))
        starts = words.starts[chosen]
        lengths = lengths[chosen]
        tags = np.searchsorted(_FREQ_BUCKET_BOUNDS, freqs[chosen], side="right")
        kept = np.zeros(len(words.codes), dtype=bool)
        for length in _WORD_LENGTHS:  # every character of a chosen word
            kept[(starts[lengths == length][:, None] + np.arange(length)).reshape(-1)] = True
        alphabet = np.unique(words.codes[kept])
        if len(alphabet) >= 1 << 16:
            raise ValueError(f"the dictionary uses {len(alphabet)} characters; word keys hold 65,535")
        self.word_char_id = _index_table(alphabet).astype(np.uint16)
        # Words jieba tags as names: matched by key (a key of a given length is one word).
        name_words, name_lengths, _ = _dictionary_arrays(dict.fromkeys(lex.name_words, 1))
        self.words = []
        for length in _WORD_LENGTHS:
            of_length = np.flatnonzero(lengths == length)
            keys = self._keys(words.codes, starts[of_length], length)
            named = name_words.starts[name_lengths == length]
            known = (self.word_char_id[name_words.codes[named[:, None] + np.arange(length)]] != 0).all(axis=1)
            named_keys = self._keys(name_words.codes, named[known], length)  # none with a character unseen
            length_tags = tags[of_length]
            length_tags[np.isin(keys, named_keys)] = WORD_TAGS.index("n")
            order = np.argsort(keys, kind="stable")
            self.words.append(_WordTable(length, keys[order], length_tags[order]))

    def _keys(self, codes: npt.NDArray[np.int64], starts: npt.NDArray[np.int64],
              length: int) -> npt.NDArray[np.uint64]:
        """The packed keys of the words of ``length`` characters starting at ``starts`` in ``codes``."""
        dense = self.word_char_id[codes[starts[:, None] + np.arange(length)]].astype(np.uint64)
        return _pack(dense.reshape(len(starts), length), length)


@dataclass(frozen=True)
class _Words:
    """Words laid end to end, each followed by a line break: their codepoints and where each starts."""

    codes: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]


def _dictionary_arrays(
    freq: Mapping[str, int],
) -> tuple[_Words, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A dictionary's words (in its order), their lengths and their frequencies as arrays, built by C-level
    loops (a join, ``fromiter``) instead of a Python statement per word."""
    codes = _codes("\n".join(freq) + "\n") if freq else np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(codes == ord("\n"))
    if len(ends) != len(freq):
        raise ValueError("a dictionary word holds a line break")
    starts = np.concatenate((_ZEROS[:1], ends[:-1] + 1))[:len(ends)]
    freqs = np.fromiter(freq.values(), dtype=np.int64, count=len(freq))
    return _Words(codes, starts), ends - starts, freqs


# Character classes of the Basic Multilingual Plane as codepoints of their letters (built on first use).
_BMP_CLASSES: list[npt.NDArray[np.int64]] = []


def _class_codes(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``ord(_char_class(ch))`` for every codepoint: a table for the BMP, one call per other character."""
    if not _BMP_CLASSES:
        _BMP_CLASSES.append(np.array([ord(_char_class(chr(c))) for c in range(_BMP)], dtype=np.int64))
    table = _BMP_CLASSES[0]
    beyond = codes >= _BMP
    if not beyond.any():
        out: npt.NDArray[np.int64] = table[codes]
        return out
    out = table[np.where(beyond, 0, codes)]
    for i in np.flatnonzero(beyond).tolist():
        out[i] = ord(_char_class(chr(int(codes[i]))))
    return out


IntArray = npt.NDArray[np.int64]


def _char_inputs(codes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                 length: npt.NDArray[np.int64]) -> tuple[IntArray, IntArray, IntArray]:
    """The network's per-character inputs of ``rows``: codepoints, the next one in the same piece (0
    after a piece's last character) and the class column."""
    row_codes = codes[rows]
    next_codes = codes[rows + 1]
    next_codes[np.cumsum(length) - 1] = 0
    return row_codes, next_codes, class_index(_class_codes(row_codes))


def padded(texts: list[str]) -> tuple[str, IntArray, IntArray, IntArray]:
    """Pieces in one buffer, each padded as ``features`` pads it (one numpy pass for a whole text):
    the buffer, each piece's first row and length, and the rows of all their characters."""
    buffer = "".join(PAD_BEFORE + text + PAD_AFTER for text in texts)
    lengths = [len(text) for text in texts]
    firsts = list(itertools.accumulate((n + len(PAD_BEFORE) + len(PAD_AFTER) for n in lengths[:-1]),
                                       initial=len(PAD_BEFORE)))
    ranges = [np.arange(f, f + n) for f, n in zip(firsts, lengths, strict=True)]
    rows = ranges[0] if len(ranges) == 1 else np.concatenate(ranges)  # one piece: most prompts
    return buffer, np.array(firsts, dtype=np.int64), np.array(lengths, dtype=np.int64), rows


def crfsuite_names(crf: Any, simplified: str, lex: Lexicon) -> list[TaggedName]:
    """The names python-crfsuite finds with the model (``crf``: an open ``pycrfsuite.Tagger``), piece by
    piece with the mean marginal per name: what ``NameTagger.tag`` must equal (its tests, and
    ``tools/bench_name_tagger.py``; python-crfsuite is in the test and train extras only)."""
    joined, positions = unwrap(simplified)
    found = []
    for lo, hi in pieces(joined):
        piece = joined[lo:hi]
        if not _HAN_RE.search(piece):
            continue
        labels = crf.tag(features(piece, lex))
        for start, end in spans_from_labels(labels):
            while start < end and piece[start].isspace():
                start += 1
            while end > start and piece[end - 1].isspace():
                end -= 1
            if start < end:
                probability = sum(crf.marginal(labels[i], i) for i in range(start, end)) / (end - start)
                found.append(TaggedName(positions[lo + start], positions[lo + end - 1] + 1, probability))
    return found


class NameTagger:
    """The shipped CRF (or, given ``net_path``, a network of ``name_net.py``), run by numpy: loaded once,
    thread-safe."""

    def __init__(self, lex: Lexicon, weights_path: Path = WEIGHTS_PATH, net_path: Path | None = None) -> None:
        if not weights_path.is_file():
            raise FileNotFoundError(
                f"name tagger weights missing: {weights_path} (see tools/export_name_model.py)")
        self.lex = lex
        self.weights_path = weights_path
        self.weights = TaggerWeights.load(weights_path)
        labels = self.weights.labels
        if sorted(labels) != sorted((BEGIN, INSIDE, OUTSIDE)) or self.weights.transitions.shape != (3, 3):
            raise ValueError(f"{weights_path}: labels {labels}, expected B/I/O (re-export the model)")
        self._windows = _WindowTables(self.weights)
        _class_codes(np.zeros(1, dtype=np.int64))  # builds the class table now, not on the first prompt
        self._vocabulary = _Vocabulary(lex)
        self._outside, self._begin, self._inside = (labels.index(x) for x in (OUTSIDE, BEGIN, INSIDE))
        if self.weights.flag_names != tuple(flag_attribute_names()):
            raise ValueError(f"{weights_path}: flags differ from the feature templates (re-export the model)")
        column = self._flag_column = {name: i for i, name in enumerate(self.weights.flag_names)}
        self._word_start_columns = {
            n: np.array([column[f"ws{n}{tag}"] for tag in WORD_TAGS]) for n in _WORD_LENGTHS}
        self._word_end_columns = {
            n: np.array([column[f"we{n}{tag}"] for tag in WORD_TAGS]) for n in _WORD_LENGTHS}
        self._word_middle_columns = np.array([column[f"wm{tag}"] for tag in WORD_TAGS])
        self._short = _ShortTextTables(self._windows, self._vocabulary, self.weights.flag_weights, column,
                                       lex.compound_surnames)
        self._identity = np.eye(len(column))
        # With a network (``name_net.py``), its state scores and transitions replace the CRF's.
        self.net = NameNet.load(net_path) if net_path is not None else None
        if self.net is not None and self.net.labels != labels:
            raise ValueError(f"{net_path}: labels {self.net.labels}, the CRF's are {labels}")
        self._transitions = self.net.transitions if self.net is not None else self.weights.transitions
        # A short text's network inputs: the CRF's scores from ``_short``, the projection of its flag
        # counts from a flag table of the same look-ups (role and title flags added by position).
        self._short_net: _ShortFlagTables | None = None
        self._net_flag_weights: npt.NDArray[np.float64] | None = None
        if self.net is not None and self.net.stacks_on_crf:
            projection = self.net.flag_projection.astype(np.float64)
            self._net_flag_weights = np.hstack((self.weights.flag_weights, projection))
            self._short_net = _ShortFlagTables(self._short, self._vocabulary, projection, column)

    @staticmethod
    def metadata(path: Path = METADATA_PATH) -> dict[str, Any]:
        with path.open(encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return data

    def emissions(self, buffer: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """State scores of ``rows`` of ``buffer`` (pieces each padded with ``PAD_BEFORE``/``PAD_AFTER``).

        The same attributes as ``features`` on each piece: the padding gives windows what they see
        beyond a piece's ends, and no dictionary, role or title word contains a padding character.
        """
        codes = _codes(buffer)
        if len(codes) <= _SHORT_BUFFER and int(codes.max()) < _BMP:
            return self._short_emissions(buffer, rows, codes)
        scores = self.flag_scores(buffer, rows, self.weights.flag_weights, codes)
        scores[rows] += self._windows.scores(codes, rows)
        return scores

    def _short_emissions(self, buffer: str, rows: npt.NDArray[np.int64],
                         codes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """``emissions`` of a short buffer in the Basic Multilingual Plane, with as few numpy calls as
        the templates allow: every template but the context words from one stacked table
        (``_ShortTextTables``), the role and title flags (rare) added where they fire."""
        scores = np.zeros((len(codes), len(self.weights.labels)))
        scores[rows] = self._short.state_scores(codes, rows)
        fired_rows, fired_columns = self._context_flags(buffer)
        if fired_rows:
            np.add.at(scores, np.array(fired_rows), self.weights.flag_weights[np.array(fired_columns)])
        return scores

    def _context_flags(self, buffer: str) -> tuple[list[int], list[int]]:
        """Rows and flag columns of the role and title flags firing in ``buffer`` (as ``features``)."""
        lex, column = self.lex, self._flag_column
        rows: list[int] = []
        columns: list[int] = []
        n = len(buffer)
        for end in _ends_of(lex.roles, buffer):
            for name, offset in ROLE_TEMPLATES.items():
                if end + offset < n:
                    rows.append(end + offset)
                    columns.append(column[name])
        for start in _starts_of(lex.titles, buffer):
            for name, offset in TITLE_TEMPLATES.items():
                if start + offset >= 0:
                    rows.append(start + offset)
                    columns.append(column[name])
        return rows, columns

    def flag_scores(self, buffer: str, rows: npt.NDArray[np.int64], table: npt.NDArray[np.float64],
                    codes: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.float64]:
        """Per character of ``buffer``, the sum of ``table``'s rows of the flag attributes firing there.

        Flags (``flag_attribute_names()`` order) fire on ``rows`` (and the characters a role, title or
        word reaches from them) as ``features`` lists them.  With the CRF's flag weights as ``table``
        these are its flag scores; with the identity, the counts the network reads (``flag_counts``).
        """
        vocabulary, column = self._vocabulary, self._flag_column
        if codes is None:
            codes = _codes(buffer)
        counts = np.zeros((len(codes), table.shape[1]))
        # Set templates fire on rows only: added as 0/1 times the weight (0.0 or the weight itself,
        # exactly), in template order, the same sums as adding each weight where its set matches.
        on_rows = np.zeros((len(rows), table.shape[1]))
        for set_template in SET_TEMPLATES:
            where = rows + set_template.offset
            if set_template.width == 1:
                hit = vocabulary.char_sets[set_template.lexicon_field][codes[where]]
            else:
                keys = vocabulary.pair_sets[set_template.lexicon_field]
                hit = _lookup(keys, (codes[where] << _CHAR_BITS) | codes[where + 1]) < len(keys)
            on_rows += hit[:, None] * table[column[set_template.name]]
        counts[rows] = on_rows
        # Context words (none in most prompts: no numpy call then).
        fired_rows, fired_columns = self._context_flags(buffer)
        if fired_rows:
            np.add.at(counts, np.array(fired_rows), table[np.array(fired_columns)])
        dense = vocabulary.word_char_id[codes].astype(np.uint64)
        dense = np.concatenate((dense, np.zeros(max(_WORD_LENGTHS), dtype=np.uint64)))
        # The key of the n characters starting at every position, one length from the last (the same
        # integers as ``_pack``): a shift and an or per length, not a gather per character.
        rolling, rolling_length = dense, 1
        for words in vocabulary.words:
            n = words.length
            while rolling_length < n:
                rolling = (rolling[:-1] << np.uint64(16)) | dense[rolling_length:]
                rolling_length += 1
            found = _lookup(words.keys, rolling[rows])
            hit = found < len(words.keys)
            if not hit.any():
                continue
            starts, tags = rows[hit], words.tags[found[hit]]
            counts[starts] += table[self._word_start_columns[n][tags]]
            counts[starts + n - 1] += table[self._word_end_columns[n][tags]]
            for k in range(1, n - 1):
                counts[starts + k] += table[self._word_middle_columns[tags]]
        return counts

    def flag_counts(self, buffer: str, rows: npt.NDArray[np.int64],
                    codes: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.float64]:
        """How often each flag attribute fires on each character of ``buffer`` (what the network reads)."""
        return self.flag_scores(buffer, rows, self._identity, codes)

    def net_inputs(self, buffer: str, rows: npt.NDArray[np.int64], length: npt.NDArray[np.int64],
                   with_crf_scores: bool) -> NetInputs:
        """What the network reads for ``rows`` of a ``padded`` buffer of pieces of ``length``."""
        codes = _codes(buffer)
        flags = self.flag_counts(buffer, rows, codes)[rows]
        crf_scores = None
        if with_crf_scores:  # the CRF's flag scores from the counts: flags are looked up once
            crf_scores = self._windows.scores(codes, rows) + flags @ self.weights.flag_weights
        return NetInputs(*_char_inputs(codes, rows, length), flags=flags, crf_scores=crf_scores,
                         lengths=length)

    def state_scores(self, buffer: str, rows: npt.NDArray[np.int64],
                     length: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The model's state scores of ``rows`` (the network's when there is one, else the CRF's)."""
        if self.net is None:
            return self.emissions(buffer, rows)
        scores = np.zeros((len(buffer), len(self.weights.labels)))
        if self._short_net is None:
            scores[rows] = self.net.emissions(self.net_inputs(buffer, rows, length, self.net.stacks_on_crf))
            return scores
        codes = _codes(buffer)
        # Pieces are independent (padding between them; the network's gaps): a long text goes in groups
        # of pieces whose buffer is short, each read from the short-text tables (less memory too).
        if len(codes) <= _SHORT_BUFFER:  # nearly every prompt
            scores[rows] = self._group_emissions(buffer, codes, rows, length)
            return scores
        bounds = np.concatenate((_ZEROS[:1], np.cumsum(length)))  # piece k: rows[bounds[k]:bounds[k + 1]]
        for lo, hi, first, last in self._short_groups(rows, length):
            group_rows = rows[bounds[first]:bounds[last]] - lo
            scores[group_rows + lo] = self._group_emissions(buffer[lo:hi], codes[lo:hi], group_rows,
                                                            length[first:last])
        return scores

    @staticmethod
    def _short_groups(rows: npt.NDArray[np.int64],
                      length: npt.NDArray[np.int64]) -> list[tuple[int, int, int, int]]:
        """Consecutive pieces as (buffer start, buffer end, first piece, piece after the last) groups
        whose buffer stays within ``_SHORT_BUFFER`` characters."""
        sizes = length.tolist()
        firsts = rows[np.concatenate((_ZEROS[:1], np.cumsum(length)[:-1]))].tolist()
        pad_before, pad_after = len(PAD_BEFORE), len(PAD_AFTER)
        groups = []
        start = 0  # the group's first piece
        for k in range(1, len(firsts) + 1):
            lo = firsts[start] - pad_before
            if k == len(firsts) or firsts[k] + sizes[k] + pad_after - lo > _SHORT_BUFFER:
                groups.append((lo, firsts[k - 1] + sizes[k - 1] + pad_after, start, k))
                start = k
        return groups

    def _group_emissions(self, buffer: str, codes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                         length: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The network's state scores of ``rows`` of a short buffer of whole pieces."""
        assert self.net is not None
        if int(codes.max()) < _BMP:
            inputs = self._short_net_inputs(buffer, rows, length, codes)
        else:
            inputs = self.net_inputs(buffer, rows, length, self.net.stacks_on_crf)
        return self.net.emissions(inputs)

    def _short_net_inputs(self, buffer: str, rows: npt.NDArray[np.int64], length: npt.NDArray[np.int64],
                          codes: npt.NDArray[np.int64]) -> NetInputs:
        """``net_inputs`` of a short buffer in the plane, the flags already projected: the CRF's state
        scores from the short-text table, the network's flag input from the flag table (same n-grams)."""
        assert self._short_net is not None and self._net_flag_weights is not None
        found = self._short.lookups(codes)
        crf = self._short.state_scores(codes, rows, found)
        projected = self._short_net.state_scores(codes, rows, found)
        fired_rows, fired_columns = self._context_flags(buffer)
        if fired_rows:  # role and title flags (rare), as in ``flag_scores``: by buffer position
            # Added where they fire among ``rows`` (ascending): a flag on padding reaches no row.
            fired = np.array(fired_rows)
            at = np.minimum(np.searchsorted(rows, fired), len(rows) - 1)
            on_row = rows[at] == fired
            added = self._net_flag_weights[np.array(fired_columns)[on_row]]
            np.add.at(crf, at[on_row], added[:, :crf.shape[1]])
            np.add.at(projected, at[on_row], added[:, crf.shape[1]:])
        return NetInputs(*_char_inputs(codes, rows, length), flags=None, crf_scores=crf, lengths=length,
                         flag_input=projected.astype(np.float32))

    def tag(self, simplified: str) -> list[TaggedName]:
        """Names in ``simplified`` (folded, then ``t2s``) with the model's mean marginal probability."""
        joined, positions = unwrap(simplified)
        spans = [(lo, hi) for lo, hi in pieces(joined) if _HAN_RE.search(joined, lo, hi)]
        if not spans:
            return []  # no Han characters: nothing this model was trained on
        buffer, first, length, rows = padded([joined[lo:hi] for lo, hi in spans])
        firsts = first.tolist()
        scores = self.state_scores(buffer, rows, length)
        if len(rows) <= _SHORT_TEXT:
            return self._decode_in_python(joined, spans, positions, scores, firsts)
        transitions = self._transitions
        labels = np.full(len(buffer), self._outside, dtype=np.int8)
        viterbi(scores, transitions, first, length, labels)
        names = self._spans(buffer, labels)
        if not names:
            return []
        starts = np.array([start for start, _ in names], dtype=np.int64)
        ends = np.array([end for _, end in names], dtype=np.int64)
        piece_of = np.searchsorted(first, starts, side="right") - 1
        with_names = np.unique(piece_of)
        name_rows = np.concatenate([np.arange(start, end) for start, end in names])
        probabilities = marginals(scores, transitions, first[with_names], length[with_names], name_rows)
        chosen = probabilities[np.arange(len(name_rows)), labels[name_rows]]
        offsets = np.concatenate(([0], np.cumsum(ends - starts)[:-1]))
        means = (np.add.reduceat(chosen, offsets) / (ends - starts)).tolist()
        shift = (np.array([lo for lo, _ in spans]) - first)[piece_of]  # buffer row -> offset in ``joined``
        found = zip(starts.tolist(), ends.tolist(), shift.tolist(), means, strict=True)
        return [TaggedName(positions[start + at], positions[end - 1 + at] + 1, mean)
                for start, end, at, mean in found]

    def _decode_in_python(self, joined: str, spans: list[tuple[int, int]], positions: list[int],
                          buffer_scores: npt.NDArray[np.float64], firsts: list[int]) -> list[TaggedName]:
        """Names of each piece from its state scores (rows ``firsts[k]`` on of ``buffer_scores`` for
        piece k), decoded in plain Python (short texts)."""
        transitions = self._transitions.tolist()
        found = []
        weights = None  # the marginals' exponentiated scores, in numpy once a piece has a name
        for (lo, hi), first in zip(spans, firsts, strict=True):
            scores = buffer_scores[first:first + hi - lo].tolist()
            labels = viterbi_sequence(scores, transitions)
            names = self._spans(joined[lo:hi], labels)
            if not names:
                continue
            if weights is None:
                weights = np.exp(buffer_scores - buffer_scores.max(axis=1, keepdims=True))
            # The marginals of the names' positions only (the same numbers): the passes run from
            # the sequence's ends to the last and first name, only the names' positions are normalised.
            wanted = [i for start, end in names for i in range(start, end)]
            probabilities = iter(marginals_sequence(scores, transitions, names[0][0], names[-1][1], wanted,
                                                    weights[first:first + hi - lo].tolist()))
            for start, end in names:
                mean = sum(next(probabilities)[labels[i]] for i in range(start, end)) / (end - start)
                found.append(TaggedName(positions[lo + start], positions[lo + end - 1] + 1, mean))
        return found

    def _spans(self, buffer: str, labels: npt.NDArray[np.int8] | list[int]) -> list[tuple[int, int]]:
        """B/I runs of ``labels`` (one per character of ``buffer``) without leading and trailing spaces.

        In the padded buffer of all pieces, padding rows are "outside": no run crosses into the next piece.
        Only the rows not "outside" are visited (found by numpy in an array, by a comprehension in a list).
        """
        outside = self._outside
        if isinstance(labels, list):
            tagged = [(row, label) for row, label in enumerate(labels) if label != outside]
        else:
            rows = np.flatnonzero(labels != outside)
            tagged = list(zip(rows.tolist(), labels[rows].tolist(), strict=True))
        runs = []
        start = previous = -2
        for row, label in tagged:
            if start >= 0 and (row != previous + 1 or label != self._inside):
                runs.append((start, previous + 1))
                start = -2
            if label == self._begin:
                start = row
            previous = row
        if start >= 0:
            runs.append((start, previous + 1))
        names = []
        for start, end in runs:
            while start < end and buffer[start].isspace():
                start += 1
            while end > start and buffer[end - 1].isspace():
                end -= 1
            if start < end:
                names.append((start, end))
        return names
