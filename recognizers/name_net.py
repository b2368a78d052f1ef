"""A convolutional character tagger for person names that sees ±15 characters, run with numpy.

The CRF's window (``name_tagger.py``) sees two characters either side; who is talking to whom (會見了 X,
X 說, @X) lies further away.  This network reads, per character, a character embedding, a hashed
embedding of the character pair starting there, the character's class, the CRF's own flag counts
(surnames, given-name characters, dictionary words, roles and titles: ``NameTagger.flag_counts``) and
optionally the CRF's three state scores (then it learns corrections to them); a projection and a few
dilated convolutions (residual, ReLU) give one score per label, decoded with a learned transition
matrix by the same exact Viterbi and forward-backward as the CRF (``crf_inference.py``).

Trained in torch by ``tools/train_names_net.py``, which writes the weights to ``data/person_net.npz``;
at run time everything is a gather or a matrix product over the whole text, pieces kept apart by
zero gaps as wide as the largest dilation (what the training's zero padding gives).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NET_PATH = Path(__file__).parent / "data" / "person_net.npz"
# Character classes (``name_tagger._char_class`` letters) in the order of the class one-hot input.
CLASS_LETTERS = "HDL.SP"
_KERNEL = 3
# A pair's bucket: (first codepoint * multiplier + second codepoint) mod buckets; a prime multiplier
# spreads the pairs of one first character over the table.
_PAIR_MULTIPLIER = 1_000_003


def one_blas_thread() -> None:
    """Run this process's BLAS (numpy's matrix products) on one thread from now on, forked children too.

    A worker inspects one prompt at a time on one core; BLAS threads spinning for the network's small
    matrix products on a shared machine made a 1 KB prompt cost 39.7 ms instead of 4.6 ms.
    """
    from threadpoolctl import threadpool_limits  # only when a network is loaded: 20 ms of start-up

    threadpool_limits(limits=1, user_api="blas")


def pair_buckets(codes: IntArray, next_codes: IntArray, buckets: int) -> IntArray:
    """The hashed embedding row of each character pair (``next_codes`` 0 past a piece's end)."""
    result: IntArray = (codes * _PAIR_MULTIPLIER + next_codes) % buckets
    return result


def _class_columns() -> IntArray:
    table = np.zeros(128, dtype=np.int64)
    for i, letter in enumerate(CLASS_LETTERS):
        table[ord(letter)] = i
    return table


_CLASS_COLUMNS = _class_columns()
BMP = 0x10000  # codepoints of the Basic Multilingual Plane: the tables of short texts cover them


def class_index(class_codes: IntArray) -> IntArray:
    """The one-hot column of each character's class, from ``ord`` of its class letter."""
    result: IntArray = _CLASS_COLUMNS[class_codes]
    return result


@dataclass(frozen=True)
class NetInputs:
    """What the network reads for the characters of some pieces, concatenated piece after piece."""

    codes: IntArray  # (n,) codepoints
    next_codes: IntArray  # (n,) the next character's codepoint in the same piece, else 0
    classes: IntArray  # (n,) class one-hot column (``class_index``)
    flags: FloatArray | None  # (n, flags) flag counts, ``name_tagger.flag_attribute_names()`` order
    crf_scores: FloatArray | None  # (n, 3) the CRF's state scores, when the network stacks on them
    lengths: IntArray  # (pieces,) characters per piece
    # (n, hidden) the flag counts already times ``NameNet.flag_projection`` (given instead of ``flags``)
    flag_input: npt.NDArray[np.float32] | None = None


class NameNet:
    """The network's weights (``.npz``) and its forward pass in numpy: state scores per character."""

    def __init__(self, arrays: dict[str, npt.NDArray[np.generic]], path: Path) -> None:
        self.path = path
        self.labels = tuple(str(x) for x in arrays["labels"])
        self.transitions: FloatArray = arrays["transitions"].astype(np.float64)
        self.char_codes = arrays["char_codes"].astype(np.int64)
        self.char_embedding = arrays["char_embedding"].astype(np.float32)  # row 0: unknown character
        self.pair_embedding = arrays["pair_embedding"].astype(np.float32)
        self.input_weight = arrays["input_weight"].astype(np.float32)
        self.input_bias = arrays["input_bias"].astype(np.float32)
        self.dilations = [int(d) for d in arrays["dilations"]]
        self.conv_weights = [arrays[f"conv_weight_{i}"].astype(np.float32)  # (kernel * in, out)
                             for i in range(len(self.dilations))]
        self.conv_biases = [arrays[f"conv_bias_{i}"].astype(np.float32) for i in range(len(self.dilations))]
        self.output_weight = arrays["output_weight"].astype(np.float32)
        self.output_bias = arrays["output_bias"].astype(np.float32)
        self.stacks_on_crf = bool(arrays["stacks_on_crf"].reshape(()))  # saved 1-d: ascontiguousarray
        self.n_flags = int(arrays["n_flags"].reshape(()))
        expected = (self.char_embedding.shape[1] + self.pair_embedding.shape[1] + len(CLASS_LETTERS)
                    + self.n_flags + (3 if self.stacks_on_crf else 0))
        if self.input_weight.shape[0] != expected or self.transitions.shape != (3, 3):
            raise ValueError(f"{path}: inconsistent shapes (re-run tools/train_names_net.py)")
        self._gap = max(self.dilations)
        in_plane = self.char_codes[self.char_codes < BMP]
        self._plane_rows = np.zeros(BMP, dtype=np.int64)  # codepoint -> embedding row (0: unknown)
        self._plane_rows[in_plane] = np.searchsorted(self.char_codes, in_plane) + 1
        # The input projection folded into per-row tables (a character's, its pair's and its class's
        # rows already multiplied by their part of ``input_weight``; the bias in the class rows, as each
        # character has one class): gathers and two narrow products instead of one product of a wide
        # concatenation per character.
        parts = np.cumsum([0, self.char_embedding.shape[1], self.pair_embedding.shape[1],
                           len(CLASS_LETTERS), self.n_flags])
        weight = self.input_weight
        self._char_input = self.char_embedding @ weight[parts[0]:parts[1]]
        self._pair_input = self.pair_embedding @ weight[parts[1]:parts[2]]
        self._class_input = weight[parts[2]:parts[3]] + self.input_bias
        self.flag_projection = weight[parts[3]:parts[4]]  # flag counts -> the first layer's input
        self._crf_input = weight[parts[4]:]
        # Each convolution as one product giving its three taps side by side: (in, kernel * out).
        self._taps = [w.reshape(_KERNEL, w.shape[1], -1).transpose(1, 0, 2).reshape(w.shape[1], -1)
                      for w in self.conv_weights]

    @classmethod
    def load(cls, path: Path = NET_PATH) -> NameNet:
        if not path.is_file():
            raise FileNotFoundError(f"name network weights missing: {path} (see tools/train_names_net.py)")
        with np.load(path, allow_pickle=False) as data:
            net = cls({name: data[name] for name in data.files}, path)
        one_blas_thread()
        return net

    def char_rows(self, codes: IntArray) -> IntArray:
        """Embedding row of each codepoint: 1 + its index in the alphabet, 0 when it is not there."""
        if len(codes) and int(codes.max()) < BMP:  # one gather from the plane's table
            plane: IntArray = self._plane_rows.take(codes)
            return plane
        at = np.minimum(np.searchsorted(self.char_codes, codes), len(self.char_codes) - 1)
        rows: IntArray = np.where(self.char_codes[at] == codes, at + 1, 0)
        return rows

    def _flag_input(self, inputs: NetInputs) -> npt.NDArray[np.float32]:
        if inputs.flag_input is not None:
            return inputs.flag_input
        if inputs.flags is None:
            raise ValueError("network inputs without flag counts or their projection")
        projected: npt.NDArray[np.float32] = inputs.flags.astype(np.float32) @ self.flag_projection
        return projected

    def emissions(self, inputs: NetInputs) -> FloatArray:
        """State scores (n, 3) in ``self.labels`` order for the characters of ``inputs``."""
        n = len(inputs.codes)
        x = (self._char_input[self.char_rows(inputs.codes)]
             + self._pair_input[pair_buckets(inputs.codes, inputs.next_codes, len(self._pair_input))]
             + self._class_input[inputs.classes]
             + self._flag_input(inputs))
        if self.stacks_on_crf:
            assert inputs.crf_scores is not None
            x += inputs.crf_scores.astype(np.float32) @ self._crf_input
        # Pieces laid out with zero gaps of the largest dilation between and around them.
        gap = self._gap
        where: slice | IntArray
        if len(inputs.lengths) == 1:  # one piece (most prompts): the gaps are the ends, no index arrays
            where, size, in_piece = slice(gap, gap + n), n + 2 * gap, None
        else:
            piece = np.repeat(np.arange(len(inputs.lengths)), inputs.lengths)
            where = np.arange(n) + gap * (piece + 1)
            size = n + gap * (len(inputs.lengths) + 1)
            in_piece = np.zeros((size, 1), dtype=np.float32)
            in_piece[where] = 1
        hidden = np.zeros((size, x.shape[1]), dtype=np.float32)
        hidden[where] = np.maximum(x, 0)
        for taps_weight, bias, dilation in zip(self._taps, self.conv_biases, self.dilations, strict=True):
            taps = (hidden @ taps_weight).reshape(size, _KERNEL, -1)
            out = taps[:, 1] + bias
            out[dilation:] += taps[:-dilation, 0]
            out[:-dilation] += taps[dilation:, 2]
            np.maximum(out, 0, out=out)
            if in_piece is None:  # the gaps stay zero
                out[:gap] = 0
                out[gap + n:] = 0
            else:
                out *= in_piece
            hidden += out
        scores: FloatArray = (hidden[where] @ self.output_weight + self.output_bias).astype(np.float64)
        if self.stacks_on_crf:
            assert inputs.crf_scores is not None
            scores += inputs.crf_scores
        return scores
