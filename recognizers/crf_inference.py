"""Linear-chain CRF inference without crfsuite: its model file, its Viterbi labels and its marginals.

``read_crfsuite_model`` reads crfsuite's model file (``lCRF``/``FOMC``, version 100) without the
library: labels and attributes from its two CQDB string tables, weights from its feature chunk, in
full double precision (``pycrfsuite.Tagger.info()`` prints six decimals).  ``viterbi`` and
``marginals`` decode one sequence of three labels from state scores computed elsewhere (numpy).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_HEADER = struct.Struct("<4sI4sIIIIIIIII")
_CQDB_HEADER = struct.Struct("<4sIIIII")
_FEATURE = np.dtype([("type", "<u4"), ("src", "<u4"), ("dst", "<u4"), ("weight", "<f8")])
_STATE_FEATURE, _TRANSITION_FEATURE = 0, 1


@dataclass(frozen=True)
class CrfsuiteModel:
    """What a crfsuite model holds: labels, attributes, and the weights of both feature kinds."""

    labels: tuple[str, ...]
    attributes: tuple[str, ...]
    state_attribute: IntArray  # per state feature: the attribute's index
    state_label: IntArray  # per state feature: the label's index
    state_weight: FloatArray
    transitions: FloatArray  # (labels, labels): from, to


def _cqdb_strings(data: bytes, offset: int, path: Path) -> list[str]:
    magic, _size, _flag, _order, count, backward = _CQDB_HEADER.unpack_from(data, offset)
    if magic != b"CQDB":
        raise ValueError(f"{path}: no string table at byte {offset} (not a crfsuite model?)")
    strings = []
    for index in range(count):
        (record,) = struct.unpack_from("<I", data, offset + backward + 4 * index)
        record_id, size = struct.unpack_from("<II", data, offset + record)
        if record_id != index:
            raise ValueError(f"{path}: string table at byte {offset} is out of order at entry {index}")
        start = offset + record + 8
        strings.append(data[start:start + size - 1].decode("utf-8"))  # size counts the final NUL
    return strings


def read_crfsuite_model(path: Path) -> CrfsuiteModel:
    """Read a model written by crfsuite's 1st-order CRF trainer (python-crfsuite's ``Trainer``)."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise ValueError(f"{path}: too short for a crfsuite model")
    header = _HEADER.unpack_from(data, 0)
    magic, kind, n_labels, n_attributes = header[0], header[2], header[5], header[6]
    off_features, off_labels, off_attributes = header[7], header[8], header[9]
    if magic != b"lCRF" or kind != b"FOMC":
        raise ValueError(f"{path}: not a crfsuite first-order CRF model ({magic!r}, {kind!r})")
    labels = _cqdb_strings(data, off_labels, path)
    attributes = _cqdb_strings(data, off_attributes, path)
    if len(labels) != n_labels or len(attributes) != n_attributes:
        raise ValueError(f"{path}: header and string tables disagree")
    chunk, _chunk_size, count = struct.unpack_from("<4sII", data, off_features)
    if chunk != b"FEAT":
        raise ValueError(f"{path}: no feature chunk at byte {off_features}")
    feats = np.frombuffer(data, dtype=_FEATURE, count=count, offset=off_features + 12)
    state = feats[feats["type"] == _STATE_FEATURE]
    moves = feats[feats["type"] == _TRANSITION_FEATURE]
    transitions = np.zeros((n_labels, n_labels))
    transitions[moves["src"].astype(np.int64), moves["dst"].astype(np.int64)] = moves["weight"]
    return CrfsuiteModel(
        labels=tuple(labels), attributes=tuple(attributes),
        state_attribute=state["src"].astype(np.int64), state_label=state["dst"].astype(np.int64),
        state_weight=state["weight"].astype(np.float64), transitions=transitions,
    )


def viterbi(emissions: list[list[float]], transitions: list[list[float]]) -> list[int]:
    """The best label sequence of one sequence (three labels), ties to the lower label as in crfsuite.

    Plain Python over lists: with three labels one step is nine additions, cheaper than any numpy
    call; the per-text work (emissions) is numpy's.
    """
    (t00, t01, t02), (t10, t11, t12), (t20, t21, t22) = transitions
    s0, s1, s2 = emissions[0]
    back: list[tuple[int, int, int]] = []
    append = back.append
    for e0, e1, e2 in emissions[1:]:
        # Into each label: the best previous label, the first of equals (crfsuite compares with <).
        a, b, c = s0 + t00, s1 + t10, s2 + t20
        if a >= b:
            best0, from0 = (a, 0) if a >= c else (c, 2)
        else:
            best0, from0 = (b, 1) if b >= c else (c, 2)
        a, b, c = s0 + t01, s1 + t11, s2 + t21
        if a >= b:
            best1, from1 = (a, 0) if a >= c else (c, 2)
        else:
            best1, from1 = (b, 1) if b >= c else (c, 2)
        a, b, c = s0 + t02, s1 + t12, s2 + t22
        if a >= b:
            best2, from2 = (a, 0) if a >= c else (c, 2)
        else:
            best2, from2 = (b, 1) if b >= c else (c, 2)
        s0, s1, s2 = best0 + e0, best1 + e1, best2 + e2
        append((from0, from1, from2))
    label = (0 if s0 >= s2 else 2) if s0 >= s1 else (1 if s1 >= s2 else 2)
    path = [label]
    for pointers in reversed(back):
        label = pointers[label]
        path.append(label)
    path.reverse()
    return path


def marginals(
    emissions: list[list[float]], transitions: list[list[float]]
) -> list[tuple[float, float, float]]:
    """Per position of one sequence (three labels), each label's probability: scaled forward-backward."""
    (t00, t01, t02), (t10, t11, t12), (t20, t21, t22) = (
        [math.exp(w) for w in row] for row in transitions)
    # Emissions shifted by their maximum per position: the scale cancels in the normalised marginals.
    states = []
    for e0, e1, e2 in emissions:
        top = max(e0, e1, e2)
        states.append((math.exp(e0 - top), math.exp(e1 - top), math.exp(e2 - top)))
    alphas = []
    a0, a1, a2 = states[0]
    total = a0 + a1 + a2
    a0, a1, a2 = a0 / total, a1 / total, a2 / total
    alphas.append((a0, a1, a2))
    for x0, x1, x2 in states[1:]:
        a0, a1, a2 = ((a0 * t00 + a1 * t10 + a2 * t20) * x0, (a0 * t01 + a1 * t11 + a2 * t21) * x1,
                      (a0 * t02 + a1 * t12 + a2 * t22) * x2)
        total = a0 + a1 + a2
        a0, a1, a2 = a0 / total, a1 / total, a2 / total
        alphas.append((a0, a1, a2))
    out = [(0.0, 0.0, 0.0)] * len(states)
    b0 = b1 = b2 = 1.0
    for t in range(len(states) - 1, -1, -1):
        a0, a1, a2 = alphas[t]
        p0, p1, p2 = a0 * b0, a1 * b1, a2 * b2
        total = p0 + p1 + p2
        out[t] = (p0 / total, p1 / total, p2 / total)
        x0, x1, x2 = states[t]
        y0, y1, y2 = b0 * x0, b1 * x1, b2 * x2
        b0, b1, b2 = (t00 * y0 + t01 * y1 + t02 * y2, t10 * y0 + t11 * y1 + t12 * y2,
                      t20 * y0 + t21 * y1 + t22 * y2)
        total = b0 + b1 + b2
        b0, b1, b2 = b0 / total, b1 / total, b2 / total
    return out
