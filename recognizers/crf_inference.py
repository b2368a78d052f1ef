"""Linear-chain CRF inference without crfsuite: its model file, its Viterbi labels and its marginals.

``read_crfsuite_model`` reads crfsuite's model file (``lCRF``/``FOMC``, version 100) without the
library: labels and attributes from its two CQDB string tables, weights from its feature chunk, in
full double precision (``pycrfsuite.Tagger.info()`` prints six decimals).  ``viterbi`` and
``marginals`` decode many sequences at once from state scores computed elsewhere (numpy), cut into
blocks so that the number of array operations does not grow with the text; ``viterbi_sequence``
and ``marginals_sequence`` do the same for one short sequence in plain Python, cheaper than numpy's
per-call cost when a prompt is a sentence or two.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
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


def viterbi_sequence(emissions: list[list[float]], transitions: list[list[float]]) -> list[int]:
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
            if a >= c:
                best0 = a
                from0 = 0
            else:
                best0 = c
                from0 = 2
        elif b >= c:
            best0 = b
            from0 = 1
        else:
            best0 = c
            from0 = 2
        a, b, c = s0 + t01, s1 + t11, s2 + t21
        if a >= b:
            if a >= c:
                best1 = a
                from1 = 0
            else:
                best1 = c
                from1 = 2
        elif b >= c:
            best1 = b
            from1 = 1
        else:
            best1 = c
            from1 = 2
        a, b, c = s0 + t02, s1 + t12, s2 + t22
        if a >= b:
            if a >= c:
                best2 = a
                from2 = 0
            else:
                best2 = c
                from2 = 2
        elif b >= c:
            best2 = b
            from2 = 1
        else:
            best2 = c
            from2 = 2
        s0, s1, s2 = best0 + e0, best1 + e1, best2 + e2
        append((from0, from1, from2))
    label = (0 if s0 >= s2 else 2) if s0 >= s1 else (1 if s1 >= s2 else 2)
    path = [label]
    for pointers in reversed(back):
        label = pointers[label]
        path.append(label)
    path.reverse()
    return path


def marginals_sequence(
    emissions: list[list[float]], transitions: list[list[float]], lo: int = 0, hi: int | None = None,
    wanted: Iterable[int] | None = None, weights: list[list[float]] | None = None,
) -> list[tuple[float, float, float]]:
    """Per position ``lo`` to ``hi`` of one sequence (three labels; default: all of it), each label's
    probability: scaled forward-backward.  With ``wanted`` (ascending positions from ``lo`` to ``hi``),
    only those positions' probabilities: the others' are not normalised (most of a text
    between its first and last name is no name).

    The forward pass stops at ``hi`` and the backward pass at ``lo`` (neither needs what lies beyond),
    so asking for the positions of a name costs less than the whole sequence and gives the very same
    numbers: each position's values come from the same operations in the same order either way.

    ``weights``, when given, are ``exp(emissions - their maximum per position)`` computed elsewhere
    (numpy, for a whole text at once: a long piece's two ``math.exp`` calls per position cost more).
    """
    n = len(emissions)
    hi = n if hi is None else hi
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"marginals asked for positions {lo}..{hi} of a sequence of {n}")
    if wanted is not None:
        wanted = list(wanted)
        if wanted and not lo <= wanted[0] <= wanted[-1] < hi:  # the order: checked as they are met
            raise ValueError(f"marginals asked for positions {wanted[0]}..{wanted[-1]} outside {lo}..{hi}")
    if lo == hi:
        return []
    (t00, t01, t02), (t10, t11, t12), (t20, t21, t22) = (
        [math.exp(w) for w in row] for row in transitions)
    states: Sequence[Sequence[float]]
    if weights is not None:
        if len(weights) != n:
            raise ValueError(f"{len(weights)} weights for a sequence of {n}")
        states = weights
    else:
        states = _state_weights(emissions)
    # The forward values from ``lo`` are kept; the backward pass normalises their products with its
    # own values at the wanted positions only.
    a0, a1, a2 = states[0]
    total = a0 + a1 + a2
    a0, a1, a2 = a0 / total, a1 / total, a2 / total
    alphas: list[tuple[float, float, float]] = []  # forward values at lo .. hi - 1
    append = alphas.append
    if lo == 0:
        append((a0, a1, a2))
    for t, (x0, x1, x2) in enumerate(states[1:hi], 1):
        a0, a1, a2 = ((a0 * t00 + a1 * t10 + a2 * t20) * x0, (a0 * t01 + a1 * t11 + a2 * t21) * x1,
                      (a0 * t02 + a1 * t12 + a2 * t22) * x2)
        total = a0 + a1 + a2
        a0, a1, a2 = a0 / total, a1 / total, a2 / total
        if t >= lo:
            append((a0, a1, a2))
    b0 = b1 = b2 = 1.0
    out: list[tuple[float, float, float]] = []
    keep = out.append
    descending = iter(range(hi - 1, lo - 1, -1) if wanted is None else reversed(wanted))
    want = next(descending, -1)  # the next position (going back) whose marginals are wanted
    for t, (x0, x1, x2) in zip(range(n - 1, lo - 1, -1), reversed(states[lo:]), strict=True):
        if t == want:
            a0, a1, a2 = alphas[t - lo]
            p0, p1, p2 = a0 * b0, a1 * b1, a2 * b2
            total = p0 + p1 + p2
            keep((p0 / total, p1 / total, p2 / total))
            want = next(descending, -1)
        y0, y1, y2 = b0 * x0, b1 * x1, b2 * x2
        b0, b1, b2 = (t00 * y0 + t01 * y1 + t02 * y2, t10 * y0 + t11 * y1 + t12 * y2,
                      t20 * y0 + t21 * y1 + t22 * y2)
        total = b0 + b1 + b2
        b0, b1, b2 = b0 / total, b1 / total, b2 / total
    if want != -1 or (wanted is not None and len(out) != len(wanted)):
        raise ValueError(f"marginals asked for positions not ascending within {lo}..{hi}")
    out.reverse()
    return out


def _state_weights(emissions: list[list[float]]) -> list[tuple[float, float, float]]:
    """Emissions shifted by their maximum per position (the scale cancels in the normalised marginals),
    exponentiated. The maximum's own weight is exp(0.0), exactly 1.0: two exp calls per position."""
    exp = math.exp
    states: list[tuple[float, float, float]] = []
    append = states.append
    for e0, e1, e2 in emissions:
        if e0 >= e1 and e0 >= e2:
            append((1.0, exp(e1 - e0), exp(e2 - e0)))
        elif e1 >= e2:
            append((exp(e0 - e1), 1.0, exp(e2 - e1)))
        else:
            append((exp(e0 - e2), exp(e1 - e2), 1.0))
    return states


# Sequences are cut into blocks of this many positions: the dynamic programmes step through a block
# for all blocks of the text at once, then through the blocks of a sequence for all sequences at once,
# so a text costs about 2 * (BLOCK + longest sequence / BLOCK) array operations of any length.
BLOCK = 16
_LOWEST = -700.0  # exp() of a state score shifted below this underflows; no real score gets near


@dataclass(frozen=True)
class _Blocks:
    """Sequences cut into blocks; blocks ordered longest first, sequences ordered most blocks first."""

    rows: IntArray  # (blocks, BLOCK): the emission row of each step (the block's first row past its end)
    length: IntArray  # (blocks,), descending
    active: IntArray  # (BLOCK + 1,): active[t] = how many blocks are longer than t
    block_of: IntArray  # (sequences, most blocks): block index of the j-th block of each sequence, or -1
    sequence_active: IntArray  # (most blocks + 1,): how many sequences have more than j blocks


def _blocks(first: IntArray, length: IntArray) -> _Blocks:
    n_blocks = -(-length // BLOCK)
    sequence = np.repeat(np.arange(len(first)), n_blocks)
    offsets = np.cumsum(n_blocks) - n_blocks
    index = np.arange(int(n_blocks.sum())) - np.repeat(offsets, n_blocks)
    start = first[sequence] + index * BLOCK
    block_length = np.minimum(BLOCK, length[sequence] - index * BLOCK)
    order = np.argsort(-block_length, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    steps = np.arange(BLOCK)
    ordered_length = block_length[order]
    rows = start[order][:, None] + np.minimum(steps[None, :], ordered_length[:, None] - 1)
    active = np.searchsorted(-ordered_length, -np.arange(BLOCK + 1), side="left")
    by_blocks = np.argsort(-n_blocks, kind="stable")
    position = np.empty_like(by_blocks)
    position[by_blocks] = np.arange(len(by_blocks))
    most = int(n_blocks.max())
    block_of = np.full((len(first), most), -1, dtype=np.int64)
    block_of[position[sequence], index] = rank
    sequence_active = np.searchsorted(-n_blocks[by_blocks], -np.arange(most + 1), side="left")
    return _Blocks(rows, ordered_length, active, block_of, sequence_active)


def viterbi(emissions: FloatArray, transitions: FloatArray, first: IntArray, length: IntArray,
            labels: npt.NDArray[np.int8]) -> None:
    """Write the best label sequence of each sequence ``[first, first + length)`` into ``labels``.

    Within each block, the best path from every start label to every end label (max-plus products,
    all blocks at once); then the blocks of each sequence are joined (all sequences at once); then each
    block is traced back from its chosen end label.  The same maximum as crfsuite's Viterbi; among
    exactly equal scores (which real weights do not produce) the choice may differ.
    """
    if len(first) == 0:
        return
    b = _blocks(first, length)
    n_labels = transitions.shape[0]
    scores = emissions[b.rows]  # (blocks, BLOCK, labels)
    best = np.full((len(b.length), n_labels, n_labels), -np.inf)  # (block, start label, label now)
    diagonal = np.arange(n_labels)
    best[:, diagonal, diagonal] = scores[:, 0]
    back = np.zeros((len(b.length), BLOCK, n_labels, n_labels), dtype=np.int8)
    for t in range(1, BLOCK):
        k = b.active[t]
        if k == 0:
            break
        candidates = best[:k, :, :, None] + transitions[None, None]  # (k, start, previous, now)
        back[:k, t] = candidates.argmax(axis=2)
        best[:k] = candidates.max(axis=2) + scores[:k, t, None, :]
    # Join the blocks of each sequence: (previous block's end label, this block's start label).
    n_sequences, most = b.block_of.shape
    ends = best[b.block_of[:, 0]]
    total = ends.max(axis=1)
    first_start = ends.argmax(axis=1)
    joins = np.zeros((n_sequences, most, n_labels), dtype=np.int64)
    for j in range(1, most):
        k = b.sequence_active[j]
        candidates = (total[:k, :, None, None] + transitions[None, :, :, None]
                      + best[b.block_of[:k, j]][:, None, :, :]).reshape(k, n_labels * n_labels, n_labels)
        joins[:k, j] = candidates.argmax(axis=1)
        total[:k] = candidates.max(axis=1)
    end_label = np.zeros((len(b.length),), dtype=np.int64)
    start_label = np.zeros((len(b.length),), dtype=np.int64)
    current = total.argmax(axis=1)
    for j in range(most - 1, 0, -1):
        k = b.sequence_active[j]
        choice = joins[np.arange(k), j, current[:k]]
        end_label[b.block_of[:k, j]] = current[:k]
        start_label[b.block_of[:k, j]] = choice % n_labels
        current[:k] = choice // n_labels
    end_label[b.block_of[:, 0]] = current
    start_label[b.block_of[:, 0]] = first_start[np.arange(n_sequences), current]
    # Trace each block back from its end label.
    path = np.zeros((len(b.length), BLOCK), dtype=np.int8)
    label = np.zeros(len(b.length), dtype=np.int64)
    for t in range(BLOCK - 1, -1, -1):
        k = b.active[t]
        ending = slice(b.active[t + 1], k)
        label[ending] = end_label[ending]
        path[:k, t] = label[:k]
        if t:
            label[:k] = back[np.arange(k), t, start_label[:k], label[:k]]
    valid = np.arange(BLOCK)[None, :] < b.length[:, None]
    labels[b.rows[valid]] = path[valid]


def marginals(emissions: FloatArray, transitions: FloatArray, first: IntArray, length: IntArray,
              wanted: IntArray) -> FloatArray:
    """Each label's probability at the ``wanted`` rows of the sequences (forward-backward by blocks).

    Blocks carry, for every start label (forward) or end label (backward), the scaled sums of path
    weights up to each of their positions; the messages between the blocks of a sequence then fix
    how much each start or end label counts.
    """
    b = _blocks(first, length)
    n_blocks, n_labels = len(b.length), transitions.shape[0]
    shifted = emissions[b.rows]
    weight = np.exp(np.maximum(shifted - shifted.max(axis=2, keepdims=True), _LOWEST))  # (blocks, BLOCK, L)
    step = np.exp(transitions)
    eye = np.eye(n_labels)
    # Forward inside blocks: forward[c, t, a, y] ∝ paths from start label a to label y at t.
    forward = np.zeros((n_blocks, BLOCK, n_labels, n_labels))
    forward_log = np.zeros((n_blocks, BLOCK, n_labels))
    forward[:, 0] = eye[None] * weight[:, 0, None, :]
    for t in range(1, BLOCK):
        k = b.active[t]
        if k == 0:
            break
        product = (forward[:k, t - 1] @ step) * weight[:k, t, None, :]
        scale = product.sum(axis=2)
        forward[:k, t] = product / scale[:, :, None]
        forward_log[:k, t] = forward_log[:k, t - 1] + np.log(scale)
    # Backward inside blocks, counted from the block's end: backward[c, u, z, y] ∝ paths from label y
    # at position (end - u) to end label z, the emission at (end - u) excluded.
    last = b.length - 1
    backward = np.zeros((n_blocks, BLOCK, n_labels, n_labels))
    backward_log = np.zeros((n_blocks, BLOCK, n_labels))
    backward[:, 0] = eye[None]
    for u in range(1, BLOCK):
        k = b.active[u]
        if k == 0:
            break
        after = weight[np.arange(k), last[:k] - u + 1]  # emission weights one position later
        product = (backward[:k, u - 1] * after[:, None, :]) @ step.T
        scale = product.sum(axis=2)
        backward[:k, u] = product / scale[:, :, None]
        backward_log[:k, u] = backward_log[:k, u - 1] + np.log(scale)
    every = np.arange(n_blocks)
    block_forward = forward[every, last] * _relative(forward_log[every, last])[:, :, None]  # (c, a, y)
    block_backward = backward[every, last] * _relative(backward_log[every, last])[:, :, None]  # (c, z, y)
    # Messages between the blocks of each sequence: into each block's start label, out of its end label.
    n_sequences, most = b.block_of.shape
    enter = np.ones((n_blocks, n_labels))
    message = np.zeros((n_sequences, n_labels))
    for j in range(most):
        k = b.sequence_active[j]
        blocks = b.block_of[:k, j]
        if j:
            incoming = message[:k] @ step
            enter[blocks] = incoming / incoming.sum(axis=1, keepdims=True)
        reached = np.einsum("qa,qay->qy", enter[blocks], block_forward[blocks])
        message[:k] = reached / reached.sum(axis=1, keepdims=True)
    leave = np.ones((n_blocks, n_labels))
    for j in range(most - 2, -1, -1):
        k = b.sequence_active[j + 1]
        following = b.block_of[:k, j + 1]
        start_weights = weight[following, 0]  # the next block's first emission
        into_next = np.einsum("qz,qzy->qy", leave[following], block_backward[following]) * start_weights
        outgoing = into_next @ step.T
        leave[b.block_of[:k, j]] = outgoing / outgoing.sum(axis=1, keepdims=True)
    valid = np.arange(BLOCK)[None, :] < b.length[:, None]
    block_at = np.full(len(emissions), -1, dtype=np.int64)
    step_at = np.zeros(len(emissions), dtype=np.int64)
    block_at[b.rows[valid]] = np.broadcast_to(every[:, None], valid.shape)[valid]
    step_at[b.rows[valid]] = np.broadcast_to(np.arange(BLOCK)[None, :], valid.shape)[valid]
    block, at = block_at[wanted], step_at[wanted]
    if (block < 0).any():
        raise ValueError("marginals asked for a row outside the sequences")
    from_end = last[block] - at
    alpha = np.einsum("wa,wa,way->wy", enter[block], _relative(forward_log[block, at]), forward[block, at])
    beta = np.einsum("wz,wz,wzy->wy", leave[block], _relative(backward_log[block, from_end]),
                     backward[block, from_end])
    joint = alpha * beta
    probabilities: FloatArray = joint / joint.sum(axis=1, keepdims=True)
    return probabilities


def _relative(log_scales: FloatArray) -> FloatArray:
    """``exp`` of log scales less their maximum over the last axis (what cancels in a ratio)."""
    result: FloatArray = np.exp(log_scales - log_scales.max(axis=-1, keepdims=True))
    return result
